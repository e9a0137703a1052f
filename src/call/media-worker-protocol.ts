/**
 * Messages between the main thread (media-worker-client.ts) and the media worker
 * (media-worker.ts). Times in worker messages are the worker's performance.now(); the client
 * moves them onto the main thread's timeline with `monotonicOrigin` (below), measured on the
 * one monotonic clock both threads share.
 *
 * Main -> worker: `open` and `close` (answered by request number), and `batch`: the ordered
 * commands of one main-thread turn (remote address, playout begin / write / end, clear),
 * with the PCM of every write copied back to back into one transferred Int16Array.
 *
 * Worker -> main: inbound audio of every call gathered for FRAME_BATCH_MS into one
 * `frames` message (FRAME_FIELDS numbers per frame in `meta`, samples back to back in `pcm`,
 * both transferred); talkspurt starts, finished utterances, clear results and endpoint
 * errors one message each (a few per turn of conversation).
 */
import type { CodecName } from '../audio/g711.js';
import type { RtpEndpointStats } from '../rtp/endpoint.js';
import type { HistogramSnapshot } from '../rtp/histogram.js';
import type { PortRange } from '../rtp/udp-bind.js';
import type { PriorityOutcome, ThreadPriority } from '../threads/thread-priority.js';

export interface MediaWorkerInit {
  switchboardMediaWorker: 1;
  /** How often the worker reports its media clock's lateness while calls are up (ms). */
  clockReportMs: number;
  /**
   * Scheduling priority of the media thread (see threads/thread-priority.ts), so that on a
   * busy machine its 20 ms ticks run ahead of bulk work (VAD, plugins, Asterisk's threads).
   */
  priority: ThreadPriority;
}

export function isMediaWorkerData(x: unknown): x is MediaWorkerInit {
  return typeof x === 'object' && x !== null && (x as { switchboardMediaWorker?: unknown }).switchboardMediaWorker === 1;
}

export type MediaCommand =
  | { op: 'remote'; media: number; host: string; port: number }
  | { op: 'begin'; media: number; utterance: number }
  /** `length` samples from `offset` in the batch's pcm, at the call's codec rate. */
  | { op: 'write'; media: number; offset: number; length: number }
  | { op: 'end'; media: number }
  | { op: 'clear'; media: number; req: number };

export type ToMediaWorker =
  | { type: 'open'; req: number; media: number; codec: CodecName; host: string; advertisedHost?: string; port: number | PortRange }
  | { type: 'batch'; commands: MediaCommand[]; pcm: Int16Array }
  | { type: 'close'; req: number; media: number }
  /** Liveness check: answered with `pong` at once by a worker whose event loop runs. */
  | { type: 'ping'; req: number }
  | { type: 'shutdown' };

/**
 * Where this thread's performance.now() starts on the process-wide monotonic clock
 * (process.hrtime), in ms. performance.timeOrigin would not do: it is a wall-clock stamp per
 * thread, so an NTP step between the two threads' starts would shift every converted time.
 */
export function monotonicOrigin(): number {
  return Number(process.hrtime.bigint()) / 1e6 - performance.now();
}

/**
 * `a` copied into an array of the same type at least `atLeast` long (doubling), for the
 * growable arrays both sides gather a batch's samples and frame fields in.
 */
export function grown<T extends Float64Array | Int16Array>(a: T, atLeast: number): T {
  let n = a.length * 2;
  while (n < atLeast) n *= 2;
  const bigger = new (a.constructor as new (n: number) => T)(n);
  bigger.set(a);
  return bigger;
}

/** Per frame in a `frames` message: media id, arrival ms, sample offset, sample count. */
export const FRAME_FIELDS = 4;

export interface ClosedStatsMessage {
  endpoint: RtpEndpointStats;
  sendDeviation: HistogramSnapshot;
  intervalJitter: HistogramSnapshot;
  syntheticSilenceFrames: number;
}

export interface ClockReport {
  lateness: HistogramSnapshot;
  ticks: number;
  skippedTicks: number;
  /** Pacers and silence fillers registered on the clock (0 once every call has closed). */
  listeners: number;
}

export type FromMediaWorker =
  | { type: 'ready'; monotonicOrigin: number; osThreadId?: number; priority: PriorityOutcome }
  | { type: 'pong'; req: number }
  | { type: 'opened'; req: number; externalHost: string }
  | { type: 'open-failed'; req: number; message: string; code?: string }
  | { type: 'frames'; meta: Float64Array; pcm: Int16Array; count: number }
  | { type: 'talkspurt'; media: number; at: number }
  | { type: 'utterance'; media: number; utterance: number; completed: boolean; playedMs: number; droppedMs: number }
  | { type: 'cleared'; media: number; req: number; droppedMs: number; lastPacketAt: number | undefined }
  | { type: 'closed'; req: number; media: number; stats: ClosedStatsMessage | undefined }
  | { type: 'media-error'; media: number; message: string }
  | { type: 'clock'; report: ClockReport };
