/**
 * Per-call VAD pipeline: RTP-sized PCM frames in, turn events with wire timestamps out.
 *
 *   push(frame, arrivalMs) -> rechunk into model windows (256 samples at 8 kHz, 512 at
 *   16 kHz) -> the shared model or batcher -> TurnDetector -> speech_start / speech_end.
 *
 * Each window remembers the arrival time of the packet holding its first sample and of the
 * packet that completed it, so events carry times on the wire, not inference times.
 * Windows are inferred strictly one after another (the recurrent state demands it), so
 * events come out in audio order however long inference takes. If inference falls behind
 * by more than `maxQueuedWindows`, the oldest waiting windows are dropped: consecutive
 * dropped windows coalesce into one gap, fed to the detector as "not observed" (it keeps
 * the previous voiced/unvoiced class for that time), and `stats.windowsDropped` counts them.
 *
 * Quiet windows (RMS below `silenceFloorDbfs`, default -60 dBFS: a muted or digitally silent
 * line, far below any speech) are decided "unvoiced" without running the model: Silero
 * answers ~0 for them anyway, and on a telephone line they are most of the time. The model's
 * recurrent state is left as it was (resetting it after a pause made barge-in ~20 ms slower
 * in `npm run bench -- --only latency`). Silero needs context to call an onset promptly
 * (from a cold state it is ~100 ms late), so when the state is cold (nothing inferred yet) or
 * a long quiet run (LONG_QUIET_WINDOWS) came before, the first window above the floor is
 * preceded by the last quiet one, run only to give the model the silence it would have seen
 * (its decision was already made; if inference falls behind, it is dropped with its window). They keep their place in the queue, so decisions stay in
 * audio order.
 */
import type { AudioFrame } from '../frame.js';
import type { VadSampleRate } from './silero-layout.js';
import type { VadStream, VadStreamSource } from './silero-stream.js';
import { TurnDetector, type TurnDetectorConfig, type TurnEvent } from './turn-detector.js';

export interface CallVadOptions {
  sampleRate: VadSampleRate;
  /** Samples per model window (default: the model's, 256 at 8 kHz / 512 at 16 kHz). */
  windowSamples?: number;
  turn?: Partial<TurnDetectorConfig>;
  /** Windows allowed to wait for inference before the oldest are dropped (default 8, 256 ms at 32 ms). */
  maxQueuedWindows?: number;
  /** Clock for `decidedAt`; must be the clock arrival times use (default performance.now). */
  now?: () => number;
  /** Windows quieter than this (RMS, dBFS) skip the model as unvoiced; null runs every window. Default -60. */
  silenceFloorDbfs?: number | null;
}

/** A quiet run this long (256 ms at 32 ms windows) is followed by a primer window. */
const LONG_QUIET_WINDOWS = 8;

export interface CallVadStats {
  /** Windows the model produced a probability for. */
  windowsProcessed: number;
  /** Windows dropped because inference fell behind. */
  windowsDropped: number;
  /** Windows whose inference failed (treated like dropped ones for turn-taking). */
  inferenceErrors: number;
  /** Windows below the silence floor, decided unvoiced without the model. */
  windowsQuiet: number;
  /** Quiet windows run afterwards only to warm the model before speech. */
  windowsPrimed: number;
  speechStarts: number;
  speechEnds: number;
  /** Most windows ever waiting at once. */
  maxQueued: number;
}

interface QueuedWindow {
  kind: 'window';
  samples: Float32Array;
  /** Run to warm the model's state only: no decision (one was made when it was quiet). */
  primeOnly?: true;
  firstPacketAt: number;
  lastPacketAt: number;
}

interface QueuedQuiet {
  kind: 'quiet';
  firstPacketAt: number;
  lastPacketAt: number;
}

interface QueuedGap {
  kind: 'gap';
  windows: number;
  firstPacketAt: number;
  lastPacketAt: number;
}

type Queued = QueuedWindow | QueuedQuiet | QueuedGap;

export type CallVadEventHandler = (event: TurnEvent) => void;

export class CallVad {
  readonly sampleRate: VadSampleRate;
  readonly windowSamples: number;
  readonly windowMs: number;
  readonly stats: CallVadStats = {
    windowsProcessed: 0,
    windowsDropped: 0,
    inferenceErrors: 0,
    windowsQuiet: 0,
    windowsPrimed: 0,
    speechStarts: 0,
    speechEnds: 0,
    maxQueued: 0,
  };

  private readonly stream: VadStream;
  private readonly detector: TurnDetector;
  private readonly maxQueued: number;
  private readonly now: () => number;
  private readonly handlers = new Set<CallVadEventHandler>();
  private readonly errorHandlers = new Set<(err: unknown) => void>();

