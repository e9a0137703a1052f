/**
 * Sandbox PBX smoke test: a real Asterisk 22 in its chroot, called by SIPp over loopback.
 *
 * - `pbxUp` (programmatic API) starts a dedicated instance; Asterisk starts without errors,
 *   loads the modules Switchboard needs and listens on 127.0.0.1 only;
 * - SIPp calls extension 600 (Answer + Echo) streaming espeak-ng speech as PCMU; the SDP names
 *   a UDP socket owned by this test, which receives what Asterisk sends back: the echoed RTP
 *   must carry the very speech frames SIPp sent, in order;
 * - a phone's username without digest credentials is challenged, not let in;
 * - `switchboard pbx status --json` / `logs` work through bin/switchboard.js;
 * - a second `up` reuses the cached rootfs (timed, printed);
 * - two instances run side by side on different ports;
 * - `pbxDown` leaves no process of the instance behind (checked in /proc), and is idempotent.
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { WebSocket } from 'ws';
import { pbxDown, pbxStatus, pbxUp, type PbxUpOptions, type PbxUpResult } from '../../src/pbx/instance.js';
import type { PbxPorts } from '../../src/pbx/options.js';
import { instanceProcesses, processesInRoot, socketsOf } from '../../src/pbx/proc.js';
import { cacheRoot, instancePaths, REPO_ROOT, ASTERISK_CONFIG_DIR } from '../../src/pbx/paths.js';
import { ensureRootfs } from '../../src/pbx/rootfs.js';
import { withLock } from '../../src/pbx/lock.js';
import { readCredentials } from '../../src/pbx/secrets.js';
import { loadPbxConnection } from '../../src/pbx/connection.js';
import { ensureSandbox, freeTestPorts, type SandboxHandle } from '../support/pbx.js';
import { makeSpeechWav, runSipp, toRawG711 } from '../support/sipp.js';

const execFileP = promisify(execFile);

const INSTANCE = 'smoke';
let PORTS: PbxPorts;
let upOpts: PbxUpOptions;

/** G.711 mu-law byte to linear PCM16. */
function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function rms(frame: Buffer): number {
  let acc = 0;
  for (const b of frame) {
    const s = ulawToLinear(b);
    acc += s * s;
  }
  return Math.sqrt(acc / frame.length);
}

/** RTP payload (after the fixed header, CSRCs and any header extension). */
function rtpPayload(packet: Buffer): { pt: number; payload: Buffer } | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  let off = 12 + 4 * (packet[0]! & 0x0f);
  if (packet[0]! & 0x10) {
    if (packet.length < off + 4) return undefined;
    off += 4 + 4 * packet.readUInt16BE(off + 2);
  }
  return { pt: packet[1]! & 0x7f, payload: packet.subarray(off) };
}

