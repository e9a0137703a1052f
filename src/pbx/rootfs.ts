/**
 * The Asterisk root filesystem: Debian sid's Asterisk 22 installed with mmdebstrap into the
 * cache directory, built once and reused by every instance and every checkout.
 *
 * The build goes to a temporary directory next to the final one, is verified (asterisk runs,
 * device nodes exist), stamped, and renamed into place, so an interrupted build never leaves a
 * half-built rootfs where `up` would use it. A lock keeps concurrent `up`s from building twice.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, runChecked, which } from './exec.js';
import { withLock } from './lock.js';
import { isAlive, processesInRoot } from './proc.js';
import { rootfsPath } from './paths.js';

/** Bump when the way the rootfs is built changes incompatibly: forces a rebuild. */
export const ROOTFS_FORMAT = 2;

/**
 * uid/gid of the chroot's "asterisk" user. Debian gives it a low system id (e.g. 101) that on
 * the host often belongs to another daemon (postgres, ...): a process may signal or ptrace any
 * process of its own uid, chroot or not. A high id no distribution hands out keeps the sandbox
 * apart from every host account.
 */
export const SANDBOX_ASTERISK_ID = 61101;
export const STAMP_FILE = '.switchboard-rootfs.json';

export interface RootfsSpec {
  suite: string;
  mirror: string;
  packages: string[];
}

export interface RootfsStamp {
  format: number;
  suite: string;
  mirror: string;
  packages: string[];
  asterisk_version: string;
  asterisk_uid: number;
  built_at: string;
  build_seconds: number;
}

export const ROOTFS_PACKAGES = [
  'asterisk',
  'asterisk-modules',
  // English prompts (hello-world, queue announcements) and hold music for the operator queue.
  'asterisk-core-sounds-en-gsm',
  'asterisk-moh-opsound-gsm',
];

export function defaultRootfsSpec(env: Record<string, string | undefined> = process.env): RootfsSpec {
  return {
    suite: env.SWITCHBOARD_DEBIAN_SUITE ?? 'sid',
    mirror: env.SWITCHBOARD_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian',
    packages: [...ROOTFS_PACKAGES],
  };
}

export function stampMatches(stamp: RootfsStamp | undefined, spec: RootfsSpec): boolean {
  if (!stamp) return false;
  const a = [...stamp.packages].sort().join(',');
  const b = [...spec.packages].sort().join(',');
  return stamp.format === ROOTFS_FORMAT && stamp.suite === spec.suite && a === b;
}

export async function readStamp(rootfs: string): Promise<RootfsStamp | undefined> {
  try {
    return JSON.parse(await readFile(join(rootfs, STAMP_FILE), 'utf8')) as RootfsStamp;
  } catch {
    return undefined;
  }
}

/** Character devices Asterisk (and libc, OpenSSL, pjproject) need inside the chroot. */
export const DEVICE_NODES: readonly { name: string; major: number; minor: number }[] = [
  { name: 'null', major: 1, minor: 3 },
  { name: 'zero', major: 1, minor: 5 },
  { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 },
  { name: 'urandom', major: 1, minor: 9 },
  { name: 'tty', major: 5, minor: 0 },
];

/**
 * Check the device nodes exist as character devices (mmdebstrap's root mode creates them;
 * recreate any that are missing) and that the Asterisk binary is there. Returns what it fixed.
 */
export async function verifyRootfs(rootfs: string): Promise<string[]> {
  const fixed: string[] = [];
  for (const dev of DEVICE_NODES) {
    const path = join(rootfs, 'dev', dev.name);
    let ok = false;
    try {
      const st = await stat(path);
      ok = st.isCharacterDevice() && Math.floor(st.rdev / 256) === dev.major && st.rdev % 256 === dev.minor;
    } catch {
      ok = false;
    }
    if (!ok) {
      await run('rm', ['-f', path]);
      await runChecked('mknod', ['-m', '666', path, 'c', String(dev.major), String(dev.minor)]);
      fixed.push(`/dev/${dev.name}`);
    }
  }
  try {
    await access(join(rootfs, 'usr/sbin/asterisk'), constants.X_OK);
  } catch {
    throw new Error(`${rootfs} has no /usr/sbin/asterisk: the rootfs is broken; remove it and run \`switchboard pbx up\` again`);
  }
  return fixed;
}

