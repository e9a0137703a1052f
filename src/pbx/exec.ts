/** Running helper programs (mmdebstrap, chroot, apt-get) with captured, bounded output. */
import { spawn } from 'node:child_process';

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with each complete output line (stdout and stderr) as it arrives. */
  onLine?: (line: string) => void;
  /** Keep at most this many characters of each stream (the tail). */
  maxOutput?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const why = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with code ${result.code}`;
    const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-20).join('\n');
    super(`${command} ${why}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 256 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const partial = { out: '', err: '' };
    const feed = (which: 'out' | 'err', chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      if (which === 'out') stdout = (stdout + text).slice(-max);
      else stderr = (stderr + text).slice(-max);
      if (opts.onLine) {
        const lines = (partial[which] + text).split('\n');
        partial[which] = lines.pop() ?? '';
        for (const line of lines) opts.onLine(line);
      }
    };
    child.stdout.on('data', (c: Buffer) => feed('out', c));
    child.stderr.on('data', (c: Buffer) => feed('err', c));
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs)
        : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (opts.onLine) {
        if (partial.out) opts.onLine(partial.out);
        if (partial.err) opts.onLine(partial.err);
      }
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Run and throw a CommandError unless the command exits 0. */
export async function runChecked(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) throw new CommandError([cmd, ...args].join(' '), result);
  return result;
}

/** Is `cmd` on PATH? */
export async function which(cmd: string): Promise<string | undefined> {
  try {
    const r = await run('sh', ['-c', 'command -v "$1"', 'sh', cmd], { timeoutMs: 5000 });
    const path = r.stdout.trim();
    return r.code === 0 && path ? path : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
