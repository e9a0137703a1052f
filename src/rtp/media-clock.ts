/**
 * One drift-free 20 ms clock for every call in the process.
 *
 * Ticks are due at `anchor + n * periodMs`. Each timer is armed for the next due time
 * measured on the monotonic clock, so timer lateness never accumulates. When the timer
 * fires late, every tick that fell due since runs at once (catch-up, so pacers keep
 * their rate); after a long stall only the last `maxCatchUpTicks` are run and the rest
 * are skipped (counted), so a blocked event loop does not turn into a burst of packets.
 * The clock runs only while at least one listener is registered: no timer leaks.
 */
import { LatencyHistogram } from './histogram.js';
import { monotonicMs } from './time.js';

export interface ClockTick {
  /** Period number since the clock started (skipped periods included). */
  readonly index: number;
  /** When this tick was due (monotonic ms). */
  readonly scheduledMs: number;
  /** When the clock began running this batch of ticks (monotonic ms). */
  readonly firedMs: number;
}

export type ClockListener = (tick: ClockTick) => void;

/** The timer and time source the clock uses; replaceable in tests. */
export interface ClockTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: ClockTimers = {
  now: monotonicMs,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface MediaClockOptions {
  periodMs?: number;
  /** Most overdue ticks run back to back after a stall. Default 3. */
  maxCatchUpTicks?: number;
  /**
   * Ticks are run when the timer fires up to this early (Node timers have millisecond
   * granularity against a cached loop time). Default 0.5 ms.
   */
  earlyToleranceMs?: number;
  timers?: ClockTimers;
  /** Called when a listener throws; the other listeners still run. */
  onListenerError?: (err: unknown) => void;
}

export interface MediaClockStats {
  ticks: number;
  skippedTicks: number;
  listenerErrors: number;
  /** |fired - due| per tick, ms. */
  readonly lateness: LatencyHistogram;
}

export class MediaClock {
  readonly periodMs: number;
  readonly stats: MediaClockStats = { ticks: 0, skippedTicks: 0, listenerErrors: 0, lateness: new LatencyHistogram() };

  private readonly maxCatchUpTicks: number;
  private readonly earlyToleranceMs: number;
  private readonly timers: ClockTimers;
  private readonly onListenerError: (err: unknown) => void;
  private readonly listeners = new Set<ClockListener>();
  private timer: unknown = undefined;
  private firing = false;
  private index = 0;
  private nextDueMs = 0;
  private anchorMs = 0;
  private readonly onTimer = (): void => this.fire();

  constructor(opts: MediaClockOptions = {}) {
    this.periodMs = opts.periodMs ?? 20;
    this.maxCatchUpTicks = opts.maxCatchUpTicks ?? 3;
    this.earlyToleranceMs = opts.earlyToleranceMs ?? 0.5;
    this.timers = opts.timers ?? realTimers;
    this.onListenerError = opts.onListenerError ?? defaultListenerError;
    if (!(this.periodMs > 0)) throw new RangeError(`clock period must be positive, got ${this.periodMs}`);
    if (!Number.isInteger(this.maxCatchUpTicks) || this.maxCatchUpTicks < 1) throw new RangeError('maxCatchUpTicks must be an integer >= 1');
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Whether a timer is armed (or ticks are being dispatched right now). */
  get running(): boolean {
    return this.timer !== undefined || this.firing;
  }

  /**
   * Call `listener` on every tick from the next one on (a listener registered by another
   * listener during a tick also receives that tick). Returns the function that
   * unregisters it (idempotent); the clock stops when the last listener leaves.
   */
  register(listener: ClockListener): () => void {
    this.listeners.add(listener);
    // While firing, the end of fire() re-arms on the current schedule.
    if (this.timer === undefined && !this.firing) this.start();
    return () => this.unregister(listener);
  }

  unregister(listener: ClockListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0) this.stop();
  }

  private start(): void {
    this.anchorMs = this.timers.now();
    this.index = 1;
    this.nextDueMs = this.anchorMs + this.periodMs;
    this.arm();
  }

  private stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    const delay = this.nextDueMs - this.timers.now();
    this.timer = this.timers.setTimeout(this.onTimer, delay > 1 ? delay : 1);
  }

  private fire(): void {
    this.timer = undefined;
    this.firing = true;
    try {
      this.runDueTicks();
    } finally {
      this.firing = false;
    }
    // Listeners may all have left during the ticks (then the clock stays stopped).
    if (this.listeners.size > 0) this.arm();
  }

  private runDueTicks(): void {
    const firedMs = this.timers.now();
    const overdue = firedMs + this.earlyToleranceMs - this.nextDueMs;
    if (overdue >= 0) {
      const due = Math.floor(overdue / this.periodMs) + 1;
      if (due > this.maxCatchUpTicks) {
        const skip = due - this.maxCatchUpTicks;
        this.stats.skippedTicks += skip;
        this.index += skip;
      }
      const run = due > this.maxCatchUpTicks ? this.maxCatchUpTicks : due;
      for (let i = 0; i < run && this.listeners.size > 0; i++) {
        const scheduledMs = this.anchorMs + this.index * this.periodMs;
        this.stats.lateness.record(Math.abs(firedMs - scheduledMs));
        this.stats.ticks++;
        this.index++;
        this.dispatch({ index: this.index - 1, scheduledMs, firedMs });
      }
      this.nextDueMs = this.anchorMs + this.index * this.periodMs;
    }
  }

  private dispatch(tick: ClockTick): void {
    for (const listener of this.listeners) {
      try {
        listener(tick);
      } catch (err) {
        this.stats.listenerErrors++;
        this.onListenerError(err);
      }
    }
  }
}

function defaultListenerError(err: unknown): void {
  process.emitWarning(`media clock listener threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, 'MediaClockWarning');
}

/** The process-wide clock every call's pacer shares. */
export const sharedMediaClock = new MediaClock();
