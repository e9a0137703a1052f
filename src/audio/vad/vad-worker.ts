/**
 * The VAD thread: owns the onnxruntime session (one SileroVadModel) and the recurrent state
 * of every stream, batches windows from all streams with a VadBatcher, and posts the
 * probabilities back. Started by WorkerVadSource (worker-vad-source.ts); the protocol is in
 * vad-worker-protocol.ts.
 *
 * onnxruntime-node's session.run does its work synchronously on the calling thread, so here
 * it blocks this thread's event loop instead of the main one, where the media clock runs.
 *
 * A RESET gives the stream a fresh SileroVadStream rather than zeroing the old one: a window
 * of that stream still waiting in the batcher (or running) then updates only the discarded
 * object, never the new state, whichever comes first, the run or the reset.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { raiseThisThread } from '../../threads/thread-priority.js';
import { currentOsThreadId } from '../../threads/worker-bootstrap.js';
import { isVadSampleRate } from './silero-layout.js';
import { SileroVadModel } from './silero-model.js';
import type { VadStream } from './silero-stream.js';
import { VadBatcher } from './vad-batcher.js';
import {
  Op,
  OP_SIZE,
  type FromWorker,
  type OpsMessage,
  type ResultsMessage,
  type ToWorker,
  type VadWorkerInit,
  type VadWorkerStats,
  isVadWorkerData,
} from './vad-worker-protocol.js';

interface StreamEntry {
  readonly rate: 8000 | 16000;
  readonly windowSamples: number;
  vad: VadStream;
}

export async function runVadWorker(port: MessagePort, init: VadWorkerInit): Promise<void> {
  const model = await SileroVadModel.load(init.modelPath, init.session);
  const batcher = new VadBatcher(model, {
    ...(init.maxBatch !== undefined ? { maxBatch: init.maxBatch } : {}),
    ...(init.maxWaitMs !== undefined ? { maxWaitMs: init.maxWaitMs } : {}),
  });
  const streams = new Map<number, StreamEntry>();
  let outstanding = 0;
  let onDrained: (() => void) | undefined;
  let shuttingDown = false;

  // Results settle in bursts (a run resolves its whole batch at once): gather them and
  // post one message per burst.
  let doneSeqs: number[] = [];
  let doneProbs: number[] = [];
  let failures: Array<[number, string]> = [];
  let flushScheduled = false;

  const post = (msg: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(msg, transfer);

  const flush = (): void => {
    flushScheduled = false;
    if (doneSeqs.length === 0 && failures.length === 0) return;
    const msg: ResultsMessage = {
      type: 'results',
      seqs: Float64Array.from(doneSeqs),
      probabilities: Float32Array.from(doneProbs),
      failures,
    };
    doneSeqs = [];
    doneProbs = [];
    failures = [];
    post(msg, [msg.seqs.buffer as ArrayBuffer, msg.probabilities.buffer as ArrayBuffer]);
  };
  const scheduleFlush = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  };
  const settled = (): void => {
    outstanding--;
    scheduleFlush();
    if (outstanding === 0) onDrained?.();
  };
  const fail = (seq: number, err: unknown): void => {
    failures.push([seq, err instanceof Error ? err.message : String(err)]);
  };

  const applyOps = ({ ops, audio }: OpsMessage): void => {
    for (let i = 0; i + OP_SIZE <= ops.length; i += OP_SIZE) {
      const kind = ops[i] as number;
      const id = ops[i + 1] as number;
      const a = ops[i + 2] as number;
      const b = ops[i + 3] as number;
      switch (kind) {
        case Op.Open: {
          if (!isVadSampleRate(a)) throw new Error(`VAD worker: stream ${id} opened at ${a} Hz`);
          streams.get(id)?.vad.close();
          streams.set(id, { rate: a, windowSamples: b, vad: batcher.createStream(a, b) });
          break;
        }
        case Op.Infer: {
          const entry = streams.get(id);
          if (!entry || shuttingDown) {
            fail(a, new Error(shuttingDown ? 'VAD worker shutting down' : `VAD worker: no stream ${id}`));
            scheduleFlush();
            break;
          }
          outstanding++;
          entry.vad.infer(audio.subarray(b, b + entry.windowSamples)).then(
            (p) => {
              doneSeqs.push(a);
              doneProbs.push(p);
              settled();
            },
            (err: unknown) => {
              fail(a, err);
              settled();
            },
          );
          break;
        }
        case Op.Reset: {
          const entry = streams.get(id);
          if (entry) {
            entry.vad.close();
            entry.vad = batcher.createStream(entry.rate, entry.windowSamples);
          }
          break;
        }
        case Op.Close: {
          streams.get(id)?.vad.close();
          streams.delete(id);
          break;
        }
        default:
          throw new Error(`VAD worker: unknown op ${kind}`);
      }
    }
  };

  const stats = (): VadWorkerStats => {
    const s = batcher.stats;
    return {
      runs: s.runs,
      windows: s.windows,
      largestBatch: s.largestBatch,
      meanBatch: s.runs > 0 ? s.windows / s.runs : 0,
      meanWaitMs: s.windows > 0 ? s.totalWaitMs / s.windows : 0,
      longestWaitMs: s.longestWaitMs,
      failedRuns: s.failedRuns,
      streams: streams.size,
    };
  };

  const shutdown = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    batcher.close(); // rejects windows not yet running
    if (outstanding > 0) await new Promise<void>((resolve) => (onDrained = resolve));
    flush();
    await model.close(); // only after the last run: releasing under a run is unsafe
    port.close(); // nothing else keeps this thread alive: it ends
  };

  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'ops':
        applyOps(msg);
        break;
      case 'stats':
        post({ type: 'stats', id: msg.id, stats: stats() });
        break;
      case 'shutdown':
        // A failure here is an unhandled rejection, which ends this thread with an error:
        // the main thread handles it like any crash.
        void shutdown();
        break;
    }
  });
  const osThreadId = currentOsThreadId();
  if (init.priority && init.priority !== 'normal') raiseThisThread(init.priority, osThreadId);
  post({
    type: 'ready',
    version: model.version,
    path: model.path,
    windows: { 8000: [...model.layout.windows[8000]], 16000: [...model.layout.windows[16000]] },
    ...(osThreadId !== undefined ? { osThreadId } : {}),
  });
}

if (!isMainThread && parentPort && isVadWorkerData(workerData)) {
  // A failed load is an uncaught error: the starter sees it as the worker's 'error' event.
  await runVadWorker(parentPort, workerData);
}
