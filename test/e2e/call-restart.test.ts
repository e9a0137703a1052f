/**
 * A call survives a Switchboard crash. Switchboard runs as a child process (the real CLI:
 * `node bin/switchboard.js start --config …`, the demo configuration with the offline plugins
 * and sessions in the real Redis under a unique prefix) against a sandbox Asterisk; a scripted
 * SIP caller talks to it.
 *
 * 1. The caller asks "Where is my order?", the agent asks for the number, Switchboard is killed
 *    with SIGKILL (no cleanup at all). Asterisk keeps the caller in the Stasis app. Switchboard
 *    is started again: it finds the caller, hangs up the dead ExternalMedia channel, destroys
 *    the old bridge, builds a new media path, restores the conversation from Redis and says it
 *    is back. The caller then says only the order number, and the agent looks it up: the
 *    scripted dialog's state survived. The call ends normally; nothing is left in Asterisk and
 *    the session is gone from Redis.
 * 2. The same crash with the session lost: the caller is handed to the human queue (the
 *    overflow target) instead of being adopted, and the dead media path is cleaned up too.
 * 3. Redis goes away mid-call (Switchboard reaches it through a TCP relay the test cuts): the
 *    conversation goes on, the fallback is counted, and when Redis is back the turn saved in
 *    memory meanwhile is written back to it.
 *
 * The child's logs go to $E2E_LOG_DIR (default: a temporary folder) for a post-mortem.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { SipCaller } from '../../src/demo/sip-caller.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { silentLogger } from '../../src/log.js';
import type { SessionDocument } from '../../src/sessions/document.js';
import { useSandbox } from '../support/pbx.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const REPO = resolve(import.meta.dirname, '../..');
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `sbtest:restart:${randomUUID()}:`;
const RESUME = "Sorry about that, I'm back. Where were we?";
const sandbox = useSandbox('call-restart');

interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `switchboard start` as a child process; its pino JSON log is parsed as it arrives. */
class SwitchboardChild {
  readonly records: LogRecord[] = [];
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly httpUrl: string,
    private readonly out: WriteStream,
  ) {
    this.exited = new Promise((r) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        r();
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      out.write(`${line}\n`);
      if (line.startsWith('{')) {
        try {
          this.records.push(JSON.parse(line) as LogRecord);
        } catch {
          // kept in the raw log only
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => out.write(d));
  }

  static async start(config: string, env: NodeJS.ProcessEnv, logFile: string): Promise<SwitchboardChild> {
    const port = await freePort();
    const child = spawn(process.execPath, [join(REPO, 'bin/switchboard.js'), 'start', '--config', config, '--http-port', String(port)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, SWITCHBOARD_LOG_LEVEL: 'info' },
    });
    const sb = new SwitchboardChild(child, `http://127.0.0.1:${port}`, createWriteStream(logFile, { flags: 'a' }));
    await until(
      'Switchboard to connect to ARI',
      async () => {
        if (sb.exitCode !== undefined) throw new Error(`Switchboard exited during start-up (code ${sb.exitCode}); log: ${logFile}`);
        return (await sb.health())?.ari === 'connected';
      },
      120_000,
    );
    return sb;
  }

  async health(): Promise<{ ari: string; activeCalls: number; sessions?: string } | undefined> {
    try {
      return (await (await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(2000) })).json()) as { ari: string; activeCalls: number };
    } catch {
      return undefined;
    }
  }

  async metric(line: RegExp): Promise<number | undefined> {
    const text = await (await fetch(`${this.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const m = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  }

  logged(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }

  /** No goodbye, no cleanup: the process is gone. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.exited;
    await new Promise<void>((r) => this.out.end(() => r()));
  }

  /** Graceful: Switchboard ends its calls (SIGTERM). */
  async stop(): Promise<void> {
    if (this.exitCode === undefined) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (!this.out.writableEnded) await new Promise<void>((r) => this.out.end(() => r()));
  }
}

describe('a call survives a Switchboard crash (SIGKILL and restart)', () => {
  let work: string;
  let logDir: string;
  let config: string;
  let env: NodeJS.ProcessEnv;
  let redis: Redis;
  let vad: SileroVadModel;
  let callerVoice: CallerVoice;
  let sb: SwitchboardChild | undefined;
  let run = 0;
  /** Switchboard reaches Redis through this relay (test 3 cuts it). */
  let relay: TcpProxy;

  /** ARI's REST API, directly (a second WebSocket on the app would take its events away). */
  async function ari<T>(path: string, method = 'GET'): Promise<T> {
    const c = sandbox().connection;
    const r = await fetch(`${c.ariUrl}/ari${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${c.ariUsername}:${c.ariPassword}`).toString('base64')}` },
      signal: AbortSignal.timeout(5000),
    });
    const text = await r.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  type Channel = { id: string; name: string; dialplan?: { context: string; exten: string; app_name?: string; app_data?: string } };
  type Bridge = { id: string; channels: string[] };
  const channels = (): Promise<Channel[]> => ari<Channel[]>('/channels');
  const bridges = (): Promise<Bridge[]> => ari<Bridge[]>('/bridges');

  async function startSwitchboard(): Promise<SwitchboardChild> {
    run++;
    sb = await SwitchboardChild.start(config, env, join(logDir, `switchboard-${run}.log`));
    return sb;
  }

  async function sessionKeys(): Promise<string[]> {
    return redis.keys(`${PREFIX}*`);
  }

  async function savedSession(): Promise<SessionDocument | undefined> {
    const [key] = await sessionKeys();
    const raw = key ? await redis.get(key) : null;
    return raw ? (JSON.parse(raw) as SessionDocument) : undefined;
  }

  async function dial(from: string): Promise<SipCaller> {
    return SipCaller.dial({ host: '127.0.0.1', port: sandbox().ports.sip, extension: '100', from, vad });
  }

  async function expectNothingLeft(): Promise<void> {
    await until('every channel and bridge to go', async () => (await channels()).length === 0 && (await bridges()).length === 0);
    await until('the session to be deleted', async () => (await sessionKeys()).length === 0);
    // The controller lets go of the call just after its session is deleted (end-of-call teardown).
    await until('the call to leave the controller', async () => (await sb!.health())?.activeCalls === 0);
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'switchboard-restart-'));
    logDir = process.env.E2E_LOG_DIR ?? work;
    // The demo configuration, with sessions in the real Redis under this test's prefix; the
    // scenario path made absolute (the file moves). Call records off: this test is about sessions.
    const demo = parseYaml(await readFile(join(REPO, 'demo/switchboard.demo.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    const llm = (demo.plugins!['llm-script'] as { config: { scenario: string } }).config;
    llm.scenario = join(REPO, 'scenarios/call-centre.yaml');
    relay = await TcpProxy.start({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) });
    demo.sessions = { redisUrl: relay.url, keyPrefix: PREFIX, ttlSeconds: 1800, resumePhrase: RESUME };
    demo.records = { enabled: false };
    config = join(work, 'switchboard.yaml');
    await writeFile(config, stringifyYaml(demo));
    const c = sandbox().connection;
    env = { ARI_URL: c.ariUrl, ARI_USERNAME: c.ariUsername, ARI_PASSWORD: c.ariPassword, SWITCHBOARD_HTTP_PORT: '0' };
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    vad = await SileroVadModel.load();
    callerVoice = await createCallerVoice(silentLogger, work);
    await startSwitchboard();
  }, 300_000);

  afterAll(async () => {
    await sb?.stop();
    await relay?.close();
    const keys = (await redis?.keys(`${PREFIX}*`)) ?? [];
    if (keys.length > 0) await redis.del(...keys);
    await redis?.quit();
    await callerVoice?.close();
    await vad?.close();
    if (work && !process.env.E2E_LOG_DIR) await rm(work, { recursive: true, force: true });
  }, 60_000);

  test('SIGKILL mid-call: the restarted Switchboard takes the call back and the dialog goes on', async () => {
    const call = await dial('restartcaller');
    try {
      await call.waitForAgentTurn({ timeoutMs: 60_000 }); // the greeting
      await call.say(await callerVoice.render('Where is my order?'));
      await call.waitForAgentTurn({ timeoutMs: 60_000 }); // "Sure. What is your order number?"
      const saved = await until('the turn to be saved in Redis', async () => {
        const d = await savedSession();
        return d && (d.llm as { current?: string } | undefined)?.current === 'ask_status_order' ? d : undefined;
      });
      expect(saved.history.some((m) => m.role === 'user')).toBe(true);
      const old = { bridgeId: saved.media.bridgeId!, mediaChannelId: saved.media.mediaChannelId! };

      await sb!.kill();
      // Asterisk keeps the caller in the app, bridged to a media channel nobody reads.
      const left = await channels();
      expect(left.map((c) => c.id).sort()).toEqual([saved.channelId, old.mediaChannelId].sort());
      // Stasis(switchboard,<agent>,<dialled number>): the dialplan passes the number it was called on.
      expect(left.find((c) => c.id === saved.channelId)?.dialplan).toMatchObject({ app_name: 'Stasis', app_data: expect.stringMatching(/^switchboard(,|$)/) as string });
      expect(call.isEnded).toBe(false);

      const restarted = await startSwitchboard();
      const back = await call.waitForAgentTurn({ timeoutMs: 90_000 }); // "Sorry about that, I'm back. Where were we?"
      expect(back.speechMs).toBeGreaterThan(1000);
      expect(restarted.logged('adopting a call left by a previous process')).toHaveLength(1);
      expect(restarted.logged('conversation resumed after a restart')).toHaveLength(1);
      expect(await restarted.metric(/switchboard_calls_adopted_total\{result="adopted"\}/)).toBe(1);
      expect(await restarted.metric(/switchboard_stale_media_channels_total/)).toBe(1);
      expect(await restarted.metric(/switchboard_stale_bridges_total/)).toBe(1);
      // The dead media path is gone; the caller is on a new one.
      const now = await channels();
      expect(now.map((c) => c.id)).not.toContain(old.mediaChannelId);
      expect(now.map((c) => c.id)).toContain(saved.channelId);
      expect((await bridges()).map((b) => b.id)).not.toContain(old.bridgeId);

      await call.say(await callerVoice.render('Three zero five five two.'));
      await call.waitForAgentTurn({ timeoutMs: 60_000 }); // the order's status
      await until('the order lookup', async () => (await restarted.metric(/switchboard_tool_calls_total\{outcome="ok",tool="get_order_status"\}/)) === 1);
      const resumed = await until('the lookup turn to be saved', async () => {
        const d = await savedSession();
        return d && d.history.some((m) => m.role === 'tool' && m.name === 'get_order_status') ? d : undefined;
      });
      expect(resumed.history).toContainEqual({ role: 'assistant', content: RESUME });
      expect(resumed.turn).toBeGreaterThan(saved.turn);
      expect(resumed.media.bridgeId).not.toBe(old.bridgeId);

      // A normal end: the caller says goodbye and the agent closes the call.
      await call.say(await callerVoice.render('No, that is all. Thank you, goodbye.'));
      const ended = await Promise.race([call.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000))]);
      if (!ended) await call.hangup();
    } finally {
      if (!call.isEnded) await call.hangup();
    }
    await expectNothingLeft();
  }, 400_000);

  test('SIGKILL with the session lost: the caller goes to the human queue, the dead media path is cleaned up', async () => {
    const call = await dial('lostcaller');
    try {
      await call.waitForAgentTurn({ timeoutMs: 60_000 });
      const saved = await until('the session to be saved', () => savedSession());
      await sb!.kill();
      await redis.del(...(await sessionKeys()));

      const restarted = await startSwitchboard();
      const queued = await until('the caller to reach the queue', async () => {
        const c = (await channels()).find((ch) => ch.id === saved.channelId);
        return c?.dialplan?.context === 'switchboard-handoff' ? c : undefined;
      });
      expect(queued.dialplan?.app_name).not.toBe('Stasis');
      expect(call.isEnded).toBe(false); // handed over, not cut off
      expect(await restarted.metric(/switchboard_calls_adopted_total\{result="no_session"\}/)).toBe(1);
      await until('the dead media path to go', async () => {
        const ids = (await channels()).map((c) => c.id);
        return !ids.includes(saved.media.mediaChannelId!) && !(await bridges()).some((b) => b.id === saved.media.bridgeId);
      });
      expect(restarted.logged('call left by a previous process goes to the overflow target')).toHaveLength(1);
    } finally {
      if (!call.isEnded) await call.hangup();
    }
    await expectNothingLeft();
  }, 300_000);

  test('Redis cut mid-call: the conversation goes on from memory, and the turn is written back when Redis returns', async () => {
    const call = await dial('outagecaller');
    try {
      await call.waitForAgentTurn({ timeoutMs: 60_000 }); // the greeting
      const first = await until('the session to be saved', () => savedSession());
      expect(first.history.some((m) => m.role === 'user')).toBe(false);

      await relay.cut();
      await until('Switchboard to notice the outage', async () => (await sb!.health())?.sessions === 'down');
      await call.say(await callerVoice.render('Where is my order?'));
      await call.waitForAgentTurn({ timeoutMs: 60_000 }); // answered as usual: Redis is not in the call's path
      await until('the turn to be kept in memory', async () => ((await sb!.metric(/switchboard_session_store_fallbacks_total\{op="put"\}/)) ?? 0) >= 1);
      expect(await sb!.metric(/switchboard_session_store_outages_total/)).toBe(1);
      expect(await sb!.metric(/switchboard_session_store_redis_up/)).toBe(0);
      // Redis itself still holds the session as it was before the outage.
      expect((await savedSession())?.history.some((m) => m.role === 'user')).toBe(false);

      await relay.restore();
      await until('Switchboard to use Redis again', async () => (await sb!.health())?.sessions === 'up', 60_000);
      const back = await until('the turn to be written back', async () => {
        const d = await savedSession();
        return d && (d.llm as { current?: string } | undefined)?.current === 'ask_status_order' ? d : undefined;
      });
      expect(back.history.some((m) => m.role === 'user')).toBe(true);
      expect(await sb!.metric(/switchboard_session_store_reconnects_total/)).toBe(1);
      expect(await sb!.metric(/switchboard_session_store_resynced_total/)).toBeGreaterThanOrEqual(1);
      expect(await sb!.metric(/switchboard_session_store_redis_up/)).toBe(1);
      expect(sb!.logged('session store: Redis unavailable; sessions are kept in this process until it is back (calls go on)')).toHaveLength(1);
      expect(call.isEnded).toBe(false);
    } finally {
      if (!call.isEnded) await call.hangup();
    }
    await expectNothingLeft();
  }, 300_000);
});