  private fill: Float32Array;
  /** Window buffers whose inference has settled, reused to avoid garbage per window. */
  private spare: Float32Array[] = [];
  private filled = 0;
  /** Sum of squares of the window being filled (samples in [-1, 1)). */
  private fillEnergy = 0;
  /** fillEnergy below which a full window is quiet; -1 when the floor is off. */
  private readonly quietEnergy: number;
  /** The last quiet window's samples, while the quiet run lasts (see the header). */
  private primer: Float32Array | undefined;
  /** Quiet windows pushed since the last loud one, and whether a loud one was ever pushed. */
  private pushedQuietRun = 0;
  private warm = false;
  private fillFirstPacketAt = 0;
  private queue: Queued[] = [];
  private queuedWindows = 0;
  private inFlight = false;
  /** Bumped by reset(): results of windows pushed before it are ignored. */
  private epoch = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(source: VadStreamSource, options: CallVadOptions) {
    this.maxQueued = options.maxQueuedWindows ?? 8;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 1) throw new Error('CallVad: maxQueuedWindows must be >= 1');
    this.detector = new TurnDetector(options.turn); // validates the turn config before a stream exists
    this.now = options.now ?? (() => performance.now());
    this.sampleRate = options.sampleRate;
    this.stream = source.createStream(options.sampleRate, options.windowSamples);
    this.windowSamples = this.stream.windowSamples;
    this.windowMs = (this.windowSamples * 1000) / this.sampleRate;
    this.fill = new Float32Array(this.windowSamples);
    const floor = options.silenceFloorDbfs === undefined ? -60 : options.silenceFloorDbfs;
    if (floor !== null && !(Number.isFinite(floor) && floor < 0)) throw new Error('CallVad: silenceFloorDbfs must be a negative number of dBFS or null');
    // RMS < 10^(floor/20)  <=>  sum of squares < n * 10^(floor/10)
    this.quietEnergy = floor === null ? -1 : this.windowSamples * 10 ** (floor / 10);
  }

  get endOfTurnSilenceMs(): number {
    return this.detector.config.endOfTurnSilenceMs;
  }

  get turnConfig(): Readonly<TurnDetectorConfig> {
    return this.detector.config;
  }

  /** True between speech_start and speech_end. */
  get speaking(): boolean {
    return this.detector.state === 'speech';
  }

  /** Subscribe to speech_start / speech_end; returns the unsubscribe function. */
  onEvent(handler: CallVadEventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Subscribe to failures: inference errors (the window is then skipped like a dropped one)
   * and exceptions thrown by event handlers.
   */
  onError(handler: (err: unknown) => void): () => void {
    this.errorHandlers.add(handler);
    return () => this.errorHandlers.delete(handler);
  }

  /** Inbound PCM at `sampleRate`, in arrival order, stamped with its packet's arrival time. */
  push(frame: AudioFrame, arrivalMs: number): void {
    if (this.closed) return;
    if (frame.sampleRate !== this.sampleRate) {
      throw new Error(`CallVad runs at ${this.sampleRate} Hz, got a ${frame.sampleRate} Hz frame`);
    }
    const s = frame.samples;
    let i = 0;
    while (i < s.length) {
      if (this.filled === 0) this.fillFirstPacketAt = arrivalMs;
      const take = Math.min(s.length - i, this.windowSamples - this.filled);
      const fill = this.fill;
      let energy = 0;
      for (let k = 0; k < take; k++) {
        const v = (s[i + k] as number) / 32768;
        fill[this.filled + k] = v;
        energy += v * v;
      }
      this.fillEnergy += energy;
      this.filled += take;
      i += take;
      if (this.filled === this.windowSamples) {
        if (this.fillEnergy < this.quietEnergy) {
          this.queue.push({ kind: 'quiet', firstPacketAt: this.fillFirstPacketAt, lastPacketAt: arrivalMs });
          // Keep these samples as the primer; fill the previous primer's buffer next.
          const previous = this.primer;
          this.primer = fill;
          this.fill = previous ?? this.spare.pop() ?? new Float32Array(this.windowSamples);
          this.pushedQuietRun++;
        } else {
          // Cold (nothing inferred yet), or after a long pause: give the model the last quiet window first.
          const cold = !this.warm || this.pushedQuietRun >= LONG_QUIET_WINDOWS;
          if (this.primer && cold) {
            this.queue.push({ kind: 'window', samples: this.primer, primeOnly: true, firstPacketAt: this.fillFirstPacketAt, lastPacketAt: this.fillFirstPacketAt });
          } else if (this.primer) {
            this.recycle(this.primer);
          }
          this.primer = undefined;
          this.pushedQuietRun = 0;
          this.warm = true;
          this.enqueue({ kind: 'window', samples: fill, firstPacketAt: this.fillFirstPacketAt, lastPacketAt: arrivalMs });
          this.fill = this.spare.pop() ?? new Float32Array(this.windowSamples);
        }
        this.filled = 0;
        this.fillEnergy = 0;
      }
    }
    this.pump();
  }

  /** Resolves once every complete window pushed so far has been decided. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Forget the partial window, queued windows, model state and turn state. */
  reset(): void {
    this.epoch++;
    this.filled = 0;
    this.fillEnergy = 0;
    this.primer = undefined;
    this.pushedQuietRun = 0;
    this.warm = false;
    this.queue = [];
    this.queuedWindows = 0;
    this.detector.reset();
    this.stream.reset();
    this.notifyIfIdle();
  }

  /** Stop: drop everything, release the model stream, no more events. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.epoch++;
    this.queue = [];
    this.queuedWindows = 0;
    this.handlers.clear();
    this.errorHandlers.clear();
    this.stream.close();
    this.notifyIfIdle();
  }

  private enqueue(w: QueuedWindow): void {
    this.queue.push(w);
    this.queuedWindows++;
    if (this.queuedWindows > this.stats.maxQueued) this.stats.maxQueued = this.queuedWindows;
    if (this.queuedWindows > this.maxQueued) this.dropOldestWindow();
  }

  /** Turn the oldest waiting window into (part of) a gap. */
  private dropOldestWindow(): void {
    let i = this.queue.findIndex((q) => q.kind === 'window' && !q.primeOnly);
    const w = this.queue[i];
    if (!w || w.kind !== 'window') return;
    const primer = this.queue[i - 1];
    if (primer?.kind === 'window' && primer.primeOnly) {
      // Its window is not going to be inferred: warming the state for it is wasted work.
      this.queue.splice(i - 1, 1);
      this.recycle(primer.samples);
      i--;
    }
    const prev = this.queue[i - 1];
    if (prev?.kind === 'gap') {
      prev.windows++;
      prev.lastPacketAt = w.lastPacketAt;
      this.queue.splice(i, 1);
    } else {
      this.queue[i] = { kind: 'gap', windows: 1, firstPacketAt: w.firstPacketAt, lastPacketAt: w.lastPacketAt };
    }
    this.queuedWindows--;
    this.stats.windowsDropped++;
    this.recycle(w.samples);
  }

  private recycle(window: Float32Array): void {
    if (this.spare.length < 4) this.spare.push(window);
  }

  private pump(): void {
    while (!this.inFlight && !this.closed) {
      const next = this.queue.shift();
      if (!next) break;
      if (next.kind === 'gap') {
        this.decide(undefined, next.windows * this.windowMs, next.firstPacketAt, next.lastPacketAt);
        continue;
      }
      if (next.kind === 'quiet') {
        this.stats.windowsQuiet++;
        this.decide(0, this.windowMs, next.firstPacketAt, next.lastPacketAt);
        continue;
      }
      if (!next.primeOnly) this.queuedWindows--;
      this.inFlight = true;
      const epoch = this.epoch;
      void this.stream.infer(next.samples).then(
        (p) => this.settle(epoch, next, p),
        (err: unknown) => {
          if (epoch === this.epoch && !this.closed) {
            this.stats.inferenceErrors++;
            this.reportError(err);
          }
          this.settle(epoch, next, undefined);
        },
      );
    }
    this.notifyIfIdle();
  }

  private settle(epoch: number, w: QueuedWindow, probability: number | undefined): void {
    this.inFlight = false;
    this.recycle(w.samples);
    if (w.primeOnly) {
      if (epoch === this.epoch && !this.closed && probability !== undefined) this.stats.windowsPrimed++;
    } else if (epoch === this.epoch && !this.closed) {
      if (probability !== undefined) this.stats.windowsProcessed++;
      this.decide(probability, this.windowMs, w.firstPacketAt, w.lastPacketAt);
    }
    this.pump();
  }

  private decide(probability: number | undefined, durationMs: number, firstPacketAt: number, lastPacketAt: number): void {
    const event = this.detector.feed({ probability, durationMs, firstPacketAt, lastPacketAt, now: this.now() });
    if (!event) return;
    if (event.type === 'speech_start') this.stats.speechStarts++;
    else this.stats.speechEnds++;
    for (const h of this.handlers) {
      try {
        h(event);
      } catch (err) {
        // A failing listener must not stall the pipeline or starve the other listeners.
        this.reportError(err);
      }
    }
  }

  private reportError(err: unknown): void {
    for (const h of this.errorHandlers) {
      try {
        h(err);
      } catch {
        // An error handler that throws has nowhere left to report to.
      }
    }
  }

  private isIdle(): boolean {
    return this.closed || (!this.inFlight && this.queue.length === 0);
  }

  private notifyIfIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
