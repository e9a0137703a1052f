/**
 * Switchboard as a separate process, so its CPU and memory are measured apart from Asterisk
 * and SIPp. `cli` runs the real entry point (`node bin/switchboard.js start ...`); `summaries`
 * runs bench/switchboard-child.ts, the same startSwitchboard() plus one log line per ended
 * call with the call's full timing summary (barge-in decision times are not in the CLI's logs).
 * The pino JSON log on stdout is parsed as it arrives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { onCleanup, sleep } from './cleanup.js';
import { Scrape } from './prometheus.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LogRecord {
  level: number;
  time: number;
  msg: string;
  [key: string]: unknown;
}

export interface SwitchboardProcessOptions {
  instance: string;
  mode: 'cli' | 'summaries';
  maxCalls?: number;
  /** Raw stdout/stderr goes here. */
  logFile: string;
}

/** A free TCP port on 127.0.0.1 (racy in theory, fine for a benchmark). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class SwitchboardProcess {
  /** Every parsed log record, in order. */
  readonly records: LogRecord[] = [];
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  private readonly unregister: () => void;

  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly httpUrl: string,
    private readonly out: WriteStream,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      out.write(`${line}\n`);
      if (!line.startsWith('{')) return;
      try {
        this.records.push(JSON.parse(line) as LogRecord);
      } catch {
        // not JSON: kept in the raw log only
      }
    });
    child.stderr!.on('data', (d: Buffer) => out.write(d));
    this.unregister = onCleanup(`stop Switchboard (pid ${pid})`, async () => void (await this.stop()), 20_000);
  }

  static async start(opts: SwitchboardProcessOptions): Promise<SwitchboardProcess> {
    const port = await freePort();
    const flags = ['--instance', opts.instance, '--agent', 'echo', '--http-port', String(port), '--max-calls', String(opts.maxCalls ?? 400)];
    // Extra node flags for the Switchboard process, e.g. BENCH_SWITCHBOARD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
    // (node refuses --cpu-prof in NODE_OPTIONS).
    const nodeArgs = (process.env.BENCH_SWITCHBOARD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const args =
      opts.mode === 'cli'
        ? [...nodeArgs, join(REPO_ROOT, 'bin/switchboard.js'), 'start', ...flags]
        : [...nodeArgs, '--import', 'tsx', join(REPO_ROOT, 'bench/switchboard-child.ts'), ...flags];
    const out = createWriteStream(opts.logFile);
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'info' },
    });
    if (child.pid === undefined) throw new Error('could not spawn Switchboard');
    const sb = new SwitchboardProcess(child, child.pid, `http://127.0.0.1:${port}`, out);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (sb.exitCode !== undefined) throw new Error(`Switchboard exited during start-up (code ${sb.exitCode}); log: ${opts.logFile}`);
      if ((await sb.health())?.ari === 'connected') return sb;
      if (Date.now() > deadline) {
        await sb.stop();
        throw new Error(`Switchboard did not become healthy within 60 s; log: ${opts.logFile}`);
      }
      await sleep(200);
    }
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  async health(): Promise<{ ari: string; activeCalls: number } | undefined> {
    try {
      const r = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return (await r.json()) as { ari: string; activeCalls: number };
    } catch {
      return undefined;
    }
  }

  async metrics(): Promise<Scrape> {
    const r = await fetch(`${this.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    return Scrape.parse(await r.text());
  }

  /** Poll until `switchboard_calls_active` is 0 (bounded); true if it got there. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const h = await this.health();
      if (h && h.activeCalls === 0) return true;
      await sleep(250);
    }
    return false;
  }

  /** Log records with this message. */
  logs(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }

  /** SIGTERM (graceful: Switchboard ends its calls), SIGKILL after 10 s. Returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.exitCode === undefined) {
      this.child.kill('SIGTERM');
      const killed = await Promise.race([this.exited.then(() => false), sleep(10_000).then(() => true)]);
      if (killed) this.child.kill('SIGKILL');
      await this.exited;
    }
    this.unregister();
    if (!this.out.writableEnded) await new Promise<void>((r) => this.out.end(() => r()));
    return this.exitCode ?? null;
  }
}
