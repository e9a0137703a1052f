/** /proc inspection and the cross-process lock the sandbox relies on. */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { instanceProcesses, isAlive, parseProcNet, parseStat, processesInRoot, readProc, socketsOf } from '../../src/pbx/proc.js';
import { acquireLock, withLock } from '../../src/pbx/lock.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-pbx-proc-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('/proc parsing', () => {
  test('stat: a command name with spaces and parentheses does not shift the fields', () => {
    const line = '4242 (asterisk (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 30 0 987654 0 0';
    expect(parseStat(line)).toEqual({ comm: 'asterisk (x) y', state: 'S', ppid: 1, startTicks: 987654 });
    expect(parseStat('garbage')).toBeUndefined();
  });

  test('net tables: IPv4 and IPv6 addresses and ports by socket inode', () => {
    const udp =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
      '  1: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 38826 2 0000000000000000 0\n' +
      '  2: 00000000:A930 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 38827 2 0000000000000000 0\n';
    const m = parseProcNet(udp, 'udp');
    expect(m.get('38826')).toEqual({ protocol: 'udp', address: '127.0.0.1', port: 5060, state: '07' });
    expect(m.get('38827')?.address).toBe('0.0.0.0');
    const udp6 =
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
      '  3: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2\n';
    expect(parseProcNet(udp6, 'udp6').get('555')).toMatchObject({ address: '0:0:0:0:0:0:0:1', port: 8080 });
  });
});

describe('live processes', () => {
  test('isAlive: this process yes; an exited child no, even before it is reaped', async () => {
    expect(isAlive(process.pid)).toBe(true);
    const child = spawn('true');
    const pid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    expect(isAlive(pid)).toBe(false);
    expect(isAlive(2 ** 22 + 12345)).toBe(false); // above pid_max
  });

  test('readProc: command line, parent and root directory', async () => {
    const me = await readProc(process.pid);
    expect(me?.ppid).toBe(process.ppid);
    expect(me?.root).toBe('/');
    expect(me?.cmdline[0]).toContain('node');
  });

  test('socketsOf finds the sockets a process has bound, with their addresses', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    try {
      const port = sock.address().port;
      const mine = await socketsOf(process.pid);
      expect(mine).toContainEqual({ protocol: 'udp', address: '127.0.0.1', port, state: '07' });
    } finally {
      sock.close();
    }
  });

  test('instanceProcesses: processes rooted in a rootfs and naming the instance config, with their children', async () => {
    // A "rootfs" that is really "/" lets an ordinary process match by root; the instance is
    // recognised by its config path on the command line, and its child by parentage.
    const marker = join(dir, 'fake-instance', 'etc', 'asterisk.conf');
    const parent = spawn('sh', ['-c', 'sleep 30 & wait', 'sh', marker], { stdio: 'ignore' });
    try {
      let found: number[] = [];
      for (let i = 0; i < 50 && found.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
        // sh's argv holds the marker ($0 is "sh", $1 the marker).
        found = (await instanceProcesses('/', marker)).map((p) => p.pid);
      }
      expect(found).toContain(parent.pid);
      expect(found.length).toBe(2); // sh and its sleep
      expect(await instanceProcesses('/', `${marker}.other`)).toEqual([]);
      expect((await processesInRoot('/nonexistent-root')).length).toBe(0);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('lock', () => {
  test('serialises critical sections', async () => {
    const lock = join(dir, 'locks', 'a');
    const order: string[] = [];
    const task = (name: string, ms: number) =>
      withLock(lock, async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}-`);
      }, { pollMs: 10 });
    await Promise.all([task('x', 50), task('y', 10)]);
    expect(order.join(' ')).toMatch(/^(x\+ x- y\+ y-|y\+ y- x\+ x-)$/);
  });

  test('a lock left by a dead process is taken over; a live holder is waited for until the timeout', async () => {
    const stale = join(dir, 'locks', 'stale');
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'pid'), `${2 ** 22 + 777}\n`);
    const release = await acquireLock(stale, { timeoutMs: 2000 });
    await release();

    const held = join(dir, 'locks', 'held');
    const releaseHeld = await acquireLock(held);
    let waitedFor: number | undefined;
    await expect(acquireLock(held, { timeoutMs: 300, pollMs: 20, onWait: (pid) => (waitedFor = pid) })).rejects.toThrow(
      new RegExp(`held by pid ${process.pid}`),
    );
    expect(waitedFor).toBe(process.pid);
    await releaseHeld();
    await (await acquireLock(held, { timeoutMs: 300 }))();
  });
});
