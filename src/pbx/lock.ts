/**
 * A cross-process lock: a directory created atomically with mkdir, holding the owner's pid.
 * A lock whose owner is dead is taken over; otherwise we wait (polling) up to a timeout.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isAlive } from './proc.js';
import { sleep } from './exec.js';

export interface LockOptions {
  timeoutMs?: number;
  pollMs?: number;
  /** Called once when we start waiting for another holder. */
  onWait?: (ownerPid: number | undefined) => void;
}

async function ownerOf(lockDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(lockDir, 'pid'), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function acquireLock(lockDir: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  await mkdir(dirname(lockDir), { recursive: true });
  let waited = false;
  let ownerlessSince: number | undefined;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), `${process.pid}\n`);
      return async () => {
        await rm(lockDir, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await ownerOf(lockDir);
    if (owner !== undefined && !isAlive(owner)) {
      // Stale: its holder died without releasing it.
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (owner === undefined) {
      // Being created right now, or its creator died between mkdir and writing the pid.
      ownerlessSince ??= Date.now();
      if (Date.now() - ownerlessSince > 5000) {
        await rm(lockDir, { recursive: true, force: true });
        ownerlessSince = undefined;
        continue;
      }
    } else {
      ownerlessSince = undefined;
    }
    if (!waited) {
      waited = true;
      opts.onWait?.(owner);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for lock ${lockDir} (held by pid ${owner ?? 'unknown'})`);
    }
    await sleep(opts.pollMs ?? 200);
  }
}

export async function withLock<T>(lockDir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(lockDir, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}
