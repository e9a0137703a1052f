/**
 * Gathers pending VAD windows from every call into one batched session.run.
 *
 * Why: a lone window costs ~0.19 ms of CPU, most of it fixed per-run overhead; in a batch
 * of 32+ it costs ~0.09 ms. At 200 calls × 31.25 windows/s that is ~0.55 core instead of
 * ~1.2 (bench/vad-micro.ts).
 *
 * Policy, per (rate, window size) group: a run starts when `maxBatch` windows are pending,
 * or `maxWaitMs` after the oldest pending window arrived, whichever is first; one run per
 * group at a time, and windows that arrive during a run wait for the next one. The added
 * delay of a VAD decision is therefore at most maxWaitMs plus one run (~0.1 ms per window
 * in the batch). Each stream has at most one window in flight (VadStream's contract), so a
 * batch never holds two windows of the same stream.
 */
import type { VadSampleRate } from './silero-layout.js';
import type { BatchItem, SileroVadModel } from './silero-model.js';
import type { SileroVadStream, VadStream, VadStreamSource } from './silero-stream.js';

export interface VadBatcherOptions {
  /** Run as soon as this many windows are pending (default 64). */
  maxBatch?: number;
  /** Longest a window waits for others before its run starts, ms (default 4; 0 = next event-loop turn). */
  maxWaitMs?: number;
  /** Clock for the wait statistics (default performance.now). */
  now?: () => number;
}

export interface VadBatcherStats {
  runs: number;
  windows: number;
  largestBatch: number;
  /** Sum over windows of (run start - submit), ms: divide by `windows` for the mean. */
  totalWaitMs: number;
  longestWaitMs: number;
  /** Runs that failed (their windows' promises rejected). */
  failedRuns: number;
}

interface Pending extends BatchItem {
  readonly submittedAt: number;
  resolve(probability: number): void;
  reject(err: unknown): void;
}

interface Group {
  readonly rate: VadSampleRate;
  pending: Pending[];
  running: boolean;
  /** Cancels the scheduled run, when one is scheduled. */
  cancelScheduled: (() => void) | undefined;
}

export class VadBatcher implements VadStreamSource {
  readonly stats: VadBatcherStats = {
    runs: 0,
    windows: 0,
    largestBatch: 0,
    totalWaitMs: 0,
    longestWaitMs: 0,
    failedRuns: 0,
  };
  private readonly maxBatch: number;
  private readonly maxWaitMs: number;
  private readonly now: () => number;
  private readonly groups = new Map<string, Group>();
  private closed = false;

  constructor(
    private readonly model: SileroVadModel,
    options: VadBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 64;
    this.maxWaitMs = options.maxWaitMs ?? 4;
    this.now = options.now ?? (() => performance.now());
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new Error('VadBatcher: maxBatch must be >= 1');
    if (!(this.maxWaitMs >= 0)) throw new Error('VadBatcher: maxWaitMs must be >= 0');
  }

  createStream(sampleRate: VadSampleRate, windowSamples = this.model.defaultWindow(sampleRate)): VadStream {
    const group = this.group(sampleRate, windowSamples);
    return this.model.createBatchedStream(sampleRate, windowSamples, (stream, window) =>
      this.submit(group, stream, window),
    );
  }

  /** Windows waiting for a run, across all groups. */
  get pendingWindows(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.pending.length;
    return n;
  }

  /** Reject everything pending and refuse new windows. The model stays open (it is shared). */
  close(): void {
    this.closed = true;
    for (const g of this.groups.values()) {
      this.cancelTimer(g);
      const pending = g.pending;
      g.pending = [];
      for (const p of pending) p.reject(new Error('VadBatcher closed'));
    }
  }

  private group(rate: VadSampleRate, windowSamples: number): Group {
    const key = `${rate}/${windowSamples}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { rate, pending: [], running: false, cancelScheduled: undefined };
      this.groups.set(key, g);
    }
    return g;
  }

  private submit(group: Group, stream: SileroVadStream, window: Float32Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error('VadBatcher closed'));
    return new Promise<number>((resolve, reject) => {
      group.pending.push({ stream, window, submittedAt: this.now(), resolve, reject });
      this.schedule(group);
    });
  }

  private schedule(group: Group): void {
    if (group.running || group.pending.length === 0) return;
    if (group.pending.length >= this.maxBatch) {
      this.cancelTimer(group);
      void this.run(group);
      return;
    }
    if (group.cancelScheduled) return;
    const oldest = (group.pending[0] as Pending).submittedAt;
    const wait = this.maxWaitMs - (this.now() - oldest);
    const fire = (): void => {
      group.cancelScheduled = undefined;
      void this.run(group);
    };
    if (wait <= 0) {
      const handle = setImmediate(fire);
      group.cancelScheduled = () => clearImmediate(handle);
    } else {
      const handle = setTimeout(fire, wait);
      group.cancelScheduled = () => clearTimeout(handle);
    }
  }

  private async run(group: Group): Promise<void> {
    if (group.running || group.pending.length === 0) return;
    group.running = true;
    const batch = group.pending.splice(0, this.maxBatch);
    const startedAt = this.now();
    for (const p of batch) {
      const waited = startedAt - p.submittedAt;
      this.stats.totalWaitMs += waited;
      if (waited > this.stats.longestWaitMs) this.stats.longestWaitMs = waited;
    }
    try {
      const probs = await this.model.runBatch(group.rate, batch);
      this.stats.runs++;
      this.stats.windows += batch.length;
      if (batch.length > this.stats.largestBatch) this.stats.largestBatch = batch.length;
      batch.forEach((p, i) => p.resolve(probs[i] as number));
    } catch (err) {
      this.stats.failedRuns++;
      for (const p of batch) p.reject(err);
    } finally {
      group.running = false;
      this.schedule(group);
    }
  }

  private cancelTimer(group: Group): void {
    group.cancelScheduled?.();
    group.cancelScheduled = undefined;
  }
}