async function udpListener(): Promise<{ socket: Socket; port: number; packets: Buffer[] }> {
  const socket = createSocket('udp4');
  const packets: Buffer[] = [];
  socket.on('message', (m) => packets.push(Buffer.from(m)));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port, packets };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [join(REPO_ROOT, 'bin/switchboard.js'), ...args], {
      cwd: REPO_ROOT,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('sandbox PBX (Asterisk 22 in a chroot on loopback)', () => {
  let first: PbxUpResult;
  let work: string;
  let speechWav: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'switchboard-pbx-smoke-'));
    speechWav = await makeSpeechWav(
      'Hello, this is the Switchboard echo test. My scooter number is four two seven. Please send help.',
      join(work, 'speech.wav'),
    );
    await pbxDown({ instance: INSTANCE }); // a clean start even after an aborted run
    PORTS = await freeTestPorts(INSTANCE);
    upOpts = {
      instance: INSTANCE,
      sipPort: PORTS.sip,
      httpPort: PORTS.http,
      amiPort: PORTS.ami,
      rtpStart: PORTS.rtpStart,
      rtpEnd: PORTS.rtpEnd,
      log: (m: string) => console.log(`[pbx] ${m}`),
    };
    first = await pbxUp(upOpts);
    console.log(
      `[pbx] first up: ${first.timings.totalMs} ms (rootfs ${first.rootfsBuilt ? 'built' : 'cached'} in ${first.timings.rootfsMs} ms, ` +
        `Asterisk start ${first.timings.startMs} ms)`,
    );
  }, 900_000);

  afterAll(async () => {
    await pbxDown({ instance: INSTANCE });
    await pbxDown({ instance: `${INSTANCE}-b` });
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  test('starts cleanly and answers ARI with the generated credentials only', async () => {
    expect(first.status.running).toBe(true);
    expect(first.alreadyRunning).toBe(false);
    const errors = first.startupMessages.filter((l) => l.includes('ERROR['));
    expect(errors, errors.join('\n')).toEqual([]);
    for (const w of first.startupMessages) console.log(`[asterisk] ${w}`);

    const c = first.connection;
    expect(c.ariUrl).toBe(`http://127.0.0.1:${PORTS.http}`);
    const auth = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    const ok = await fetch(`${c.ariUrl}/ari/asterisk/info`, { headers: { authorization: auth(c.ariUsername, c.ariPassword) } });
    expect(ok.status).toBe(200);
    const info = (await ok.json()) as { system: { version: string } };
    expect(info.system.version).toMatch(/^22\./);
    const bad = await fetch(`${c.ariUrl}/ari/asterisk/info`, { headers: { authorization: auth(c.ariUsername, 'wrong-password') } });
    expect(bad.status).toBe(401);

    const modules = (await (
      await fetch(`${c.ariUrl}/ari/asterisk/modules`, { headers: { authorization: auth(c.ariUsername, c.ariPassword) } })
    ).json()) as { name: string; status: string }[];
    const running = new Set(modules.filter((m) => m.status === 'Running').map((m) => m.name));
    for (const m of ['chan_pjsip.so', 'chan_rtp.so', 'chan_websocket.so', 'res_ari.so', 'res_stasis.so', 'app_stasis.so',
      'res_stasis_snoop.so', 'app_echo.so', 'app_queue.so', 'codec_ulaw.so', 'codec_alaw.so', 'bridge_simple.so',
      'bridge_softmix.so', 'res_timing_timerfd.so', 'res_musiconhold.so']) {
      expect(running, `module ${m}`).toContain(m);
    }
    // autoload=no: nothing beyond modules.conf's list.
    const listed = (await readFile(join(ASTERISK_CONFIG_DIR, 'modules.conf'), 'utf8')).match(/^load => (\S+)/gm)!.map((l) => l.slice(8));
    for (const m of running) if (m.endsWith('.so')) expect(listed, `unexpected module ${m}`).toContain(m);
  });

  test('AMI accepts the generated secret and refuses a wrong one', async () => {
    const ami = first.connection.ami!;
    const login = (secret: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const sock = connect(ami.port, ami.host);
        let buf = '';
        sock.setEncoding('utf8');
        sock.on('data', (d: string) => {
          buf += d;
          if (buf.startsWith('Asterisk Call Manager') && buf.includes('\r\n') && !buf.includes('Action')) {
            if (!buf.includes('sent-login')) {
              buf += 'sent-login';
              sock.write(`Action: Login\r\nUsername: ${ami.username}\r\nSecret: ${secret}\r\n\r\n`);
            }
          }
          const m = /Response: (\w+)/.exec(buf);
          if (m) {
            sock.end();
            resolve(m[1]!);
          }
        });
        sock.on('error', reject);
        setTimeout(() => reject(new Error(`no AMI answer: ${buf}`)), 10_000).unref();
      });
    expect(ami.host).toBe('127.0.0.1');
    expect(await login(ami.secret)).toBe('Success');
    expect(await login('wrong-secret-0000000000')).toBe('Error');
  }, 30_000);

  test('credentials: generated, 0600, git-ignored, never in the committed config', async () => {
    const path = first.status.credentials_file;
    expect(path).toBe(join(REPO_ROOT, '.switchboard', `pbx-${INSTANCE}.json`));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const creds = (await readCredentials(path))!;
    expect(creds.ari_password.length).toBeGreaterThanOrEqual(32);
    expect(new Set([creds.ari_password, creds.ami.secret, ...creds.sip.accounts.map((a) => a.password)]).size).toBe(5);
    await execFileP('git', ['check-ignore', '-q', path], { cwd: REPO_ROOT }); // throws if not ignored
    const { stdout: committed } = await execFileP('grep', ['-rl', creds.ari_password, ASTERISK_CONFIG_DIR]).catch(() => ({ stdout: '' }));
    expect(committed).toBe('');
    // What Switchboard reads by default, with env overrides on top.
    const conn = await loadPbxConnection(INSTANCE, { env: { ARI_PASSWORD: 'from-env' } });
    expect(conn.ariUrl).toBe(creds.ari_url);
    expect(conn.ariPassword).toBe('from-env');
    expect(conn.source).toBe('file+env');
  });

  test('a SIPp call to 600 is answered and the echoed RTP carries the speech it sent', async () => {
    const rx = await udpListener();
    const pid = first.status.pid!;
    // While the call is up, look at Asterisk's RTP sockets.
    let rtpSockets: { address: string; port: number }[] = [];
    const sampler = setInterval(() => {
      void socketsOf(pid)
        .then((s) => {
          const inRange = s.filter((x) => x.protocol.startsWith('udp') && x.port >= PORTS.rtpStart && x.port <= PORTS.rtpEnd);
          if (inRange.length > rtpSockets.length) rtpSockets = inRange;
        })
        .catch(() => undefined);
    }, 250);
    let result;
    try {
      result = await runSipp({ port: PORTS.sip, extension: '600', audio: speechWav, sdpMediaPort: rx.port, workDir: join(work, 'sipp-echo') });
    } finally {
      clearInterval(sampler);
      rx.socket.close();
    }
    expect(result.ok, `${result.errors}\n${result.stderr}`).toBe(true);
    expect(result.successful).toBe(1);
    expect(result.failed).toBe(0);
    console.log(`[sipp] call setup ${result.setupTimeMs} ms, length ${result.callLengthMs} ms, audio ${result.audioMs} ms`);

    // Asterisk's media for the call is on loopback, inside the instance's RTP range.
    expect(rtpSockets.length).toBeGreaterThan(0);
    for (const s of rtpSockets) expect(s.address).toBe('127.0.0.1');

    // What SIPp streamed: the same conversion the helper made, in 160-byte (20 ms) frames.
    const sent = await readFile((await toRawG711(speechWav, 'PCMU', join(work, 'sipp-echo'))).path);
    const frames: Buffer[] = [];
    for (let off = 0; off + 160 <= sent.length; off += 160) frames.push(sent.subarray(off, off + 160));
    const speechIndex = new Map<string, number>();
    frames.forEach((f, i) => {
      if (rms(f) > 300 && !speechIndex.has(f.toString('base64'))) speechIndex.set(f.toString('base64'), i);
    });
    const speechFrames = speechIndex.size;
    expect(speechFrames).toBeGreaterThan(50); // the clip really is speech

    const received = rx.packets.map(rtpPayload).filter((p) => p !== undefined);
    expect(received.length).toBeGreaterThan(frames.length * 0.8);
    for (const p of received) expect(p.pt).toBe(0);
    const matched = received.map((p) => speechIndex.get(p.payload.toString('base64'))).filter((i) => i !== undefined);
    const distinct = new Set(matched).size;
    let inOrder = 0;
    for (let i = 1; i < matched.length; i++) if (matched[i]! > matched[i - 1]!) inOrder++;
    console.log(`[echo] sent ${frames.length} frames (${speechFrames} speech), received ${received.length} packets, ${distinct} speech frames echoed byte-exact`);
    expect(distinct).toBeGreaterThan(speechFrames * 0.9);
    expect(inOrder).toBeGreaterThan((matched.length - 1) * 0.95);
  }, 60_000);

  test('with no Switchboard connected, 100 falls back to the operator queue and the caller hears hold music', async () => {
    const rx = await udpListener();
    let result;
    try {
      result = await runSipp({ port: PORTS.sip, extension: '100', callDurationMs: 4000, sdpMediaPort: rx.port });
    } finally {
      rx.socket.close();
    }
    expect(result.ok, result.errors).toBe(true);
    const payloads = rx.packets.map(rtpPayload).filter((p) => p !== undefined && p.pt === 0);
    const loud = payloads.filter((p) => rms(p!.payload) > 200).length;
    console.log(`[moh] ${payloads.length} PCMU packets, ${loud} with sound`);
    expect(payloads.length).toBeGreaterThan(100); // ~4 s of 20 ms packets
    expect(loud).toBeGreaterThan(payloads.length * 0.5); // music, not silence
  }, 60_000);

  test('an ARI ExternalMedia channel (chan_rtp) binds its RTP to loopback', async () => {
    const c = first.connection;
    const authHeader = `Basic ${Buffer.from(`${c.ariUsername}:${c.ariPassword}`).toString('base64')}`;
    // ARI only creates channels for a connected Stasis application.
    const ws = new WebSocket(`${c.ariWsUrl}?app=${encodeURIComponent(c.ariApp)}`, { headers: { authorization: authHeader } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const rx = await udpListener();
    try {
      const q = new URLSearchParams({ app: c.ariApp, external_host: `127.0.0.1:${rx.port}`, format: 'ulaw' });
      const res = await fetch(`${c.ariUrl}/ari/channels/externalMedia?${q.toString()}`, { method: 'POST', headers: { authorization: authHeader } });
      expect(res.status).toBe(200);
      const ch = (await res.json()) as { id: string; channelvars?: Record<string, string> };
      expect(ch.channelvars?.UNICASTRTP_LOCAL_ADDRESS).toBe('127.0.0.1');
      const port = Number(ch.channelvars?.UNICASTRTP_LOCAL_PORT);
      expect(port).toBeGreaterThanOrEqual(PORTS.rtpStart);
      expect(port).toBeLessThanOrEqual(PORTS.rtpEnd);
      const sockets = await socketsOf(first.status.pid!);
      expect(sockets.find((s) => s.port === port)?.address).toBe('127.0.0.1');
      const del = await fetch(`${c.ariUrl}/ari/channels/${ch.id}`, { method: 'DELETE', headers: { authorization: authHeader } });
      expect(del.status).toBe(204);
    } finally {
      rx.socket.close();
      ws.close();
    }
  }, 60_000);

  test('SIPp helper under load: 50 concurrent streaming calls, all answered and ended cleanly', async () => {
    const r = await runSipp({
      port: PORTS.sip,
      extension: '600',
      audio: speechWav,
      audioLoops: -1,
      calls: 50,
      rate: 25,
      maxConcurrent: 50,
      callDurationMs: 3000,
      callerIds: ['+15550001', '+15550002', '+15550003'],
    });
    console.log(`[sipp-load] ${r.successful}/${r.requested} ok in ${r.wallMs} ms, setup ${r.setupTimeMs} ms mean, watchdog ${r.watchdog}`);
    expect(r.ok, `${r.errors}\n${JSON.stringify(r.failures)}`).toBe(true);
    expect(r.successful).toBe(50);
    expect(r.created).toBe(50);
    expect(r.callLengthMs).toBeGreaterThanOrEqual(3000);
    // No channel left behind in Asterisk once SIPp is done.
    const c = first.connection;
    const channels = (await (
      await fetch(`${c.ariUrl}/ari/channels`, {
        headers: { authorization: `Basic ${Buffer.from(`${c.ariUsername}:${c.ariPassword}`).toString('base64')}` },
      })
    ).json()) as unknown[];
    expect(channels).toEqual([]);
  }, 120_000);

  test("a phone's username without its digest password is challenged, not let in", async () => {
    const r = await runSipp({ port: PORTS.sip, extension: '600', callerIds: ['6001'], callDurationMs: 500, timeoutMs: 20_000 });
    expect(r.ok).toBe(false);
    expect(r.successful).toBe(0);
    expect(r.failed).toBe(1);
    expect(r.errors).toMatch(/401/);
  }, 60_000);

  test('`switchboard pbx status --json` and `logs` through bin/switchboard.js', async () => {
    const st = await cli(['pbx', 'status', '--json', '--instance', INSTANCE]);
    expect(st.code, st.stderr).toBe(0);
    const json = JSON.parse(st.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      running: true,
      instance: INSTANCE,
      pid: first.status.pid,
      ari_url: `http://127.0.0.1:${PORTS.http}`,
      sip: `127.0.0.1:${PORTS.sip}`,
      ami: `127.0.0.1:${PORTS.ami}`,
      rtp: { start: PORTS.rtpStart, end: PORTS.rtpEnd },
      credentials_file: first.status.credentials_file,
    });
    const logs = await cli(['pbx', 'logs', '--instance', INSTANCE, '-n', '400']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('Asterisk 22');
    expect(logs.stdout).toContain('Executing [600@from-internal:1]'); // the echo call above
    const stopped = await cli(['pbx', 'status', '--json', '--instance', 'never-started']);
    expect(stopped.code).toBe(3);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ running: false, pid: null });
  }, 120_000);

  test('up on a running instance is a no-op; a second up after down reuses the cached rootfs', async () => {
    const again = await pbxUp(upOpts);
    expect(again.alreadyRunning).toBe(true);
    expect(again.status.pid).toBe(first.status.pid);

    await pbxDown({ instance: INSTANCE });
    const cached = await pbxUp(upOpts);
    console.log(`[pbx] cached up: ${cached.timings.totalMs} ms (rootfs check ${cached.timings.rootfsMs} ms, Asterisk start ${cached.timings.startMs} ms)`);
    expect(cached.rootfsBuilt).toBe(false);
    expect(cached.alreadyRunning).toBe(false);
    expect(cached.status.pid).not.toBe(first.status.pid);
    // Secrets survive restarts (phones stay configured); ports are what was asked.
    expect(cached.connection.ariPassword).toBe(first.connection.ariPassword);
    first = cached;
  }, 300_000);

  test('two instances side by side on different ports, then both down', async () => {
    let b: SandboxHandle | undefined;
    try {
      b = await ensureSandbox(`${INSTANCE}-b`, { log: (m) => console.log(`[pbx-b] ${m}`) });
      expect(b.startedHere).toBe(true);
      const a = await pbxStatus({ instance: INSTANCE });
      expect(a.running).toBe(true);
      expect(b.status.running).toBe(true);
      expect(b.status.pid).not.toBe(a.pid);
      expect(b.ports.sip).not.toBe(PORTS.sip);
      // Both answer their own ARI, and a call to each works.
      for (const conn of [first.connection, b.connection]) {
        const res = await fetch(`${conn.ariUrl}/ari/asterisk/info`, {
          headers: { authorization: `Basic ${Buffer.from(`${conn.ariUsername}:${conn.ariPassword}`).toString('base64')}` },
        });
        expect(res.status).toBe(200);
      }
      // Credentials differ between instances.
      expect(b.connection.ariPassword).not.toBe(first.connection.ariPassword);
      const [ra, rb] = await Promise.all([
        runSipp({ port: PORTS.sip, extension: '600', callDurationMs: 1500 }),
        runSipp({ port: b.ports.sip, extension: '600', callDurationMs: 1500 }),
      ]);
      expect(ra.ok, ra.errors).toBe(true);
      expect(rb.ok, rb.errors).toBe(true);
    } finally {
      await b?.stop();
    }
    const bStatus = await pbxStatus({ instance: `${INSTANCE}-b` });
    expect(bStatus.running).toBe(false);
    expect(bStatus.processes).toEqual([]);
    expect((await pbxStatus({ instance: INSTANCE })).running).toBe(true); // untouched by b's down
  }, 300_000);

  test('a start that fails (timeout, or Asterisk exiting) reports why with the log tail and leaves nothing running', async () => {
    const instance = `${INSTANCE}-fail`;
    const p = await freeTestPorts(instance);
    const opts = { instance, sipPort: p.sip, httpPort: p.http, amiPort: p.ami, rtpStart: p.rtpStart, rtpEnd: p.rtpEnd };
    const failure = (o: Parameters<typeof pbxUp>[0]): Promise<Error | undefined> =>
      pbxUp(o).then(
        () => undefined,
        (e: Error) => e,
      );

    // The deadline passes while spawning: deterministic.
    const timedOut = await failure({ ...opts, startTimeoutMs: 1 });
    expect(timedOut?.message).toMatch(/did not come up: timed out/);
    expect(timedOut?.message).toMatch(/--- .*\/log\/messages \(tail\) ---/);
    expect((await pbxStatus({ instance })).processes).toEqual([]);

    // A configuration Asterisk refuses: a required module that does not exist.
    const broken = join(work, 'broken-config');
    await mkdir(broken, { recursive: true });
    for (const f of (await readdir(ASTERISK_CONFIG_DIR)).filter((f) => f.endsWith('.conf'))) {
      await copyFile(join(ASTERISK_CONFIG_DIR, f), join(broken, f));
    }
    await writeFile(join(broken, 'modules.conf'), `${await readFile(join(broken, 'modules.conf'), 'utf8')}require => res_no_such_module.so\n`);
    const exited = await failure({ ...opts, configSource: broken });
    expect(exited?.message).toMatch(/did not come up: asterisk exited/);
    expect(exited?.message).toContain('res_no_such_module.so');

    const st = await pbxStatus({ instance });
    expect(st.running).toBe(false);
    expect(st.processes).toEqual([]);
    await rm(st.credentials_file, { force: true });
  }, 60_000);

  test('down stops the instance and leaves no process behind; down again is a no-op', async () => {
    const before = await pbxStatus({ instance: INSTANCE });
    expect(before.running).toBe(true);
    const rootfs = before.rootfs;
    const paths = instancePaths(rootfs, INSTANCE);

    const down = await pbxDown({ instance: INSTANCE });
    expect(down.wasRunning).toBe(true);
    expect(down.killed).toEqual([]); // graceful: `core stop now` was enough

    expect(await instanceProcesses(rootfs, paths.chrootAsteriskConf)).toEqual([]);
    const inRoot = await processesInRoot(rootfs);
    for (const p of inRoot) expect(p.cmdline.join(' ')).not.toContain(paths.chrootBase);
    let pidGone = false;
    try {
      process.kill(before.pid!, 0);
    } catch {
      pidGone = true;
    }
    // The pid may linger only as a zombie of this process until reaped; /proc says it is dead.
    const statusAfter = await pbxStatus({ instance: INSTANCE });
    expect(statusAfter.running).toBe(false);
    expect(statusAfter.pid).toBeNull();
    expect(pidGone || statusAfter.processes.length === 0).toBe(true);
    const fetchErr = await fetch(`${before.ari_url}/ari/asterisk/info`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(fetchErr).toBe('refused');

    const again = await pbxDown({ instance: INSTANCE });
    expect(again.wasRunning).toBe(false);
  }, 120_000);
});


