/**
 * Which VAD source the engine runs: Silero on its own worker thread (the default), or in
 * the main thread through a VadBatcher (SWITCHBOARD_VAD_THREAD=main), the fallback should
 * the worker misbehave on some platform. Either way one session serves every call.
 */
import type { ThreadPriority } from '../../threads/thread-priority.js';
import type { Logger } from '../../log.js';
import type { SileroVersion } from './silero-layout.js';
import { SileroVadModel } from './silero-model.js';
import type { VadStreamSource } from './silero-stream.js';
import { VadBatcher } from './vad-batcher.js';
import { WorkerVadSource } from './worker-vad-source.js';

export type VadThread = 'worker' | 'main';

export const VAD_THREAD_ENV = 'SWITCHBOARD_VAD_THREAD';

/** SWITCHBOARD_VAD_THREAD: unset or empty -> 'worker'; 'worker' or 'main'; anything else throws. */
export function vadThreadFromEnv(env: NodeJS.ProcessEnv = process.env): VadThread {
  const v = env[VAD_THREAD_ENV]?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'worker') return 'worker';
  if (v === 'main') return 'main';
  throw new Error(`${VAD_THREAD_ENV} must be "worker" or "main", not ${JSON.stringify(env[VAD_THREAD_ENV])}`);
}

export interface OpenedVadSource {
  readonly source: VadStreamSource;
  readonly thread: VadThread;
  readonly version: SileroVersion;
  /** Release the session (and the worker); the source's streams stop working. */
  close(): Promise<void>;
}

export interface OpenVadSourceOptions {
  /** Default: from SWITCHBOARD_VAD_THREAD. */
  thread?: VadThread;
  /** Worker crashes and restarts are logged here. */
  logger?: Logger;
  /** Scheduling priority of the VAD worker thread (default normal). */
  priority?: ThreadPriority;
}

export async function openVadSource(opts: OpenVadSourceOptions = {}): Promise<OpenedVadSource> {
  const thread = opts.thread ?? vadThreadFromEnv();
  if (thread === 'worker') {
    const source = await WorkerVadSource.start({ ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.priority ? { priority: opts.priority } : {}) });
    return { source, thread, version: source.version, close: () => source.close() };
  }
  const model = await SileroVadModel.load();
  const batcher = new VadBatcher(model);
  return {
    source: batcher,
    thread,
    version: model.version,
    async close() {
      batcher.close();
      await model.close();
    },
  };
}
