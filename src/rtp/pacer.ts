/**
 * Outbound RTP pacing for one call: PCM16 in, one RTP packet per 20 ms clock tick out.
 *
 * - `enqueue` slices audio of any length into 20 ms frames and encodes them at once, so
 *   a tick only writes a 12-byte header and hands a ready buffer to the socket. Each
 *   frame gets its own packet buffer, carved from a slab (a UDP send may complete
 *   asynchronously, so a reused buffer could be overwritten while still queued).
 * - A partial last frame is padded with silence when the utterance ends, when another
 *   begins, or when the queue runs dry (it is never held back).
 * - What goes on the wire is a `SendFormat` (default: the codec's own). It may differ from
 *   the codec's: towards Asterisk, slin16 audio is sent as 8 kHz L16 (see
 *   `asteriskSendFormat` in g711.ts), so its encoder resamples and keeps filter state,
 *   which `clear()` resets.
 * - RTP header: sequence +1 per packet (wrapping), timestamp tied to the clock — it
 *   advances by the elapsed scheduled time at every tick, sent or idle, in units of the
 *   send format's clock rate — so silence gaps keep wall-clock time; marker bit on the
 *   first packet of each talkspurt; random initial sequence, timestamp and SSRC
 *   (RFC 3550 §5.1).
 * - `clear()` drops everything queued synchronously: no packet follows it.
 * - Utterances (`beginUtterance`/`endUtterance`, or `play`) account played and dropped
 *   audio, so a barge-in can tell how much of what the agent said was heard.
 * - Pacing is measured: |send time - scheduled time| per packet and |send interval -
 *   scheduled interval| between consecutive packets, as histograms.
 */
import { randomInt } from 'node:crypto';
import type { AudioFrame } from '../audio/frame.js';
import { sendFormatOf, type Codec, type PayloadEncoder, type SendFormat } from '../audio/g711.js';
import { LatencyHistogram } from './histogram.js';
import type { ClockTick } from './media-clock.js';
import { RTP_HEADER_SIZE, writeRtpFixedHeader } from './packet.js';
import { mediaSlab } from './slab.js';
import { monotonicMs } from './time.js';

export type UtteranceState = 'open' | 'queued' | 'played' | 'cleared';

/** Progress of one utterance. `open`: audio may still be added; `queued`: ended, not all sent. */
export interface Utterance {
  readonly id: string;
  readonly state: UtteranceState;
  /** Audio enqueued (excluding silence padding). */
  readonly enqueuedMs: number;
  readonly playedMs: number;
  /** Audio removed by `clear()` before it was sent. */
  readonly droppedMs: number;
  readonly firstSentAtMs: number | undefined;
  readonly lastSentAtMs: number | undefined;
}

interface UtteranceRecord {
  id: string;
  state: UtteranceState;
  enqueuedMs: number;
  playedMs: number;
  droppedMs: number;
  firstSentAtMs: number | undefined;
  lastSentAtMs: number | undefined;
  /** Frames of this utterance still in the queue (or in the partial frame). */
  pendingFrames: number;
}

export interface TalkspurtStart {
  sentAtMs: number;
  scheduledMs: number;
  sequenceNumber: number;
  timestamp: number;
  utteranceId: string | undefined;
}

export interface TalkspurtEnd {
  /** Send time of the talkspurt's last packet. */
  lastSentAtMs: number;
  /** Audio sent in this talkspurt. */
  playedMs: number;
  /** Whether it ended because of `clear()`. */
  cleared: boolean;
}

export interface PacerEvents {
  /** The first packet of a talkspurt (marker bit set) has been handed to the socket. */
  talkspurtStart?: (e: TalkspurtStart) => void;
  /** A tick found nothing to send after a talkspurt: output has stopped. */
  talkspurtEnd?: (e: TalkspurtEnd) => void;
  /** An utterance was fully sent (`played`) or cut (`cleared`). */
  utteranceDone?: (u: Utterance) => void;
}

export interface ClearResult {
  droppedMs: number;
  /** Utterances that had audio dropped or were still open, now `cleared`. */
  utterances: Utterance[];
  /** Send time of the last packet sent before the clear (undefined if none ever). */
  lastSentAtMs: number | undefined;
}

