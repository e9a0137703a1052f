/**
 * The two-tier customer lookup against a real Redis (127.0.0.1:6379) in front of PostgreSQL
 * and PGlite: the second lookup is served from Redis, writes invalidate, population after an
 * invalidation is refused, an unreachable Redis is logged once and changes nothing for the
 * caller, and a Redis that drops out and comes back does not serve what changed meanwhile.
 *
 * To prove where an answer came from, tests change the database behind the tools' back
 * (renaming a customer with plain SQL): an answer with the old name came from the cache.
 */
import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrmToolkit, CrmConfigSchema, type CrmToolkit } from '../../plugins/tools-crm/index.js';
import type { RedisCustomerCache } from '../../plugins/tools-crm/cache.js';
import type { ToolContext, ToolDefinition, ToolResult } from '../../src/plugins/api.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import type { Db } from '../../src/storage/db.js';
import { dbBackends } from '../../src/storage/test-backends.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NOW = new Date('2030-01-07T14:00:00Z');
const MARIA = '+12025550143';
const MARIA_HOME = '+12025550144';
const SEAN = '+12025550178';

let admin: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});

afterAll(async () => {
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  await admin.quit();
});

function newPrefix(): string {
  const p = `sbtest:${randomUUID()}:`;
  prefixes.push(p);
  return p;
}

function ctx(callerNumber: string): ToolContext {
  return { callId: 'call-c', turn: 1, idempotencyKey: randomUUID(), callerNumber, variables: new Map(), signal: new AbortController().signal, log: silentLogger };
}

/** What the tests read from tool results (JSON for the model); a wrong claim fails at run time. */
interface Data {
  [key: string]: unknown;
  first_name: string;
  appointment_id: number;
  booked: boolean;
  upcoming_appointments: { appointment_id: number; time: string }[];
}

async function run(tk: CrmToolkit, name: string, args: unknown, caller: string): Promise<Data> {
  const t = tk.tools.find((x) => x.name === name) as ToolDefinition<unknown>;
  const r: ToolResult = await t.execute(args, ctx(caller));
  if (!r.ok) throw new Error(`${name}: ${r.error}`);
  return r.data as Data;
}

/** A logger that keeps every record for assertions. */
function recordingLogger(): { log: Logger; records: { level: number; msg: string }[] } {
  const records: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) records.push(JSON.parse(line) as { level: number; msg: string });
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), records };
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One database per backend for the whole file; each test's toolkit borrows it (its close() is a no-op). */
const backends = dbBackends('sbcache');