/**
 * The production path without Docker: docker/asterisk/entrypoint.sh runs in a chroot of the same
 * cached rootfs (Debian sid's Asterisk 22, as in the image), installs asterisk-config/ into the
 * rootfs's /etc/asterisk, writes generated/ from environment variables and execs Asterisk. It
 * must boot cleanly, answer ARI with the environment's credentials, define the phones and no
 * sandbox-only endpoint: an unauthenticated loopback call is challenged.
 */
describe('docker entrypoint: the production configuration boots Asterisk 22', () => {
  test('entrypoint + asterisk-config start Asterisk in the rootfs; unauthenticated calls are refused', async () => {
    const cacheDir = cacheRoot();
    const rootfs = await ensureRootfs({ cacheDir });
    const ports = await freeTestPorts('docker-emu');
    const env = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      ASTERISK_CONFIG_SRC: '/srv/switchboard-docker/src',
      ARI_PASSWORD: `Ari-${Date.now()}-0123456789`,
      AMI_SECRET: 'AmiSecret-0123456789',
      SIP_6001_PASSWORD: 'Sip6001Password-0123',
      SIP_6002_PASSWORD: 'Sip6002Password-0123',
      SIP_7000_PASSWORD: 'Sip7000Password-0123',
      SIP_BIND: '127.0.0.1',
      SIP_PORT: String(ports.sip),
      HTTP_PORT: String(ports.http),
      AMI_PORT: String(ports.ami),
      RTP_START: String(ports.rtpStart),
      RTP_END: String(ports.rtpEnd),
    };
    await withLock(join(cacheDir, 'locks', 'docker-emulation'), async () => {
      const base = join(rootfs.path, 'srv/switchboard-docker');
      await rm(base, { recursive: true, force: true });
      await mkdir(join(base, 'src'), { recursive: true });
      for (const f of (await readdir(ASTERISK_CONFIG_DIR)).filter((f) => f.endsWith('.conf'))) {
        await copyFile(join(ASTERISK_CONFIG_DIR, f), join(base, 'src', f));
      }
      await copyFile(join(REPO_ROOT, 'docker/asterisk/entrypoint.sh'), join(base, 'entrypoint.sh'));
      const messages = join(rootfs.path, 'var/log/asterisk/messages');
      const offset = await stat(messages).then((s) => s.size, () => 0);
      const out = openSync(join(base, 'output.log'), 'a');
      const child = spawn('chroot', [rootfs.path, '/bin/sh', '/srv/switchboard-docker/entrypoint.sh'], {
        stdio: ['ignore', out, out],
        env,
      });
      closeSync(out);
      let exited = false;
      child.on('exit', () => (exited = true));
      const cleanup = async (): Promise<void> => {
        await execFileP('chroot', [rootfs.path, '/usr/sbin/asterisk', '-rx', 'core stop now'], { env }).catch(() => undefined);
        for (let i = 0; i < 100 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
        if (!exited) child.kill('SIGKILL');
        // The entrypoint's `tail -F` of the messages log outlives Asterisk outside a container.
        for (const p of await processesInRoot(rootfs.path)) {
          const cmd = p.cmdline.join(' ');
          if (cmd.includes('/var/log/asterisk/messages') || cmd.includes('/etc/asterisk/asterisk.conf')) process.kill(p.pid, 'SIGKILL');
        }
      };
      try {
        const auth = `Basic ${Buffer.from(`switchboard:${env.ARI_PASSWORD}`).toString('base64')}`;
        let status: number | string = '';
        for (let i = 0; i < 300 && status !== 200; i++) {
          if (exited) break;
          status = await fetch(`http://127.0.0.1:${ports.http}/ari/asterisk/info`, { headers: { authorization: auth } }).then(
            (r) => r.status,
            (e: Error) => e.message,
          );
          if (status !== 200) await new Promise((r) => setTimeout(r, 200));
        }
        const output = await readFile(join(base, 'output.log'), 'utf8');
        expect(status, `entrypoint output:\n${output}`).toBe(200);
        await execFileP('chroot', [rootfs.path, '/usr/sbin/asterisk', '-rx', 'core waitfullybooted'], { env });
        const log = (await readFile(messages, 'utf8')).slice(offset);
        const errors = log.split('\n').filter((l) => l.includes('ERROR['));
        expect(errors, errors.join('\n')).toEqual([]);
        const { stdout: endpoints } = await execFileP('chroot', [rootfs.path, '/usr/sbin/asterisk', '-rx', 'pjsip show endpoints'], { env });
        for (const e of ['6001', '6002', '7000']) expect(endpoints).toContain(`Endpoint:  ${e}/`);
        expect(endpoints).not.toContain('sandbox-loopback');
        expect(endpoints).toContain(`127.0.0.1:${ports.sip}`);
        const call = await runSipp({ port: ports.sip, extension: '600', callDurationMs: 500, timeoutMs: 20_000 });
        expect(call.successful).toBe(0);
        expect(call.errors).toMatch(/401/);
      } finally {
        await cleanup();
      }
      const left = (await processesInRoot(rootfs.path)).filter((p) => !p.cmdline.some((a) => a.startsWith('/srv/switchboard/')));
      expect(left.map((p) => p.cmdline.join(' '))).toEqual([]);
    });
  }, 600_000);
});
