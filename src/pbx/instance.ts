/**
 * Start, stop and inspect sandbox Asterisk instances.
 *
 * An instance is `asterisk -f` (foreground, no console) started by us in a chroot of the cached
 * rootfs, detached into its own session, with its pid and start time recorded in the instance
 * directory. Everything it binds is on 127.0.0.1. `up` returns once ARI answers with the
 * instance's credentials; `down` stops it (CLI `core stop now`, then SIGTERM, then SIGKILL) and
 * verifies through /proc that no process of the instance is left.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { run, sleep } from './exec.js';
import { withLock } from './lock.js';
import {
  ASTERISK_CONFIG_DIR,
  credentialsPath,
  instancePaths,
  rootfsPath,
  type InstancePaths,
} from './paths.js';
import {
  SANDBOX_BIND_ADDRESS,
  resolveCommon,
  resolvePorts,
  type PbxCommonOptions,
  type PbxPortOptions,
  type PbxPorts,
} from './options.js';
import { ensureCredentials, readCredentials, storedPorts, type PbxCredentials } from './secrets.js';
import { installConfig } from './config-render.js';
import { ensureRootfs, readStamp } from './rootfs.js';
import { busyPorts } from './net.js';
import { instanceProcesses, isAlive, readProc, type ProcInfo } from './proc.js';
import { connectionFromCredentials, type PbxConnection } from './connection.js';

export interface PbxStatus {
  instance: string;
  running: boolean;
  /** pid of the Asterisk daemon (null when not running). */
  pid: number | null;
  ari_url: string;
  ari_ws_url: string;
  /** "127.0.0.1:5060" (UDP) */
  sip: string;
  /** "127.0.0.1:5038" */
  ami: string;
  rtp: { start: number; end: number };
  credentials_file: string;
  rootfs: string;
  config_dir: string;
  log_file: string;
  started_at: string | null;
  asterisk_version: string | null;
  /** Every live process of the instance (the daemon and any `asterisk -rx` client). */
  processes: number[];
}

export interface PbxUpOptions extends PbxCommonOptions, PbxPortOptions {
  /** How long to wait for ARI to answer (default 90 s). */
  startTimeoutMs?: number;
  /** Time limit for building the rootfs (default 15 min). */
  buildTimeoutMs?: number;
  /** Configuration to load instead of the repository's asterisk-config/ (trying changes). */
  configSource?: string;
}

export interface PbxUpResult {
  status: PbxStatus;
  connection: PbxConnection;
  /** The instance was already running with these ports; nothing was started. */
  alreadyRunning: boolean;
  /** This call built the rootfs. */
  rootfsBuilt: boolean;
  /** ERROR/WARNING lines Asterisk logged while starting. */
  startupMessages: string[];
  timings: { rootfsMs: number; startMs: number; totalMs: number };
}

export interface PbxDownOptions extends PbxCommonOptions {
  /** Grace period for `core stop now` before SIGTERM (default 15 s). */
  stopTimeoutMs?: number;
}

export interface PbxDownResult {
  instance: string;
  wasRunning: boolean;
  /** pids that had to be killed with a signal. */
  killed: number[];
}

interface InstanceState {
  pid: number;
  start_ticks: number;
  started_at: string;
  rootfs: string;
  ports: PbxPorts;
}

const CHROOT_ENV = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/var/lib/asterisk',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
};

const LOG_ROTATE_BYTES = 32 * 1024 * 1024;

const CLOSE_FDS_AND_EXEC =
  'for p in /proc/$$/fd/*; do n=${p##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null; fi; done; exec "$@"';

/**
 * The chroot has no /etc/hosts; without one Asterisk resolves the host name through DNS at
 * start-up, which stalls for many seconds on a machine without a reachable name server.
 */