export interface PacerStats {
  packetsSent: number;
  bytesSent: number;
  playedMs: number;
  droppedMs: number;
  talkspurts: number;
  /** Ticks that found only a partial frame and padded it (the producer fell behind). */
  underruns: number;
  /** |send time - scheduled time| per packet, ms. */
  readonly sendDeviation: LatencyHistogram;
  /** |send interval - scheduled interval| between consecutive packets of a talkspurt, ms. */
  readonly intervalJitter: LatencyHistogram;
}

export interface PacerOptions {
  /** The call's codec: `enqueue` takes PCM16 at its sample rate. */
  codec: Codec;
  /** Wire format of the packets; default the codec's own. Must take the codec's PCM rate. */
  format?: SendFormat;
  /** Hands one complete RTP packet to the network; the pacer never touches it again. */
  send: (packet: Uint8Array) => void;
  /** Outbound payload type; default the send format's. */
  payloadType?: number;
  ssrc?: number;
  initialSequenceNumber?: number;
  initialTimestamp?: number;
  events?: PacerEvents;
  /** Receives exceptions thrown by event handlers (the pacer itself carries on). */
  onEventError?: (err: unknown) => void;
  now?: () => number;
}

interface QueuedFrame {
  packet: Uint8Array;
  /** Real samples in the frame (the rest is padding). */
  samples: number;
  utterance: UtteranceRecord | null;
}

/** FIFO of frames: an array with a moving head, compacted occasionally. */
class FrameQueue {
  private items: (QueuedFrame | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(f: QueuedFrame): void {
    this.items.push(f);
  }

  shift(): QueuedFrame | undefined {
    if (this.head >= this.items.length) return undefined;
    const f = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= 256 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return f;
  }

  drain(visit: (f: QueuedFrame) => void): void {
    for (let i = this.head; i < this.items.length; i++) visit(this.items[i] as QueuedFrame);
    this.items = [];
    this.head = 0;
  }
}

function randomUint32(): number {
  return randomInt(0, 2 ** 32 - 1) >>> 0;
}

export class Pacer {
  readonly codec: Codec;
  /** What goes on the wire. */
  readonly format: SendFormat;
  readonly ssrc: number;
  readonly stats: PacerStats = {
    packetsSent: 0,
    bytesSent: 0,
    playedMs: 0,
    droppedMs: 0,
    talkspurts: 0,
    underruns: 0,
    sendDeviation: new LatencyHistogram(),
    intervalJitter: new LatencyHistogram(),
  };

  private readonly send: (packet: Uint8Array) => void;
  private readonly events: PacerEvents;
  private readonly onEventError: (err: unknown) => void;
  private readonly now: () => number;
  private readonly samplesPerFrame: number;
  private readonly msPerSample: number;
  /** RTP timestamp units per ms. */
  private readonly clockPerMs: number;
  private readonly packetSize: number;
  private readonly encoder: PayloadEncoder;
  private pt: number;

  private readonly queue = new FrameQueue();
  private queuedSamples = 0;
  private readonly partial: Int16Array;
  private partialFill = 0;
  private current: UtteranceRecord | null = null;
  /** Open and queued utterances, oldest first (ids need not be unique). */
  private readonly active = new Set<UtteranceRecord>();
  private utteranceCounter = 0;

  private sequenceNumber: number;
  private timestamp: number;
  private lastTickScheduledMs: number | undefined;
  private inTalkspurt = false;
  private talkspurtPlayedMs = 0;
  private lastSentAtMs: number | undefined;
  private lastSentScheduledMs = 0;
  private clearedSinceLastTick = false;

  constructor(opts: PacerOptions) {
    this.codec = opts.codec;
    this.send = opts.send;
    this.events = opts.events ?? {};
    this.onEventError = opts.onEventError ?? ((err) => process.emitWarning(`pacer event handler threw: ${String(err)}`));
    this.now = opts.now ?? monotonicMs;
    const format = opts.format ?? sendFormatOf(opts.codec);
    if (format.sampleRate !== opts.codec.sampleRate || format.samplesPer20ms !== opts.codec.samplesPer20ms) {
      throw new RangeError(`send format ${format.name} takes ${format.sampleRate} Hz audio, the ${opts.codec.name} codec has ${opts.codec.sampleRate} Hz`);
    }
    this.format = format;
    this.encoder = format.createEncoder();
    this.samplesPerFrame = opts.codec.samplesPer20ms;
    this.msPerSample = 1000 / opts.codec.sampleRate;
    this.clockPerMs = format.clockRate / 1000;
    this.packetSize = RTP_HEADER_SIZE + format.payloadBytes;
    this.partial = new Int16Array(this.samplesPerFrame);
    this.pt = opts.payloadType ?? format.payloadType;
    this.ssrc = (opts.ssrc ?? randomUint32()) >>> 0;
    this.sequenceNumber = (opts.initialSequenceNumber ?? randomInt(0, 65536)) & 0xffff;
    this.timestamp = (opts.initialTimestamp ?? randomUint32()) >>> 0;
    if (!Number.isInteger(this.pt) || this.pt < 0 || this.pt > 127) throw new RangeError(`payload type must be 0..127, got ${this.pt}`);
  }

