/**
 * The lock on an embedded (PGlite) records directory: held by one process, refused to a second
 * opener with the holder's pid, taken over when its holder is gone (including a lock left with
 * our own pid by an earlier process, as in a container restarted as pid 1), released on close.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { lockPgliteDir, pgliteHolder } from '../../src/records-runtime.js';

let dir: string;
let dataDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-records-lock-'));
  dataDir = join(dir, 'records');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('held once; a second lock is refused naming the holder; released on close', async () => {
  const release = await lockPgliteDir(dataDir);
  expect((await readFile(`${dataDir}.lock`, 'utf8')).trim()).toBe(String(process.pid));
  expect(await pgliteHolder(dataDir)).toBe(process.pid);
  await expect(lockPgliteDir(dataDir)).rejects.toThrow(`the embedded records database ${dataDir} is in use by process ${process.pid}`);
  await release();
  expect(await pgliteHolder(dataDir)).toBeUndefined();
  await (await lockPgliteDir(dataDir))();
});

test('a lock whose process has exited is taken over', async () => {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid!;
  await new Promise((r) => child.once('exit', r));
  await writeFile(`${dataDir}.lock`, `${pid}\n`);
  expect(await pgliteHolder(dataDir)).toBeUndefined();
  const release = await lockPgliteDir(dataDir);
  expect((await readFile(`${dataDir}.lock`, 'utf8')).trim()).toBe(String(process.pid));
  await release();
});

test('a lock with our own pid that this process does not hold is stale', async () => {
  await writeFile(`${dataDir}.lock`, `${process.pid}\n`);
  expect(await pgliteHolder(dataDir)).toBeUndefined();
  await (await lockPgliteDir(dataDir))();
});

test('a missing parent folder is said plainly', async () => {
  await expect(lockPgliteDir(join(dir, 'no', 'such', 'records'))).rejects.toThrow(/the folder .*no\/such does not exist/);
});