async function writeChrootHosts(rootfs: string): Promise<void> {
  const name = hostname();
  const text =
    '# Written by `switchboard pbx up`.\n127.0.0.1\tlocalhost\n' +
    `127.0.1.1\t${name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
  const path = join(rootfs, 'etc/hosts');
  const current = await readFile(path, 'utf8').catch(() => '');
  if (current === text) return;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

function instanceLock(cacheDir: string, instance: string): string {
  return join(cacheDir, 'locks', `instance-${instance}`);
}

async function readState(paths: InstancePaths): Promise<InstanceState | undefined> {
  try {
    return JSON.parse(await readFile(paths.stateFile, 'utf8')) as InstanceState;
  } catch {
    return undefined;
  }
}

interface Inspection {
  daemon: ProcInfo | undefined;
  processes: ProcInfo[];
  state: InstanceState | undefined;
}

/** Find the instance's daemon and other processes from the state file and a /proc scan. */
async function inspect(rootfs: string, paths: InstancePaths): Promise<Inspection> {
  const state = await readState(paths);
  const processes = await instanceProcesses(rootfs, paths.chrootAsteriskConf);
  let daemon: ProcInfo | undefined;
  if (state) {
    const p = await readProc(state.pid);
    if (p && p.state !== 'Z' && p.startTicks === state.start_ticks && p.root === rootfs) daemon = p;
  }
  // No (valid) state file: the daemon is the `asterisk -f` process of this instance, if any.
  daemon ??= processes.find((p) => p.cmdline.includes('-f') && !p.cmdline.includes('-r') && !p.cmdline.includes('-rx'));
  return { daemon, processes, state };
}

function statusFrom(
  instance: string,
  rootfs: string,
  paths: InstancePaths,
  credsPath: string,
  ports: PbxPorts,
  creds: PbxCredentials | undefined,
  insp: Inspection,
  version: string | null,
): PbxStatus {
  const host = SANDBOX_BIND_ADDRESS;
  return {
    instance,
    running: insp.daemon !== undefined,
    pid: insp.daemon?.pid ?? null,
    ari_url: creds?.ari_url ?? `http://${host}:${ports.http}`,
    ari_ws_url: creds?.ari_ws_url ?? `ws://${host}:${ports.http}/ari/events`,
    sip: `${host}:${ports.sip}`,
    ami: `${host}:${ports.ami}`,
    rtp: { start: ports.rtpStart, end: ports.rtpEnd },
    credentials_file: credsPath,
    rootfs,
    config_dir: paths.etc,
    log_file: paths.messagesLog,
    started_at: insp.daemon && insp.state?.pid === insp.daemon.pid ? insp.state.started_at : null,
    asterisk_version: version,
    processes: insp.processes.map((p) => p.pid),
  };
}

/** Status of an instance. Never builds or starts anything. */
export async function pbxStatus(opts: PbxCommonOptions & PbxPortOptions = {}): Promise<PbxStatus> {
  const c = resolveCommon(opts);
  const rootfs = rootfsPath(c.cacheDir);
  const paths = instancePaths(rootfs, c.instance);
  const credsPath = credentialsPath(c.stateDir, c.instance);
  const creds = await readCredentials(credsPath);
  const state = await readState(paths);
  const ports = state && !hasExplicitPorts(opts) ? state.ports : resolvePorts(opts, c.env, storedPorts(creds));
  const insp = await inspect(rootfs, paths);
  const version = (await readStamp(rootfs))?.asterisk_version ?? null;
  return statusFrom(c.instance, rootfs, paths, credsPath, insp.daemon && state ? state.ports : ports, creds, insp, version);
}

function hasExplicitPorts(o: PbxPortOptions): boolean {
  return [o.sipPort, o.httpPort, o.amiPort, o.rtpStart, o.rtpEnd].some((v) => v !== undefined);
}

function samePorts(a: PbxPorts, b: PbxPorts): boolean {
  return a.sip === b.sip && a.http === b.http && a.ami === b.ami && a.rtpStart === b.rtpStart && a.rtpEnd === b.rtpEnd;
}