/** Unmount anything left mounted below `dir` (an interrupted mmdebstrap), deepest first. */
async function unmountBelow(dir: string): Promise<void> {
  let text: string;
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const mounts = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]);
}

/** Remove a (possibly half-built) rootfs without ever crossing into a mounted filesystem. */
export async function removeTree(dir: string): Promise<void> {
  await unmountBelow(dir);
  await runChecked('rm', ['-rf', '--one-file-system', '--', dir]);
}

async function ensureMmdebstrap(log: (m: string) => void): Promise<string> {
  const found = await which('mmdebstrap');
  if (found) return found;
  if (!(await which('apt-get'))) throw new Error('mmdebstrap is not installed and there is no apt-get to install it');
  log('installing mmdebstrap with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runChecked('apt-get', ['update'], { env, timeoutMs: 300_000 });
  await runChecked('apt-get', ['install', '-y', '--no-install-recommends', 'mmdebstrap'], { env, timeoutMs: 300_000 });
  const installed = await which('mmdebstrap');
  if (!installed) throw new Error('apt-get installed mmdebstrap but it is not on PATH');
  return installed;
}

export async function asteriskVersion(rootfs: string): Promise<string> {
  const r = await runChecked('chroot', [rootfs, '/usr/sbin/asterisk', '-V'], { timeoutMs: 30_000 });
  return r.stdout.trim();
}

/** Give the chroot's asterisk user and group SANDBOX_ASTERISK_ID, re-owning their files. */
export async function remapAsteriskUser(root: string, id = SANDBOX_ASTERISK_ID): Promise<void> {
  const passwdPath = join(root, 'etc/passwd');
  const groupPath = join(root, 'etc/group');
  const passwd = (await readFile(passwdPath, 'utf8')).split('\n');
  const group = (await readFile(groupPath, 'utf8')).split('\n');
  const pIdx = passwd.findIndex((l) => l.startsWith('asterisk:'));
  const gIdx = group.findIndex((l) => l.startsWith('asterisk:'));
  if (pIdx < 0 || gIdx < 0) throw new Error(`no asterisk user/group in ${root}/etc: did the asterisk package install?`);
  const p = passwd[pIdx]!.split(':');
  const g = group[gIdx]!.split(':');
  const [oldUid, oldGid] = [p[2]!, g[2]!];
  if (oldUid === String(id) && oldGid === String(id) && p[3] === String(id)) return;
  const taken = (lines: string[], self: number): boolean => lines.some((l, i) => i !== self && l.split(':')[2] === String(id));
  if (taken(passwd, pIdx) || taken(group, gIdx)) throw new Error(`id ${id} is already used inside ${root}`);
  p[2] = String(id);
  p[3] = String(id);
  g[2] = String(id);
  passwd[pIdx] = p.join(':');
  group[gIdx] = g.join(':');
  await writeFile(passwdPath, passwd.join('\n'));
  await writeFile(groupPath, group.join('\n'));
  await runChecked('find', [root, '-xdev', '-uid', oldUid, '-exec', 'chown', '-h', String(id), '{}', '+']);
  await runChecked('find', [root, '-xdev', '-gid', oldGid, '-exec', 'chgrp', '-h', String(id), '{}', '+']);
}

async function build(dest: string, spec: RootfsSpec, log: (m: string) => void, timeoutMs: number): Promise<RootfsStamp> {
  const mmdebstrap = await ensureMmdebstrap(log);
  const tmp = join(dirname(dest), `.${basename(dest)}.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  const started = Date.now();
  log(`building the Asterisk rootfs (Debian ${spec.suite}: ${spec.packages.join(', ')}) into ${dest}`);
  try {
    const args = [
      '--mode=root',
      '--variant=apt',
      '--aptopt=Acquire::Check-Valid-Until "false"',
      '--aptopt=Acquire::Retries "3"',
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/info/*',
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-include=/usr/share/doc/*/copyright',
      `--include=${spec.packages.join(',')}`,
      spec.suite,
      tmp,
      spec.mirror,
    ];
    const tail: string[] = [];
    const result = await run(mmdebstrap, args, {
      timeoutMs,
      onLine: (line) => {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (/^I: /.test(line)) log(line);
      },
    });
    if (result.code !== 0) {
      throw new Error(
        `mmdebstrap failed (${result.timedOut ? 'timed out' : `exit ${result.code}`}):\n${tail.join('\n')}`,
      );
    }
    await remapAsteriskUser(tmp);
    await verifyRootfs(tmp);
    const stamp: RootfsStamp = {
      format: ROOTFS_FORMAT,
      suite: spec.suite,
      mirror: spec.mirror,
      packages: spec.packages,
      asterisk_version: await asteriskVersion(tmp),
      asterisk_uid: SANDBOX_ASTERISK_ID,
      built_at: new Date().toISOString(),
      build_seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    await writeFile(join(tmp, STAMP_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
    await rename(tmp, dest);
    log(`rootfs ready in ${stamp.build_seconds} s: ${stamp.asterisk_version}`);
    return stamp;
  } catch (err) {
    await removeTree(tmp).catch(() => undefined);
    throw err;
  }
}

export interface EnsureRootfsOptions {
  cacheDir: string;
  spec?: RootfsSpec;
  log?: (message: string) => void;
  /** mmdebstrap time limit (default 15 minutes). */
  buildTimeoutMs?: number;
}

export interface RootfsInfo {
  path: string;
  stamp: RootfsStamp;
  /** True when this call built it. */
  built: boolean;
  elapsedMs: number;
}

/** Build the rootfs unless a matching one is cached; returns its path and stamp. */
export async function ensureRootfs(opts: EnsureRootfsOptions): Promise<RootfsInfo> {
  const started = Date.now();
  const spec = opts.spec ?? defaultRootfsSpec();
  const log = opts.log ?? (() => undefined);
  const dest = rootfsPath(opts.cacheDir);
  const cached = await readStamp(dest);
  if (stampMatches(cached, spec)) {
    await verifyRootfs(dest);
    return { path: dest, stamp: cached!, built: false, elapsedMs: Date.now() - started };
  }
  if (process.getuid?.() !== 0) {
    throw new Error('building the sandbox rootfs needs root (mmdebstrap --mode=root, chroot)');
  }
  await mkdir(opts.cacheDir, { recursive: true });
  return withLock(
    join(opts.cacheDir, '.rootfs.lock'),
    async () => {
      // Someone else may have built it while we waited for the lock.
      const again = await readStamp(dest);
      if (stampMatches(again, spec)) {
        await verifyRootfs(dest);
        return { path: dest, stamp: again!, built: false, elapsedMs: Date.now() - started };
      }
      for (const dir of await staleBuildDirs(opts.cacheDir)) {
        const owner = Number(/\.build-(\d+)-/.exec(dir)?.[1]);
        if (!isAlive(owner)) {
          log(`removing the leftover of an interrupted build: ${dir}`);
          await removeTree(dir);
        }
      }
      const exists = await stat(dest).then(
        () => true,
        () => false,
      );
      if (exists) {
        const users = await processesInRoot(dest);
        if (users.length > 0) {
          throw new Error(
            `the rootfs at ${dest} is outdated or unstamped but in use by pid(s) ${users.map((p) => p.pid).join(', ')}; ` +
              'stop its instances (`switchboard pbx down --instance NAME`) and run up again',
          );
        }
        log(`discarding the outdated rootfs at ${dest}`);
        const trash = `${dest}.old-${process.pid}`;
        await rename(dest, trash);
        await removeTree(trash);
      }
      const stamp = await build(dest, spec, log, opts.buildTimeoutMs ?? 15 * 60_000);
      return { path: dest, stamp, built: true, elapsedMs: Date.now() - started };
    },
    { onWait: (pid) => log(`waiting for another rootfs build (pid ${pid ?? '?'}) to finish`) },
  );
}

/** Leftover build directories from killed builds (their owner pid is in the name). */
export async function staleBuildDirs(cacheDir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(cacheDir);
  } catch {
    return [];
  }
  return entries.filter((e) => /^\.asterisk-rootfs\.build-\d+-/.test(e)).map((e) => join(cacheDir, e));
}