describe.each(backends)('customer cache with $name', (backend) => {
  let shared: Db;
  let drop: () => Promise<void>;
  const toolkits: CrmToolkit[] = [];

  const open = async (cache: Record<string, unknown>, log: Logger = silentLogger): Promise<CrmToolkit> => {
    const config = CrmConfigSchema.parse({ seedDemoData: true, timezone: 'America/New_York', connectRetrySeconds: 0, cache });
    const borrowed: Db = { ...shared, close: async () => {} };
    const tk = await createCrmToolkit(config, { log, clock: () => NOW, db: borrowed });
    toolkits.push(tk);
    return tk;
  };
  const rename = (tk: CrmToolkit, phone: string, first: string) =>
    tk.db.query('UPDATE customers SET first_name = $2 WHERE id = (SELECT customer_id FROM customer_phones WHERE phone = $1)', [phone, first]);

  beforeAll(async () => {
    ({ db: shared, drop } = await backend.open());
  });
  afterEach(async () => {
    while (toolkits.length > 0) await toolkits.pop()!.close();
  });
  afterAll(async () => {
    await drop();
  });

  it('serves the second lookup from Redis, under every number of the customer', async () => {
    const prefix = newPrefix();
    const tk = await open({ redisUrl: REDIS_URL, keyPrefix: prefix });
    const cache = tk.cache as RedisCustomerCache;
    await waitUntil(() => cache.connected, 5000, 'redis');
    await rename(tk, MARIA, 'Maria');

    expect(await run(tk, 'lookup_customer', {}, MARIA)).toMatchObject({ first_name: 'Maria' });
    expect(cache.stats).toEqual({ hits: 0, misses: 1, bypassed: 0 });
    expect(await admin.exists(`${prefix}v1:customer:{${MARIA}}`, `${prefix}v1:customer:{${MARIA_HOME}}`)).toBe(2);
    expect(await admin.ttl(`${prefix}v1:customer:{${MARIA}}`)).toBeGreaterThan(250);

    await rename(tk, MARIA, 'Renamed');
    expect(await run(tk, 'lookup_customer', {}, MARIA)).toMatchObject({ first_name: 'Maria' });
    expect(await run(tk, 'lookup_customer', {}, MARIA_HOME)).toMatchObject({ first_name: 'Maria' });
    expect(cache.stats.hits).toBe(2);
    await rename(tk, MARIA, 'Maria');
  });

  it('change_address and bookings invalidate the customer’s cached profile', async () => {
    const prefix = newPrefix();
    const tk = await open({ redisUrl: REDIS_URL, keyPrefix: prefix });
    const cache = tk.cache as RedisCustomerCache;
    await waitUntil(() => cache.connected, 5000, 'redis');

    // change_address
    await run(tk, 'lookup_customer', {}, MARIA);
    await rename(tk, MARIA, 'Mariana');
    expect((await run(tk, 'lookup_customer', {}, MARIA)).first_name).toBe('Maria');
    await run(tk, 'change_address', { order_id: 10234, address: '5 New Street, Springfield, IL 62704' }, MARIA);
    expect(await admin.exists(`${prefix}v1:customer:{${MARIA}}`, `${prefix}v1:customer:{${MARIA_HOME}}`)).toBe(0);
    expect((await run(tk, 'lookup_customer', {}, MARIA_HOME)).first_name).toBe('Mariana');

    // book_appointment: the new appointment shows in the next lookup.
    const before = await run(tk, 'lookup_customer', {}, SEAN);
    expect(before.upcoming_appointments).toHaveLength(1);
    const hitsBefore = cache.stats.hits;
    expect((await run(tk, 'lookup_customer', {}, SEAN)).upcoming_appointments).toHaveLength(1);
    expect(cache.stats.hits).toBe(hitsBefore + 1);
    const booked = await run(tk, 'book_appointment', { date: '2030-01-08', time: '11:00', service: 'oil change' }, SEAN);
    const after = await run(tk, 'lookup_customer', {}, SEAN);
    expect(after.upcoming_appointments.map((a) => a.appointment_id)).toContain(booked.appointment_id);

    // cancel and reschedule invalidate too.
    await run(tk, 'lookup_customer', {}, SEAN);
    await run(tk, 'reschedule_appointment', { appointment_id: booked.appointment_id, date: '2030-01-08', time: '11:30' }, SEAN);
    expect((await run(tk, 'lookup_customer', {}, SEAN)).upcoming_appointments.find((a) => a.appointment_id === booked.appointment_id)?.time).toBe('11:30');
    await run(tk, 'cancel_appointment', { appointment_id: booked.appointment_id }, SEAN);
    expect((await run(tk, 'lookup_customer', {}, SEAN)).upcoming_appointments).toHaveLength(1);
    await rename(tk, MARIA, 'Maria');
  });

  it('refuses to repopulate a key right after it was invalidated (a read racing a write)', async () => {
    const prefix = newPrefix();
    const tk = await open({ redisUrl: REDIS_URL, keyPrefix: prefix });
    const cache = tk.cache as RedisCustomerCache;
    await waitUntil(() => cache.connected, 5000, 'redis');
    const stale = (await tk.store.profileByPhone(MARIA))!;
    await cache.invalidate(stale.phones);
    await cache.set(stale);
    expect(await admin.exists(`${prefix}v1:customer:{${MARIA}}`)).toBe(0);
    expect(await cache.get(MARIA)).toBeUndefined();
  });

  it('keeps working, and says so once, when Redis is not there at all', async () => {
    const { log, records } = recordingLogger();
    const tk = await open({ redisUrl: 'redis://127.0.0.1:1', timeoutMs: 100 }, log);
    for (let i = 0; i < 3; i++) expect(await run(tk, 'lookup_customer', {}, MARIA)).toMatchObject({ found: true, last_name: 'Garcia' });
    const booked = await run(tk, 'book_appointment', { date: '2030-01-09', time: '15:00', service: 'oil change' }, MARIA);
    expect(booked.booked).toBe(true);
    await run(tk, 'cancel_appointment', { appointment_id: booked.appointment_id }, MARIA);
    expect((await run(tk, 'lookup_customer', {}, MARIA)).first_name).toBe('Maria');
    // The refused connection is noticed asynchronously; once noticed it is said once only.
    const warnings = () => records.filter((r) => r.msg.startsWith('customer cache (Redis) unavailable'));
    await waitUntil(() => warnings().length > 0, 5000, 'the outage to be logged');
    for (let i = 0; i < 3; i++) expect(await run(tk, 'lookup_customer', {}, SEAN)).toMatchObject({ found: true });
    await new Promise((r) => setTimeout(r, 600)); // a reconnect attempt or two fail meanwhile
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]!.level).toBe(40);
    expect((tk.cache as RedisCustomerCache).stats.hits).toBe(0);
  });

  it('does not serve what changed while Redis was away, once it is back', async () => {
    // A TCP relay in front of Redis that the test can cut and restore.
    const sockets = new Set<Socket>();
    const relay: Server = createServer((client) => {
      const upstream = connect(Number(new URL(REDIS_URL).port || 6379), new URL(REDIS_URL).hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as { port: number }).port;
    const cut = async (): Promise<void> => {
      await new Promise<void>((r) => {
        relay.close(() => r());
        for (const s of sockets) s.destroy();
      });
    };
    try {
      const { log, records } = recordingLogger();
      const prefix = newPrefix();
      const tk = await open({ redisUrl: `redis://127.0.0.1:${port}`, keyPrefix: prefix, timeoutMs: 200 }, log);
      const cache = tk.cache as RedisCustomerCache;
      await waitUntil(() => cache.connected, 5000, 'redis via relay');

      await run(tk, 'lookup_customer', {}, MARIA);
      expect(await admin.exists(`${prefix}v1:customer:{${MARIA}}`)).toBe(1);

      await cut();
      await waitUntil(() => !cache.connected, 5000, 'the outage to be noticed');
      // The caller notices nothing; the write's invalidation cannot reach Redis and waits.
      await rename(tk, MARIA, 'Marisol');
      await run(tk, 'change_address', { order_id: 10234, address: '8 Outage Avenue, Springfield' }, MARIA);
      expect(cache.pendingInvalidations).toBe(2);
      expect((await run(tk, 'lookup_customer', {}, MARIA)).first_name).toBe('Marisol');
      // The stale entry is still in Redis…
      expect(JSON.parse((await admin.get(`${prefix}v1:customer:{${MARIA}}`))!)).toMatchObject({ firstName: 'Maria' });

      await new Promise<void>((r) => relay.listen(port, '127.0.0.1', r));
      await waitUntil(() => cache.connected && cache.pendingInvalidations === 0, 15_000, 'redis to come back');
      // …and is gone before anything is served from the cache again.
      expect(await admin.exists(`${prefix}v1:customer:{${MARIA}}`)).toBe(0);
      expect((await run(tk, 'lookup_customer', {}, MARIA)).first_name).toBe('Marisol');
      const msgs = records.map((r) => r.msg);
      expect(msgs.filter((m) => m.startsWith('customer cache (Redis) unavailable'))).toHaveLength(1);
      expect(msgs.filter((m) => m === 'customer cache (Redis) is back')).toHaveLength(1);
      await rename(tk, MARIA, 'Maria');
    } finally {
      await new Promise<void>((r) => {
        if (!relay.listening) return r();
        relay.close(() => r());
        for (const s of sockets) s.destroy();
      });
    }
  });
});