  /** Outbound payload type (settable). */
  get payloadType(): number {
    return this.pt;
  }

  set payloadType(pt: number) {
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) throw new RangeError(`payload type must be 0..127, got ${pt}`);
    this.pt = pt;
  }

  /** Audio waiting to be sent (including a partial frame). */
  get queuedMs(): number {
    return (this.queuedSamples + this.partialFill) * this.msPerSample;
  }

  /** Whether any audio is waiting. */
  get busy(): boolean {
    return this.queue.length > 0 || this.partialFill > 0;
  }

  /** Total audio sent, ms. */
  get playedMs(): number {
    return this.stats.playedMs;
  }

  /** Progress of an utterance that is still open or queued (the oldest, if ids repeat). */
  utterance(id: string): Utterance | undefined {
    for (const u of this.active) if (u.id === id) return u;
    return undefined;
  }

  /**
   * Start an utterance: audio enqueued from now on belongs to it. Ends the current one.
   * Returns its live progress record.
   */
  beginUtterance(id?: string): Utterance {
    this.endUtterance();
    this.flushPartial(); // audio queued outside any utterance keeps its own last frame
    const u: UtteranceRecord = {
      id: id ?? `u${++this.utteranceCounter}`,
      state: 'open',
      enqueuedMs: 0,
      playedMs: 0,
      droppedMs: 0,
      firstSentAtMs: undefined,
      lastSentAtMs: undefined,
      pendingFrames: 0,
    };
    this.current = u;
    this.active.add(u);
    return u;
  }

  /** No more audio for the current utterance: pad its last frame; done once all is sent. */
  endUtterance(): void {
    const u = this.current;
    if (!u) return;
    this.flushPartial();
    this.current = null;
    u.state = 'queued';
    if (u.pendingFrames === 0) this.finish(u, 'played');
  }

  /** Queue `frame` as one complete utterance. */
  play(frame: AudioFrame, id?: string): Utterance {
    this.checkRate(frame);
    const u = this.beginUtterance(id);
    this.enqueue(frame);
    this.endUtterance();
    return u;
  }

  /**
   * Queue PCM16 at the codec's rate, any length. Throws RangeError on another sample
   * rate: resampling belongs before the RTP edge.
   */
  enqueue(frame: AudioFrame): void {
    this.checkRate(frame);
    const src = frame.samples;
    const spf = this.samplesPerFrame;
    if (this.current) this.current.enqueuedMs += src.length * this.msPerSample;
    let off = 0;
    if (this.partialFill > 0) {
      const n = Math.min(spf - this.partialFill, src.length);
      this.partial.set(src.subarray(0, n), this.partialFill);
      this.partialFill += n;
      off = n;
      if (this.partialFill === spf) {
        this.pushFrame(this.partial, spf);
        this.partialFill = 0;
      }
    }
    while (src.length - off >= spf) {
      this.pushFrame(src.subarray(off, off + spf), spf);
      off += spf;
    }
    if (off < src.length) {
      this.partial.set(src.subarray(off), 0);
      this.partialFill = src.length - off;
    }
  }

  /**
   * Drop all queued audio now (barge-in). Nothing more is sent until new audio is queued.
   * Open and queued utterances become `cleared`.
   */
  clear(): ClearResult {
    let dropped = this.partialFill;
    // The partial frame always belongs to the current utterance.
    if (this.current) this.current.droppedMs += this.partialFill * this.msPerSample;
    this.partialFill = 0;
    this.queue.drain((f) => {
      dropped += f.samples;
      if (f.utterance) f.utterance.droppedMs += f.samples * this.msPerSample;
    });
    this.queuedSamples = 0;
    this.encoder.reset(); // what follows is a new stream, not the continuation of the cut one
    const droppedMs = dropped * this.msPerSample;
    this.stats.droppedMs += droppedMs;
    this.current = null;
    if (this.inTalkspurt) this.clearedSinceLastTick = true;
    const cut = [...this.active];
    for (const u of cut) this.finish(u, 'cleared');
    return { droppedMs, utterances: cut, lastSentAtMs: this.lastSentAtMs };
  }

