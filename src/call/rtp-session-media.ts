/**
 * One call's media as the session sees it (the SessionMedia port), on an RtpEndpoint in the
 * thread that runs this code: the main thread (SWITCHBOARD_MEDIA_THREAD=main) or the media
 * worker (media-worker.ts), which drives one of these per call on behalf of a
 * RemoteSessionMedia on the main thread.
 */
import type { AudioFrame } from '../audio/frame.js';
import type { RtpEndpoint, RtpEndpointStats } from '../rtp/endpoint.js';
import type { LatencyHistogram } from '../rtp/histogram.js';
import type { MediaClock } from '../rtp/media-clock.js';
import type { Utterance } from '../rtp/pacer.js';
import type { OpenedMedia } from './call-controller.js';
import type { ClearOutcome, PlayoutWriter } from './session-ports.js';

/**
 * Inbound gap after which silence is synthesised for VAD and the utterance buffer. The fill
 * covers the whole gap at once, so end-of-turn timing does not depend on this value as long
 * as it is well below the end-of-turn silence; it is long enough that a late burst (network
 * jitter, a stalled sender) is not mistaken for a caller who stopped sending, which would
 * insert silence into the middle of the utterance.
 */
export const SILENCE_AFTER_MS = 200;
/** Most synthetic frames fed at once (a stalled event loop must not cause a burst). */
const MAX_FILL_FRAMES = 10;

/** What a call's media reports when it closes. */
export interface ClosedMediaStats {
  endpoint: RtpEndpointStats;
  sendDeviation: LatencyHistogram;
  intervalJitter: LatencyHistogram;
  syntheticSilenceFrames: number;
}

export class RtpSessionMedia implements OpenedMedia {
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
    onError: (err: unknown) => void,
    private readonly onClose: (stats: ClosedMediaStats) => void,
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
      error: onError,
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

  /** clear(), done now: nothing queued before this call is sent after it. */
  clearNow(): ClearOutcome {
    const r = this.endpoint.clear();
    return { droppedMs: r.droppedMs, lastPacketAt: r.lastSentAtMs };
  }

  clear(): Promise<ClearOutcome> {
    return Promise.resolve(this.clearNow());
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
    const pacing = this.endpoint.pacer.stats;
    this.onClose({ endpoint: stats, sendDeviation: pacing.sendDeviation, intervalJitter: pacing.intervalJitter, syntheticSilenceFrames: this.syntheticSilenceFrames });
  }
}
