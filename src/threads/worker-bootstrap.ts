/**
 * Starting the project's worker threads (VAD, media) the same way under tsx / vitest and
 * compiled.
 *
 * Under tsx or vitest a worker entry is a .ts file, which a fresh thread cannot load by
 * itself (loader hooks registered in the parent do not reach workers in Node 20, and
 * `--import tsx` in a worker's execArgv does not either). A worker is therefore started from
 * a two-line eval'd bootstrap that registers tsx's ESM loader inside the new thread and then
 * imports the entry. Compiled to .js, the entry is imported directly.
 */
import { readlinkSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `name` (given without extension) next to `moduleUrl`, with that module's extension. */
export function siblingEntry(moduleUrl: string, name: string): URL {
  return new URL(/\.[cm]?ts$/.test(new URL(moduleUrl).pathname) ? `./${name}.ts` : `./${name}.js`, moduleUrl);
}

/**
 * The script a worker starts from: imports `entry`, first registering tsx's loader in the
 * new thread when the entry is TypeScript. Runs as an eval'd (CommonJS) script; a failure
 * is an unhandled rejection there, which ends the thread with an 'error' event.
 */
export function bootstrapScript(entry: URL): string {
  const load = `import(${JSON.stringify(entry.href)})`;
  if (!/\.[cm]?ts$/.test(entry.pathname)) return `${load};`;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return ${load}; });`;
}

/** A Worker running `entry` (see bootstrapScript). */
export function startWorker(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  return new Worker(bootstrapScript(entry), { ...options, eval: true });
}

/**
 * The first message of `worker` that `isReady` accepts; rejects if the worker fails, exits
 * or sends none within `timeoutMs` (the caller terminates it). Listeners are removed either way.
 */
export function waitForReady<M, R extends M>(worker: Worker, isReady: (m: M) => m is R, timeoutMs: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const finish = (err: Error | undefined, msg?: R): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (err || msg === undefined) reject(err ?? new Error('no ready message'));
      else resolve(msg);
    };
    const onMessage = (m: M): void => {
      if (isReady(m)) finish(undefined, m);
    };
    const onError = (err: Error): void => finish(err);
    const onExit = (code: number): void => finish(new Error(`exited with code ${code}`));
    const timer = setTimeout(() => finish(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

/** This thread's Linux tid (/proc/thread-self -> "<pid>/task/<tid>"); undefined elsewhere. */
export function currentOsThreadId(): number | undefined {
  try {
    const tid = Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1]);
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}
