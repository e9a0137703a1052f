/**
 * Where the sandbox PBX keeps its things.
 *
 * - The Asterisk root filesystem is a cache shared by every checkout and every instance:
 *   `${SWITCHBOARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/asterisk-rootfs`.
 * - Each instance has its own directory inside that rootfs (`/srv/switchboard/<instance>` as
 *   seen from the chroot) with its etc/run/log/spool/lib/cache dirs, so instances never share
 *   a control socket, an astdb or a log.
 * - Credentials live in the repository, git-ignored: `.switchboard/pbx-<instance>.json`
 *   (override the directory with SWITCHBOARD_STATE_DIR).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is src/pbx/paths.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The committed Asterisk configuration shared by the sandbox and docker compose. */
export const ASTERISK_CONFIG_DIR = join(REPO_ROOT, 'asterisk-config');

export const DEFAULT_INSTANCE = 'default';

/** Directory, inside the chroot, that holds one directory per instance. */
export const CHROOT_INSTANCES_DIR = '/srv/switchboard';

type Env = Record<string, string | undefined>;

export function cacheRoot(env: Env = process.env): string {
  if (env.SWITCHBOARD_CACHE_DIR) return resolve(env.SWITCHBOARD_CACHE_DIR);
  const xdg = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(env.HOME ?? homedir(), '.cache');
  return join(xdg, 'switchboard');
}

export function rootfsPath(cacheDir: string): string {
  return join(cacheDir, 'asterisk-rootfs');
}

export function stateDirectory(env: Env = process.env): string {
  return env.SWITCHBOARD_STATE_DIR ? resolve(env.SWITCHBOARD_STATE_DIR) : join(REPO_ROOT, '.switchboard');
}

export function credentialsPath(stateDir: string, instance: string): string {
  return join(stateDir, `pbx-${instance}.json`);
}

const INSTANCE_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

export function validateInstanceName(name: string): string {
  if (!INSTANCE_NAME.test(name)) {
    throw new Error(`invalid instance name "${name}": use 1-40 characters a-z, 0-9, "-" or "_", starting with a letter or digit`);
  }
  return name;
}

/**
 * The directories Asterisk's asterisk.conf [directories] section names. astmoddir is left to
 * Asterisk's compiled-in default (Debian: /usr/lib/<multiarch triplet>/asterisk/modules), so
 * the same configuration works on amd64 and arm64.
 */
export interface AsteriskDirectories {
  astcachedir: string;
  astetcdir: string;
  astvarlibdir: string;
  astdbdir: string;
  astkeydir: string;
  astdatadir: string;
  astagidir: string;
  astspooldir: string;
  astrundir: string;
  astlogdir: string;
  astsbindir: string;
}

export interface InstancePaths {
  instance: string;
  /** Instance base directory as seen from inside the chroot. */
  chrootBase: string;
  /** Instance base directory on the host (inside the rootfs). */
  base: string;
  /** Directories as seen from inside the chroot (what asterisk.conf names). */
  dirs: AsteriskDirectories;
  /** asterisk.conf path inside the chroot (passed to `asterisk -C`). */
  chrootAsteriskConf: string;
  /** Host paths. */
  etc: string;
  run: string;
  log: string;
  spool: string;
  lib: string;
  cache: string;
  messagesLog: string;
  consoleLog: string;
  stateFile: string;
}

/** The directories of one instance. `rootfs` is the host path of the root filesystem. */
export function instancePaths(rootfs: string, instance: string): InstancePaths {
  validateInstanceName(instance);
  const chrootBase = `${CHROOT_INSTANCES_DIR}/${instance}`;
  const dirs: AsteriskDirectories = {
    astcachedir: `${chrootBase}/cache`,
    astetcdir: `${chrootBase}/etc`,
    astvarlibdir: `${chrootBase}/lib`,
    astdbdir: `${chrootBase}/lib`,
    astkeydir: `${chrootBase}/lib`,
    astdatadir: '/usr/share/asterisk',
    astagidir: '/usr/share/asterisk/agi-bin',
    astspooldir: `${chrootBase}/spool`,
    astrundir: `${chrootBase}/run`,
    astlogdir: `${chrootBase}/log`,
    astsbindir: '/usr/sbin',
  };
  const host = (p: string): string => join(rootfs, p);
  return {
    instance,
    chrootBase,
    base: host(chrootBase),
    dirs,
    chrootAsteriskConf: `${dirs.astetcdir}/asterisk.conf`,
    etc: host(dirs.astetcdir),
    run: host(dirs.astrundir),
    log: host(dirs.astlogdir),
    spool: host(dirs.astspooldir),
    lib: host(dirs.astvarlibdir),
    cache: host(dirs.astcachedir),
    messagesLog: host(`${dirs.astlogdir}/messages`),
    consoleLog: host(`${dirs.astlogdir}/console.log`),
    stateFile: host(`${chrootBase}/state.json`),
  };
}