/** GET /ari/asterisk/info with the instance's credentials: the HTTP status, or an error text. */
export async function probeAri(creds: Pick<PbxCredentials, 'ari_url' | 'ari_username' | 'ari_password'>): Promise<number | string> {
  try {
    const res = await fetch(`${creds.ari_url}/ari/asterisk/info`, {
      headers: { authorization: `Basic ${Buffer.from(`${creds.ari_username}:${creds.ari_password}`).toString('base64')}` },
      signal: AbortSignal.timeout(3000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? (err as Error).message;
  }
}

async function assertPortsFree(instance: string, ports: PbxPorts): Promise<void> {
  const busy = await busyPorts(ports);
  if (busy.length > 0) {
    throw new Error(
      `cannot start PBX instance "${instance}": ${busy.join(', ')} already in use on ${SANDBOX_BIND_ADDRESS}. ` +
        'Pick other ports (--sip-port, --http-port, --ami-port) or stop whatever holds them.',
    );
  }
}

/** uid/gid of the "asterisk" user inside the rootfs. */
async function asteriskIds(rootfs: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile(join(rootfs, 'etc/passwd'), 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('asterisk:'));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error(`no "asterisk" user in ${rootfs}/etc/passwd: the rootfs is broken`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** The host account (if any) that has this uid. */
async function hostAccountWithUid(uid: number): Promise<string | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  return passwd
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[2] === String(uid))?.[0];
}

async function prepareDirs(paths: InstancePaths, ids: { uid: number; gid: number }): Promise<void> {
  await mkdir(paths.base, { recursive: true, mode: 0o755 });
  for (const dir of [paths.run, paths.log, paths.spool, paths.lib, paths.cache]) {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    await chown(dir, ids.uid, ids.gid);
    await chmod(dir, 0o750);
  }
  // Keep logs bounded across many ups: one previous generation.
  for (const file of [join(paths.log, 'messages'), join(paths.log, 'console.log')]) {
    const size = await stat(file).then(
      (s) => s.size,
      () => 0,
    );
    if (size > LOG_ROTATE_BYTES) await rename(file, `${file}.1`);
  }
  // A stale control socket from a killed daemon would make `asterisk -rx` hang or fail oddly.
  await rm(join(paths.run, 'asterisk.ctl'), { force: true });
  await rm(join(paths.run, 'asterisk.pid'), { force: true });
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Lines appended to `path` since byte `offset`. */
async function readFrom(path: string, offset: number): Promise<string[]> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = (await fh.stat()).size;
    if (size <= offset) return [];
    const buf = Buffer.alloc(Math.min(size - offset, 4 * 1024 * 1024));
    await fh.read(buf, 0, buf.length, size - buf.length > offset ? size - buf.length : offset);
    return buf.toString('utf8').split('\n').filter((l) => l.length > 0);
  } finally {
    await fh.close();
  }
}

/** Last `n` lines of a file ('' when missing). */
export async function tailFile(path: string, n: number): Promise<string> {
  const lines = await readFrom(path, 0);
  return lines.slice(-n).join('\n');
}

/** Run an Asterisk CLI command in the instance (`asterisk -rx`). */
export async function asteriskCli(
  rootfs: string,
  paths: InstancePaths,
  command: string,
  timeoutMs = 15_000,
): Promise<{ code: number | null; output: string }> {
  const r = await run('chroot', [rootfs, '/usr/sbin/asterisk', '-C', paths.chrootAsteriskConf, '-rx', command], {
    env: CHROOT_ENV,
    timeoutMs,
  });
  return { code: r.code, output: (r.stdout + r.stderr).trim() };
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Start an instance (building the rootfs first if needed) and wait until ARI answers. */
export async function pbxUp(opts: PbxUpOptions = {}): Promise<PbxUpResult> {
  const t0 = Date.now();
  const c = resolveCommon(opts);
  if (process.platform !== 'linux') throw new Error('the sandbox PBX runs on Linux only (chroot)');
  if (process.getuid?.() !== 0) {
    throw new Error('the sandbox PBX needs root: it runs Asterisk in a chroot (try sudo, or use docker compose)');
  }
  const credsPath = credentialsPath(c.stateDir, c.instance);
  const ports = resolvePorts(opts, c.env, storedPorts(await readCredentials(credsPath)));

  const rootfs = await ensureRootfs({
    cacheDir: c.cacheDir,
    log: c.log,
    ...(opts.buildTimeoutMs !== undefined ? { buildTimeoutMs: opts.buildTimeoutMs } : {}),
  });
  const tRootfs = Date.now();
  const paths = instancePaths(rootfs.path, c.instance);

  return withLock(
    instanceLock(c.cacheDir, c.instance),
    async () => {
      const current = await inspect(rootfs.path, paths);
      if (current.daemon) {
        const creds = await readCredentials(credsPath);
        const runningPorts = current.state?.ports;
        if (creds && runningPorts && samePorts(runningPorts, ports) && (await probeAri(creds)) === 200) {
          c.log(`instance "${c.instance}" is already running (pid ${current.daemon.pid})`);
          const status = statusFrom(c.instance, rootfs.path, paths, credsPath, ports, creds, current, rootfs.stamp.asterisk_version);
          return {
            status,
            connection: connectionFromCredentials(creds, credsPath),
            alreadyRunning: true,
            rootfsBuilt: rootfs.built,
            startupMessages: [],
            timings: { rootfsMs: tRootfs - t0, startMs: Date.now() - tRootfs, totalMs: Date.now() - t0 },
          };
        }
        throw new Error(
          `instance "${c.instance}" is already running (pid ${current.daemon.pid})` +
            (runningPorts ? ` with SIP ${runningPorts.sip}, HTTP ${runningPorts.http}, AMI ${runningPorts.ami}` : '') +
            ` but not as requested; run \`switchboard pbx down --instance ${c.instance}\` first`,
        );
      }
      // Leftovers of a crashed instance (e.g. a hung `asterisk -rx`).
      for (const p of current.processes) signal(p.pid, 'SIGKILL');

      await assertPortsFree(c.instance, ports);
      const creds = await ensureCredentials(credsPath, c.instance, SANDBOX_BIND_ADDRESS, ports);
      const ids = await asteriskIds(rootfs.path);
      const hostUser = await hostAccountWithUid(ids.uid);
      if (hostUser) {
        c.log(`warning: the sandbox's asterisk uid ${ids.uid} is also the host's "${hostUser}": they can signal each other's processes`);
      }
      await writeChrootHosts(rootfs.path);
      await prepareDirs(paths, ids);
      await installConfig({
        sourceDir: opts.configSource ?? ASTERISK_CONFIG_DIR,
        destDir: paths.etc,
        directories: paths.dirs,
        bindAddress: SANDBOX_BIND_ADDRESS,
        ports,
        credentials: creds,
        gid: ids.gid,
      });

      const logOffset = await fileSize(paths.messagesLog);
      const consoleOffset = await fileSize(paths.consoleLog);
      c.log(`starting Asterisk instance "${c.instance}" (SIP ${ports.sip}/udp, ARI ${ports.http}, AMI ${ports.ami})`);
      const deadline = Date.now() + (opts.startTimeoutMs ?? 90_000);
      const out = openSync(paths.consoleLog, 'a', 0o640);
      const exit: { info?: { code: number | null; signal: NodeJS.Signals | null } } = {};
      let child;
      try {
        // bash closes every inherited descriptor above stderr (our own are close-on-exec, but
        // a parent's leaked pipe would otherwise stay open for the daemon's lifetime), then
        // execs chroot, which execs asterisk: the pid we get is the daemon's.
        child = spawn('/bin/bash', ['-c', CLOSE_FDS_AND_EXEC, 'switchboard-pbx', 'chroot', rootfs.path, '/usr/sbin/asterisk', '-f', '-C', paths.chrootAsteriskConf], {
          detached: true,
          stdio: ['ignore', out, out],
          env: CHROOT_ENV,
        });
      } finally {
        closeSync(out);
      }
      child.on('exit', (code, sig) => {
        exit.info = { code, signal: sig };
      });
      child.on('error', (err) => {
        exit.info = { code: null, signal: null };
        c.log(`failed to start chroot: ${err.message}`);
      });
      child.unref();
      const exitedWith = (): string | undefined =>
        exit.info ? `asterisk exited (code ${exit.info.code}, signal ${exit.info.signal})` : undefined;
      const pid = child.pid;
      if (pid === undefined) throw new Error('failed to spawn chroot for Asterisk');
      const proc = await readProc(pid);
      const state: InstanceState = {
        pid,
        start_ticks: proc?.startTicks ?? 0,
        started_at: new Date().toISOString(),
        rootfs: rootfs.path,
        ports,
      };
      await writeFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);

      const fail = async (why: string): Promise<never> => {
        signal(pid, 'SIGKILL');
        await waitForExit(pid, 5000);
        for (const p of await instanceProcesses(rootfs.path, paths.chrootAsteriskConf)) signal(p.pid, 'SIGKILL');
        await rm(paths.stateFile, { force: true });
        const log = (await readFrom(paths.messagesLog, logOffset)).slice(-40).join('\n');
        const consoleOut = (await readFrom(paths.consoleLog, consoleOffset)).slice(-20).join('\n');
        throw new Error(
          `Asterisk instance "${c.instance}" did not come up: ${why}\n` +
            `--- ${paths.messagesLog} (tail) ---\n${log || '(empty)'}\n` +
            (consoleOut ? `--- ${paths.consoleLog} (tail) ---\n${consoleOut}\n` : ''),
        );
      };

      // 1. The control socket answers and Asterisk has finished loading modules.
      for (;;) {
        if (exitedWith()) return fail(exitedWith()!);
        if (Date.now() > deadline) return fail('timed out waiting for Asterisk to boot');
        const r = await asteriskCli(rootfs.path, paths, 'core waitfullybooted', Math.max(50, deadline - Date.now()));
        if (r.code === 0) break;
        await sleep(100);
      }
      // 2. ARI answers with the generated credentials.
      let last: number | string = '';
      for (;;) {
        if (exitedWith()) return fail(exitedWith()!);
        last = await probeAri(creds);
        if (last === 200) break;
        if (Date.now() > deadline) return fail(`timed out waiting for ARI at ${creds.ari_url} (last answer: ${last})`);
        await sleep(100);
      }
      const startupMessages = (await readFrom(paths.messagesLog, logOffset)).filter((l) => /\b(ERROR|WARNING)\[/.test(l));
      const insp = await inspect(rootfs.path, paths);
      const status = statusFrom(c.instance, rootfs.path, paths, credsPath, ports, creds, insp, rootfs.stamp.asterisk_version);
      c.log(`instance "${c.instance}" is up (pid ${pid}): ARI ${creds.ari_url}, SIP ${status.sip}`);
      return {
        status,
        connection: connectionFromCredentials(creds, credsPath),
        alreadyRunning: false,
        rootfsBuilt: rootfs.built,
        startupMessages,
        timings: { rootfsMs: tRootfs - t0, startMs: Date.now() - tRootfs, totalMs: Date.now() - t0 },
      };
    },
    { onWait: (pid) => c.log(`waiting for another up/down of instance "${c.instance}" (pid ${pid ?? '?'})`) },
  );
}

/** Stop an instance and make sure none of its processes is left. Idempotent. */
export async function pbxDown(opts: PbxDownOptions = {}): Promise<PbxDownResult> {
  const c = resolveCommon(opts);
  const rootfs = rootfsPath(c.cacheDir);
  const paths = instancePaths(rootfs, c.instance);
  const exists = await stat(rootfs).then(
    () => true,
    () => false,
  );
  if (!exists) return { instance: c.instance, wasRunning: false, killed: [] };

  return withLock(instanceLock(c.cacheDir, c.instance), async () => {
    const insp = await inspect(rootfs, paths);
    const killed: number[] = [];
    if (insp.daemon) {
      const pid = insp.daemon.pid;
      c.log(`stopping Asterisk instance "${c.instance}" (pid ${pid})`);
      const stopTimeout = opts.stopTimeoutMs ?? 15_000;
      await asteriskCli(rootfs, paths, 'core stop now', Math.min(stopTimeout, 10_000)).catch(() => undefined);
      if (!(await waitForExit(pid, stopTimeout))) {
        c.log(`pid ${pid} still running after "core stop now": SIGTERM`);
        signal(pid, 'SIGTERM');
        killed.push(pid);
        if (!(await waitForExit(pid, 5000))) {
          c.log(`pid ${pid} still running after SIGTERM: SIGKILL`);
          signal(pid, 'SIGKILL');
          await waitForExit(pid, 5000);
        }
      }
    }
    // Anything else of the instance (stuck `asterisk -rx` clients, children).
    for (let attempt = 0; attempt < 3; attempt++) {
      const left = await instanceProcesses(rootfs, paths.chrootAsteriskConf);
      if (left.length === 0) break;
      for (const p of left) {
        signal(p.pid, 'SIGKILL');
        killed.push(p.pid);
      }
      await Promise.all(left.map((p) => waitForExit(p.pid, 5000)));
    }
    const remaining = await instanceProcesses(rootfs, paths.chrootAsteriskConf);
    if (remaining.length > 0) {
      throw new Error(
        `could not stop every process of instance "${c.instance}": ${remaining.map((p) => `${p.pid} (${p.cmdline.join(' ')})`).join(', ')}`,
      );
    }
    await rm(paths.stateFile, { force: true });
    await rm(join(paths.run, 'asterisk.ctl'), { force: true });
    if (insp.daemon) c.log(`instance "${c.instance}" stopped`);
    return { instance: c.instance, wasRunning: insp.daemon !== undefined, killed: [...new Set(killed)] };
  });
}

/** Host path of the instance's Asterisk messages log. */
export function pbxLogPath(opts: PbxCommonOptions = {}): string {
  const c = resolveCommon(opts);
  return instancePaths(rootfsPath(c.cacheDir), c.instance).messagesLog;
}
