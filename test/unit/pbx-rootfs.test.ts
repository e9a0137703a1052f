/** Rootfs cache checks: stamps, device nodes, the asterisk uid remap. (Root: mknod, chown.) */
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DEVICE_NODES,
  ROOTFS_FORMAT,
  SANDBOX_ASTERISK_ID,
  defaultRootfsSpec,
  remapAsteriskUser,
  stampMatches,
  verifyRootfs,
  type RootfsStamp,
} from '../../src/pbx/rootfs.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-pbx-rootfs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fakeRoot(name: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'dev'), { recursive: true });
  await mkdir(join(root, 'usr/sbin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'usr/sbin/asterisk'), '#!/bin/sh\n');
  await chmod(join(root, 'usr/sbin/asterisk'), 0o755);
  return root;
}

describe('rootfs stamp', () => {
  const spec = defaultRootfsSpec({});
  const stamp: RootfsStamp = {
    format: ROOTFS_FORMAT,
    suite: 'sid',
    mirror: 'http://mirror.example/debian',
    packages: [...spec.packages].reverse(),
    asterisk_version: 'Asterisk 22',
    asterisk_uid: SANDBOX_ASTERISK_ID,
    built_at: '2026-01-01T00:00:00Z',
    build_seconds: 20,
  };

  test('a cached rootfs is reused when format, suite and package set match (mirror and order do not matter)', () => {
    expect(spec.suite).toBe('sid');
    expect(spec.packages).toEqual(expect.arrayContaining(['asterisk', 'asterisk-modules']));
    expect(stampMatches(stamp, spec)).toBe(true);
  });

  test('anything else forces a rebuild', () => {
    expect(stampMatches(undefined, spec)).toBe(false);
    expect(stampMatches({ ...stamp, format: ROOTFS_FORMAT - 1 }, spec)).toBe(false);
    expect(stampMatches({ ...stamp, suite: 'trixie' }, spec)).toBe(false);
    expect(stampMatches({ ...stamp, packages: ['asterisk'] }, spec)).toBe(false);
    expect(stampMatches(stamp, defaultRootfsSpec({ SWITCHBOARD_DEBIAN_SUITE: 'trixie' }))).toBe(false);
  });
});

describe.skipIf(!isRoot)('rootfs repair and uid remap (root)', () => {
  test('verifyRootfs creates missing device nodes and replaces wrong ones', async () => {
    const root = await fakeRoot('devs');
    await writeFile(join(root, 'dev/null'), 'not a device');
    const fixed = await verifyRootfs(root);
    expect(fixed.sort()).toEqual(DEVICE_NODES.map((d) => `/dev/${d.name}`).sort());
    for (const d of DEVICE_NODES) {
      const st = await stat(join(root, 'dev', d.name));
      expect(st.isCharacterDevice()).toBe(true);
      expect([Math.floor(st.rdev / 256), st.rdev % 256]).toEqual([d.major, d.minor]);
    }
    expect(await verifyRootfs(root)).toEqual([]); // nothing left to fix
  });

  test('verifyRootfs refuses a rootfs without Asterisk', async () => {
    const root = await fakeRoot('noast');
    await rm(join(root, 'usr/sbin/asterisk'));
    await expect(verifyRootfs(root)).rejects.toThrow(/has no \/usr\/sbin\/asterisk/);
  });

  test('remapAsteriskUser moves the asterisk user and group, and their files, to the sandbox id', async () => {
    const root = await fakeRoot('remap');
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nasterisk:x:101:101:Asterisk PBX daemon:/var/lib/asterisk:/usr/sbin/nologin\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\naudio:x:29:asterisk\nasterisk:x:101:\n');
    await mkdir(join(root, 'var/lib/asterisk'), { recursive: true });
    await writeFile(join(root, 'var/lib/asterisk/astdb'), '');
    await chown(join(root, 'var/lib/asterisk'), 101, 101);
    await chown(join(root, 'var/lib/asterisk/astdb'), 0, 101);
    await remapAsteriskUser(root);
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toContain(`asterisk:x:${SANDBOX_ASTERISK_ID}:${SANDBOX_ASTERISK_ID}:`);
    expect(await readFile(join(root, 'etc/group'), 'utf8')).toContain(`asterisk:x:${SANDBOX_ASTERISK_ID}:`);
    expect(await readFile(join(root, 'etc/group'), 'utf8')).toContain('audio:x:29:asterisk');
    const d = await stat(join(root, 'var/lib/asterisk'));
    expect([d.uid, d.gid]).toEqual([SANDBOX_ASTERISK_ID, SANDBOX_ASTERISK_ID]);
    const f = await stat(join(root, 'var/lib/asterisk/astdb'));
    expect([f.uid, f.gid]).toEqual([0, SANDBOX_ASTERISK_ID]);
    await remapAsteriskUser(root); // idempotent
    await writeFile(join(root, 'etc/passwd'), `x:x:${SANDBOX_ASTERISK_ID}:1::/:/bin/sh\nasterisk:x:101:101::/:/bin/sh\n`);
    await expect(remapAsteriskUser(root)).rejects.toThrow(/already used/);
  });
});
