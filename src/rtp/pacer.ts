/**
 * Outbound RTP pacing for one call: PCM16 in, one RTP packet per 20 ms clock tick out.
 *
 * - `enqueue` slices audio of any length into 20 ms frames and encodes them at once into one
 *   growable byte queue (payloads back to back, per-frame facts in typed arrays), so a tick
 *   only writes a 12-byte header, copies one payload and hands the packet to the socket.
 *   Queued audio holds no per-frame objects: seconds of queued speech at 200 calls would
 *   otherwise be tens of thousands of objects surviving young-generation GCs, whose copying
 *   made GC pauses long enough to delay the media clock. Packets are written into a small
 *   ring of PACKET_RING buffers: `send` must hand each to the socket (or copy it) before the
 *   ring comes round again (the endpoint copies when the socket's send queue is backed up).
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
  /**
   * Hands one complete RTP packet to the network. The pacer writes the same buffer again
   * PACKET_RING packets later: send it (or copy it) before then.
   */
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

/** Packet buffers a pacer writes in turn: `send` must be done with one within this many packets. */
export const PACKET_RING = 8;

/**
 * FIFO of encoded frames: payloads back to back in one byte array, the real sample count and
 * the utterance of each frame in parallel arrays; compacted or grown (doubling) when full.
 */
class FrameQueue {
  private payloads: Uint8Array;
  private samples: Uint16Array;
  private utterances: (UtteranceRecord | null)[];
  private head = 0;
  private tail = 0;

  constructor(private readonly payloadBytes: number) {
    this.payloads = new Uint8Array(64 * payloadBytes);
    this.samples = new Uint16Array(64);
    this.utterances = new Array<UtteranceRecord | null>(64).fill(null);
  }

  get length(): number {
    return this.tail - this.head;
  }

  /** Room for one more frame: returns the payload slot to encode into. */
  pushSlot(samples: number, utterance: UtteranceRecord | null): Uint8Array {
    if (this.tail === this.samples.length) this.makeRoom();
    const i = this.tail++;
    this.samples[i] = samples;
    this.utterances[i] = utterance;
    return this.payloads.subarray(i * this.payloadBytes, (i + 1) * this.payloadBytes);
  }

  /** Index of the oldest frame, removed from the queue (read it before the next push), or -1. */
  shift(): number {
    if (this.head === this.tail) return -1;
    const i = this.head++;
    if (this.head === this.tail) this.head = this.tail = 0; // empty: start over at the front
    return i;
  }

  samplesAt(i: number): number {
    return this.samples[i]!;
  }

  utteranceAt(i: number): UtteranceRecord | null {
    const u = this.utterances[i]!;
    this.utterances[i] = null;
    return u;
  }

  /** Copy frame i's payload into `out` at `offset`. */
  copyPayload(i: number, out: Uint8Array, offset: number): void {
    out.set(this.payloads.subarray(i * this.payloadBytes, (i + 1) * this.payloadBytes), offset);
  }

  drain(visit: (samples: number, utterance: UtteranceRecord | null) => void): void {
    for (let i = this.head; i < this.tail; i++) {
      visit(this.samples[i]!, this.utterances[i]!);
      this.utterances[i] = null;
    }
    this.head = this.tail = 0;
  }

  private makeRoom(): void {
    const live = this.tail - this.head;
    // A frame shifted but not yet read must not be overwritten: shift() hands out an index
    // that the caller reads at once, before pushing, so compaction here is safe.
    if (this.head * 2 >= this.tail) {
      this.payloads.copyWithin(0, this.head * this.payloadBytes, this.tail * this.payloadBytes);
      this.samples.copyWithin(0, this.head, this.tail);
      for (let i = 0; i < live; i++) this.utterances[i] = this.utterances[this.head + i]!;
      for (let i = live; i < this.tail; i++) this.utterances[i] = null;
      this.head = 0;
      this.tail = live;
      return;
    }
    const frames = this.samples.length * 2;
    const payloads = new Uint8Array(frames * this.payloadBytes);
    payloads.set(this.payloads.subarray(0, this.tail * this.payloadBytes));
    const samples = new Uint16Array(frames);
    samples.set(this.samples.subarray(0, this.tail));
    this.payloads = payloads;
    this.samples = samples;
    for (let i = this.utterances.length; i < frames; i++) this.utterances.push(null);
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

  private readonly queue: FrameQueue;
  /** PACKET_RING packet buffers, written in turn. */
  private readonly packets: Uint8Array[];
  private nextPacket = 0;
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
    this.queue = new FrameQueue(format.payloadBytes);
    const ring = new Uint8Array(PACKET_RING * this.packetSize);
    this.packets = Array.from({ length: PACKET_RING }, (_, i) => ring.subarray(i * this.packetSize, (i + 1) * this.packetSize));
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
    this.queue.drain((samples, utterance) => {
      dropped += samples;
      if (utterance) utterance.droppedMs += samples * this.msPerSample;
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
    if (frame < 0) {
      if (this.inTalkspurt) this.endTalkspurt();
      return;
    }

    const marker = !this.inTalkspurt;
    const samples = this.queue.samplesAt(frame);
    const u = this.queue.utteranceAt(frame);
    const packet = this.packets[this.nextPacket]!;
    this.nextPacket = (this.nextPacket + 1) % PACKET_RING;
    writeRtpFixedHeader(packet, marker, this.pt, this.sequenceNumber, this.timestamp, this.ssrc);
    this.queue.copyPayload(frame, packet, RTP_HEADER_SIZE);
    const sentAtMs = this.now();
    this.send(packet);

    const seq = this.sequenceNumber;
    this.sequenceNumber = (seq + 1) & 0xffff;
    const ms = samples * this.msPerSample;
    this.queuedSamples -= samples;
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
    this.encoder.encode(pcm, this.queue.pushSlot(realSamples, this.current));
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
