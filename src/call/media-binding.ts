/**
 * Binds the RTP endpoint and the Silero VAD pipeline to the session's ports. One VAD model
 * (and batcher) is shared by every call; each call gets its own endpoint and VAD stream.
 */
import type { AudioFrame } from '../audio/frame.js';
import { CallVad } from '../audio/vad/call-vad.js';
import type { VadSampleRate } from '../audio/vad/silero-layout.js';
import type { VadStreamSource } from '../audio/vad/silero-stream.js';
import type { TurnDetectorConfig } from '../audio/vad/turn-detector.js';
import type { ExternalMediaFormat } from '../ari/types.js';
import type { Logger } from '../log.js';
import { RtpEndpoint, type RtpEndpointStats } from '../rtp/endpoint.js';
import { LatencyHistogram } from '../rtp/histogram.js';
import { sharedMediaClock, type MediaClock } from '../rtp/media-clock.js';
import type { PortRange } from '../rtp/udp-bind.js';
import type { Utterance } from '../rtp/pacer.js';
import type { MediaFactory, OpenedMedia } from './call-controller.js';
import type { EngineMetrics } from './engine-metrics.js';
import type { PlayoutWriter, SessionVad } from './session-ports.js';

export interface RtpMediaFactoryOptions {
  vadSource: VadStreamSource;
  metrics: EngineMetrics;
  /** Address the RTP endpoints bind to and advertise to Asterisk. */
  rtpHost?: string;
  advertisedHost?: string;
  rtpPorts?: PortRange;
  clock?: MediaClock;
  /** VAD / turn-taking settings per agent name (falls back to `defaultTurn`). */
  turnFor?: (agentName: string) => Partial<TurnDetectorConfig> | undefined;
  /**
   * Silero window: 32 ms (default) or 64 / 96 ms. Inference costs the same per window, so 64 ms
   * halves VAD CPU, at the price of coarser speech decisions (barge-in waits a window longer).
   */
  vadWindowMs?: 32 | 64 | 96;
  defaultTurn?: Partial<TurnDetectorConfig>;
}

/**
 * Inbound gap after which silence is synthesised for VAD and the utterance buffer. The fill
 * covers the whole gap at once, so end-of-turn timing does not depend on this value as long
 * as it is well below the end-of-turn silence; it is long enough that a late burst (network
 * jitter, a stalled sender) is not mistaken for a caller who stopped sending, which would
 * insert silence into the middle of the utterance.
 */
const SILENCE_AFTER_MS = 200;
/** Most synthetic frames fed at once (a stalled event loop must not cause a burst). */
const MAX_FILL_FRAMES = 10;

/** A session's media: an RtpEndpoint seen through the SessionMedia port. */
class RtpSessionMedia implements OpenedMedia {
  private frameHandler: ((frame: AudioFrame, arrivalMs: number) => void) | undefined;
  private talkspurtHandler: ((at: number) => void) | undefined;
  private readonly waiting = new Map<string, (u: Utterance) => void>();
  private nextId = 0;
  /** Arrival of the last frame from the network; 0 until the first packet. */
  private lastRealFrameAt = 0;
  /** Wall time up to which the session has been fed audio (real or synthetic). */
  private lastFedAt = 0;
  private fillPending = false;
  private readonly silenceFrame: AudioFrame;
  private readonly leaveClock: () => void;
  syntheticSilenceFrames = 0;

  constructor(
    readonly endpoint: RtpEndpoint,
    clock: MediaClock,
    private readonly log: Logger,
    private readonly onClose: (endpoint: RtpEndpoint, stats: RtpEndpointStats, syntheticSilenceFrames: number) => void,
  ) {
    this.silenceFrame = { samples: new Int16Array(endpoint.codec.samplesPer20ms), sampleRate: this.sampleRate };
    this.leaveClock = clock.register((tick) => {
      if (this.lastRealFrameAt === 0 || tick.firedMs - this.lastRealFrameAt < SILENCE_AFTER_MS || this.fillPending) return;
      // A gap is suspected. After an event-loop stall this tick runs before the packets
      // waiting in the socket are read (timers come before the I/O poll phase): decide only
      // after the poll phase, so late packets are not mistaken for a caller gone quiet.
      this.fillPending = true;
      setImmediate(() => {
        this.fillPending = false;
        this.fillSilence(performance.now());
      });
    });
    endpoint.setHandlers({
      audio: (f) => {
        this.lastRealFrameAt = f.arrivalMs;
        this.lastFedAt = f.arrivalMs;
        this.frameHandler?.(f, f.arrivalMs);
      },
      talkspurtStart: (e) => this.talkspurtHandler?.(e.sentAtMs),
      utteranceDone: (u) => {
        const resolve = this.waiting.get(u.id);
        if (resolve) {
          this.waiting.delete(u.id);
          resolve(u);
        }
      },
      error: (err) => this.log.warn({ err }, 'RTP endpoint error'),
    });
  }

  /**
   * A caller whose phone stops sending RTP (silence suppression, or a SIP client that only
   * streams while it has audio) would otherwise never reach end of turn: once packets have
   * been missing for SILENCE_AFTER_MS, feed silence in real time, one 20 ms frame per tick,
   * until packets flow again.
   */
  private fillSilence(now: number): void {
    if (this.endpoint.closed || this.lastRealFrameAt === 0 || now - this.lastRealFrameAt < SILENCE_AFTER_MS) return;
    // Cover the whole gap, so audio time keeps pace with wall time for the end-of-turn timer.
    const due = Math.min(MAX_FILL_FRAMES, Math.floor((now - this.lastFedAt) / 20));
    for (let i = 0; i < due; i++) {
      this.syntheticSilenceFrames++;
      this.lastFedAt += 20;
      this.frameHandler?.(this.silenceFrame, now);
    }
    if (now - this.lastFedAt > 20 * MAX_FILL_FRAMES) this.lastFedAt = now; // after a stall
  }

