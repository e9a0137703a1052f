/**
 * The failover session store against the real Redis: with Redis unreachable from the start
 * (a closed port), cut mid-way and restored (a TCP relay to 127.0.0.1:6379 that the test cuts),
 * or hung (the relay stops forwarding: commands time out). Every operation still answers (a
 * Redis error never fails a call), the outage is logged once and counted, and when Redis is
 * back the sessions kept in memory are written back (with the time they had left) and the
 * deletions made meanwhile are applied.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { newSessionDocument, type SessionDocument } from '../../src/sessions/document.js';
import { FailoverSessionStore } from '../../src/sessions/failover-store.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { createSessionMetrics, type SessionMetrics } from '../../src/sessions/metrics.js';
import { RedisSessionStore } from '../../src/sessions/redis-store.js';
import { SessionKeeper } from '../../src/sessions/session-keeper.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS = { host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379) };

let admin: Redis;
const prefixes: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

function newPrefix(): string {
  const p = `sbtest:failover:${randomUUID()}:`;
  prefixes.push(p);
  return p;
}

function recordingLogger(): { log: Logger; records: { level: number; msg: string }[] } {
  const records: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) records.push(JSON.parse(line) as { level: number; msg: string });
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), records };
}

function doc(callId: string, turn = 0): SessionDocument {
  return { ...newSessionDocument({ callId, channelId: callId, agentName: 'support', caller: { number: '+15550100', name: '' } }), turn };
}

async function freeClosedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function eventually(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Opened {
  store: FailoverSessionStore;
  metrics: SessionMetrics;
  registry: MetricsRegistry;
  records: { level: number; msg: string }[];
  prefix: string;
}

function open(url: string | undefined, opts: { ttlMs?: number; timeoutMs?: number } = {}): Opened {
  const registry = new MetricsRegistry();
  const metrics = createSessionMetrics(registry);
  const { log, records } = recordingLogger();
  const prefix = newPrefix();
  const ttlMs = opts.ttlMs ?? 60_000;
  const redis = url ? new RedisSessionStore({ url, ttlMs, keyPrefix: prefix, timeoutMs: opts.timeoutMs ?? 300, backoffMaxMs: 300 }) : undefined;
  const store = new FailoverSessionStore({ redis, redisUrl: url, memory: new MemorySessionStore({ ttlMs }), log, metrics, probeIntervalMs: 100 });
  cleanups.push(() => store.close());
  return { store, metrics, registry, records, prefix };
}

const outageLogs = (records: { msg: string }[]): number => records.filter((r) => r.msg.includes('Redis unavailable')).length;

describe('FailoverSessionStore', () => {
  it('without a Redis URL: in-process only, said once, no fallbacks counted', async () => {
    const { store, metrics, records } = open(undefined);
    await store.ready();
    expect(store.mode).toBe('memory-only');
    await store.put(doc('m1', 3));
    expect((await store.get('m1'))?.turn).toBe(3);
    expect(await store.touch('m1')).toBe(true);
    await store.delete('m1');
    expect(await store.get('m1')).toBeUndefined();
    expect(metrics.fallbacks.get({ op: 'put' })).toBe(0);
    expect(metrics.redisUp.get()).toBe(0);
    expect(records.filter((r) => r.msg.includes('kept in this process only'))).toHaveLength(1);
  });

  it('Redis unreachable from the start (closed port): every operation answers from memory; one log line, counted', async () => {
    const port = await freeClosedPort();
    const { store, metrics, records, registry } = open(`redis://127.0.0.1:${port}`);
    await store.ready();
    expect(store.mode).toBe('down');
    for (let call = 0; call < 20; call++) {
      const id = `closed-${call}`;
      await store.put(doc(id, 1));
      await store.put(doc(id, 2));
      expect((await store.get(id))?.turn).toBe(2);
      expect(await store.touch(id)).toBe(true);
    }
    await store.delete('closed-0');
    expect(await store.get('closed-0')).toBeUndefined();
    // ioredis keeps retrying in the background; the outage is still one log line.
    await eventually('several reconnect attempts', () => records.filter((r) => r.msg === 'session store: Redis unavailable; sessions are kept in this process until it is back (calls go on)').length >= 1);
    await new Promise((r) => setTimeout(r, 700));
    expect(outageLogs(records)).toBe(1);
    expect(metrics.outages.get()).toBe(1);
    expect(metrics.fallbacks.get({ op: 'put' })).toBe(40);
    expect(metrics.fallbacks.get({ op: 'get' })).toBe(21);
    expect(metrics.redisUp.get()).toBe(0);
    expect(registry.render()).toMatch(/switchboard_session_store_fallbacks_total\{op="put"\} 40/);
    expect(store.heldInMemory).toBe(19);
  });

  it('Redis cut mid-way and restored: calls go on from memory, then everything is written back', async () => {
    const proxy = await TcpProxy.start(REDIS);
    cleanups.push(() => proxy.close());
    const { store, metrics, records, prefix } = open(proxy.url, { ttlMs: 60_000 });
    await store.ready();
    expect(store.mode).toBe('up');
    expect(metrics.redisUp.get()).toBe(1);

    await store.put(doc('call-a', 1));
    await store.put(doc('call-c', 1));
    expect(await admin.exists(`${prefix}call-a`, `${prefix}call-c`)).toBe(2);

    await proxy.cut();
    await eventually('the outage to be noticed', () => store.mode === 'down');
    // The calls go on: saves, reads and the end of a call all answer.
    await store.put(doc('call-a', 2));
    await store.put(doc('call-b', 1));
    await store.delete('call-c');
    expect((await store.get('call-a'))?.turn).toBe(2);
    expect((await store.get('call-b'))?.turn).toBe(1);
    expect(await store.get('call-c')).toBeUndefined();
    // A keeper (what the controller and the agent use) never sees an error.
    const keeper = new SessionKeeper(store, doc('call-d'), createLogger({ level: 'silent' }), metrics);
    keeper.update({ turn: 4, history: [{ role: 'user', content: 'hello' }] });
    await keeper.flush();
    expect(keeper.failures).toBe(0);
    expect(metrics.saveErrors.get()).toBe(0);
    expect(metrics.fallbacks.get({ op: 'put' })).toBe(3);
    expect(metrics.fallbacks.get({ op: 'delete' })).toBe(1);
    // Redis itself still has the old state: nothing was written there during the outage.
    expect(JSON.parse((await admin.get(`${prefix}call-a`))!)).toMatchObject({ turn: 1 });

    await proxy.restore();
    await eventually('Redis to be used again', () => store.mode === 'up');
    expect(metrics.reconnects.get()).toBe(1);
    expect(metrics.resynced.get()).toBe(3);
    expect(metrics.redisUp.get()).toBe(1);
    expect(store.heldInMemory).toBe(0);
    expect(JSON.parse((await admin.get(`${prefix}call-a`))!)).toMatchObject({ turn: 2 });
    expect(JSON.parse((await admin.get(`${prefix}call-b`))!)).toMatchObject({ turn: 1 });
    expect(JSON.parse((await admin.get(`${prefix}call-d`))!)).toMatchObject({ turn: 4, history: [{ role: 'user', content: 'hello' }] });
    expect(await admin.exists(`${prefix}call-c`)).toBe(0);
    // Written back with the time they had left, not a fresh or an endless TTL.
    const pttl = await admin.pttl(`${prefix}call-b`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(outageLogs(records)).toBe(1);
    expect(records.filter((r) => r.msg.includes('Redis is back'))).toHaveLength(1);

    // And Redis is the store again.
    await store.put(doc('call-a', 3));
    expect(JSON.parse((await admin.get(`${prefix}call-a`))!)).toMatchObject({ turn: 3 });
    expect(metrics.fallbacks.get({ op: 'put' })).toBe(3);
  });

  it('Redis hung (connection open, no answers): commands time out, memory answers, a probe finds it back', async () => {
    const proxy = await TcpProxy.start(REDIS);
    cleanups.push(() => proxy.close());
    const { store, metrics, prefix } = open(proxy.url, { timeoutMs: 200 });
    await store.ready();
    expect(store.mode).toBe('up');
    proxy.stall();
    await store.put(doc('hung-1', 1)); // times out, then goes to memory
    expect(store.mode).toBe('down');
    expect((await store.get('hung-1'))?.turn).toBe(1);
    await store.put(doc('hung-1', 2));
    expect(metrics.outages.get()).toBe(1);
    proxy.resume();
    await eventually('the probe to find Redis back', () => store.mode === 'up');
    expect(JSON.parse((await admin.get(`${prefix}hung-1`))!)).toMatchObject({ turn: 2 });
    expect(metrics.reconnects.get()).toBe(1);
  });

  it('a stored session that cannot be read is ignored (counted), not a failure', async () => {
    const { store, metrics, prefix } = open(REDIS_URL);
    await store.ready();
    await admin.set(`${prefix}bad`, JSON.stringify({ v: 99 }), 'PX', 60_000);
    expect(await store.get('bad')).toBeUndefined();
    expect(metrics.invalid.get()).toBe(1);
    expect(store.mode).toBe('up');
  });
});
