/**
 * Everything the benchmark starts (sandbox PBX, Switchboard, SIPp, tshark, temporary
 * directories) registers an undo step here. `runCleanup()` runs them newest first, each with
 * a time limit, exactly once; SIGINT/SIGTERM and uncaught failures run it before exiting.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Step {
  what: string;
  undo: () => Promise<void> | void;
  timeoutMs: number;
}

const steps: Step[] = [];
let running: Promise<void> | undefined;

/**
 * Register an undo step. Returns the function that unregisters it without running it (for
 * when the resource was released normally).
 */
export function onCleanup(what: string, undo: () => Promise<void> | void, timeoutMs = 30_000): () => void {
  const step: Step = { what, undo, timeoutMs };
  steps.push(step);
  return () => {
    const i = steps.indexOf(step);
    if (i >= 0) steps.splice(i, 1);
  };
}

async function runStep(step: Step): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(step.undo),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${step.timeoutMs} ms`)), step.timeoutMs);
      }),
    ]);
  } catch (err) {
    console.error(`cleanup: ${step.what} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Run every registered step, newest first. Safe to call more than once. */
export function runCleanup(): Promise<void> {
  running ??= (async () => {
    while (steps.length > 0) await runStep(steps.pop() as Step);
  })();
  return running;
}

/**
 * On SIGINT/SIGTERM: clean up, then exit 130/143. Ctrl-C reaches us twice (from the terminal
 * and relayed by tsx's parent process), so a repeat within 2 s is ignored; a later one exits
 * at once.
 */
export function installSignalHandlers(log: (msg: string) => void = console.error): void {
  let caughtAt: number | undefined;
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      if (caughtAt !== undefined) {
        if (Date.now() - caughtAt > 2000) process.exit(code);
        return;
      }
      caughtAt = Date.now();
      log(`\n${sig}: cleaning up (sandbox PBX, Switchboard, SIPp, temporary files)...`);
      void runCleanup().finally(() => process.exit(code));
    });
  }
}

/** A temporary directory removed at cleanup. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Send `signal` to `pid`, ignoring a process that is already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve when `pid` has exited (or after `timeoutMs`); true if it exited. */
export async function waitForPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(50);
  }
  return false;
}