  get sampleRate(): OpenedMedia['sampleRate'] {
    return this.endpoint.codec.sampleRate;
  }

  get externalHost(): string {
    return this.endpoint.externalHost;
  }

  get busy(): boolean {
    return this.endpoint.pacer.busy;
  }

  setRemote(host: string, port: number): void {
    this.endpoint.setRemote(host, port);
  }

  onFrame(handler: (frame: AudioFrame, arrivalMs: number) => void): void {
    this.frameHandler = handler;
  }

  onTalkspurtStart(handler: (at: number) => void): void {
    this.talkspurtHandler = handler;
  }

  openPlayout(): PlayoutWriter {
    const id = `u${++this.nextId}`;
    const done = new Promise<Utterance>((resolve) => this.waiting.set(id, resolve)).then((u) => ({
      completed: u.state === 'played',
      playedMs: u.playedMs,
      droppedMs: u.droppedMs,
    }));
    const pacer = this.endpoint.pacer;
    pacer.beginUtterance(id);
    let open = true;
    // Once clear() has cut this item (or it finished) it is no longer active: later writes
    // must not start new audio outside any utterance.
    const live = (): boolean => open && pacer.utterance(id) !== undefined;
    return {
      write: (frame) => {
        if (live()) pacer.enqueue(frame);
        else open = false;
      },
      end: () => {
        if (live()) pacer.endUtterance();
        open = false;
      },
      done,
    };
  }

  clear(): { droppedMs: number; lastPacketAt: number | undefined } {
    const r = this.endpoint.clear();
    return { droppedMs: r.droppedMs, lastPacketAt: r.lastSentAtMs };
  }

  async close(): Promise<void> {
    if (this.endpoint.closed) return;
    this.leaveClock();
    this.endpoint.clear();
    const stats = this.endpoint.stats();
    await this.endpoint.close();
    // Anything still waiting was cut by the close.
    for (const [id, resolve] of this.waiting) {
      resolve({ id, state: 'cleared', enqueuedMs: 0, playedMs: 0, droppedMs: 0, firstSentAtMs: undefined, lastSentAtMs: undefined });
    }
    this.waiting.clear();
    this.onClose(this.endpoint, stats, this.syntheticSilenceFrames);
  }
}

export interface RtpMediaFactory extends MediaFactory {
  readonly openEndpoints: number;
  /** Outbound pacing of every ended call, merged: |send - schedule| and interval jitter. */
  readonly pacing: { sendDeviation: LatencyHistogram; intervalJitter: LatencyHistogram };
}

export function createRtpMediaFactory(opts: RtpMediaFactoryOptions): RtpMediaFactory {
  let open = 0;
  const clock = opts.clock ?? sharedMediaClock;
  const pacing = { sendDeviation: new LatencyHistogram(), intervalJitter: new LatencyHistogram() };
  const recordStats = (endpoint: RtpEndpoint, stats: RtpEndpointStats, syntheticSilenceFrames: number): void => {
    open--;
    pacing.sendDeviation.merge(endpoint.pacer.stats.sendDeviation);
    pacing.intervalJitter.merge(endpoint.pacer.stats.intervalJitter);
    opts.metrics.rtpPacketsIn.inc(undefined, stats.packetsIn);
    opts.metrics.rtpPacketsOut.inc(undefined, stats.packetsOut);
    if (syntheticSilenceFrames > 0) opts.metrics.syntheticSilence.inc(undefined, syntheticSilenceFrames);
    for (const [reason, n] of Object.entries(stats.dropped)) if (n > 0) opts.metrics.rtpDropped.inc({ reason }, n);
    if (stats.jitter.concealed > 0) opts.metrics.rtpConcealed.inc(undefined, stats.jitter.concealed);
  };
  return {
    get openEndpoints() {
      return open;
    },
    pacing,
    async openMedia(format: ExternalMediaFormat, log: Logger): Promise<OpenedMedia> {
      const endpoint = await RtpEndpoint.open({
        codec: format,
        host: opts.rtpHost ?? '127.0.0.1',
        ...(opts.advertisedHost ? { advertisedHost: opts.advertisedHost } : {}),
        port: opts.rtpPorts ?? 0,
        clock,
      });
      open++;
      return new RtpSessionMedia(endpoint, clock, log, recordStats);
    },
    createVad(media: OpenedMedia, agentName: string, turn?: Partial<TurnDetectorConfig>): SessionVad {
      const sampleRate = media.sampleRate as VadSampleRate;
      const windowSamples = opts.vadWindowMs ? Math.round((sampleRate * opts.vadWindowMs) / 1000) : undefined;
      const vad = new CallVad(opts.vadSource, {
        sampleRate,
        ...(windowSamples ? { windowSamples } : {}),
        turn: { ...opts.defaultTurn, ...opts.turnFor?.(agentName), ...turn },
      });
      return {
        push: (frame, at) => vad.push(frame, at),
        onEvent: (handler) => void vad.onEvent(handler),
        get endOfTurnSilenceMs() {
          return vad.endOfTurnSilenceMs;
        },
        close: () => {
          opts.metrics.vadWindows.inc(undefined, vad.stats.windowsProcessed);
          if (vad.stats.windowsDropped > 0) opts.metrics.vadWindowsDropped.inc(undefined, vad.stats.windowsDropped);
          vad.close();
        },
      };
    },
  };
}