  /** Send at most one packet for this clock tick. Never throws (event handlers are isolated). */
  tick(tick: ClockTick): void {
    if (this.lastTickScheduledMs !== undefined) {
      this.timestamp = (this.timestamp + Math.round((tick.scheduledMs - this.lastTickScheduledMs) * this.clockPerMs)) >>> 0;
    }
    this.lastTickScheduledMs = tick.scheduledMs;

    if (this.queue.length === 0 && this.partialFill > 0) {
      this.stats.underruns++;
      this.flushPartial();
    }
    const frame = this.queue.shift();
    if (!frame) {
      if (this.inTalkspurt) this.endTalkspurt();
      return;
    }

    const marker = !this.inTalkspurt;
    const packet = frame.packet;
    writeRtpFixedHeader(packet, marker, this.pt, this.sequenceNumber, this.timestamp, this.ssrc);
    const sentAtMs = this.now();
    this.send(packet);

    const seq = this.sequenceNumber;
    this.sequenceNumber = (seq + 1) & 0xffff;
    const ms = frame.samples * this.msPerSample;
    this.queuedSamples -= frame.samples;
    this.stats.packetsSent++;
    this.stats.bytesSent += packet.length;
    this.stats.playedMs += ms;
    this.stats.sendDeviation.record(Math.abs(sentAtMs - tick.scheduledMs));
    if (!marker && this.lastSentAtMs !== undefined) {
      this.stats.intervalJitter.record(Math.abs(sentAtMs - this.lastSentAtMs - (tick.scheduledMs - this.lastSentScheduledMs)));
    }
    this.lastSentAtMs = sentAtMs;
    this.lastSentScheduledMs = tick.scheduledMs;
    this.talkspurtPlayedMs = marker ? ms : this.talkspurtPlayedMs + ms;
    this.inTalkspurt = true;

    const u = frame.utterance;
    if (u) {
      u.playedMs += ms;
      u.firstSentAtMs ??= sentAtMs;
      u.lastSentAtMs = sentAtMs;
      u.pendingFrames--;
    }
    if (marker) {
      this.stats.talkspurts++;
      this.emit(this.events.talkspurtStart, { sentAtMs, scheduledMs: tick.scheduledMs, sequenceNumber: seq, timestamp: this.timestamp, utteranceId: u?.id });
    }
    if (u && u.state === 'queued' && u.pendingFrames === 0) this.finish(u, 'played');
  }

  private checkRate(frame: AudioFrame): void {
    if (frame.sampleRate !== this.codec.sampleRate) {
      throw new RangeError(`pacer for ${this.codec.name} takes ${this.codec.sampleRate} Hz audio, got ${frame.sampleRate} Hz`);
    }
  }

  private endTalkspurt(): void {
    this.inTalkspurt = false;
    const cleared = this.clearedSinceLastTick;
    this.clearedSinceLastTick = false;
    this.emit(this.events.talkspurtEnd, { lastSentAtMs: this.lastSentAtMs ?? 0, playedMs: this.talkspurtPlayedMs, cleared });
  }

  private pushFrame(pcm: Int16Array, realSamples: number): void {
    const packet = mediaSlab.uint8(this.packetSize);
    this.encoder.encode(pcm, packet.subarray(RTP_HEADER_SIZE));
    this.queue.push({ packet, samples: realSamples, utterance: this.current });
    this.queuedSamples += realSamples;
    if (this.current) this.current.pendingFrames++;
  }

  private flushPartial(): void {
    if (this.partialFill === 0) return;
    this.partial.fill(0, this.partialFill);
    this.pushFrame(this.partial, this.partialFill);
    this.partialFill = 0;
  }

  private finish(u: UtteranceRecord, state: 'played' | 'cleared'): void {
    u.state = state;
    u.pendingFrames = 0;
    this.active.delete(u);
    this.emit(this.events.utteranceDone, u);
  }

  private emit<E>(handler: ((e: E) => void) | undefined, e: E): void {
    if (!handler) return;
    try {
      handler(e);
    } catch (err) {
      this.onEventError(err);
    }
  }
}
