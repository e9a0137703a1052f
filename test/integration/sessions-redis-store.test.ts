/**
 * Sessions against the real Redis (127.0.0.1:6379, or TEST_REDIS_URL): documents round-trip,
 * the TTL really expires them (and every save renews it), touch extends it, keys carry the
 * prefix, and what cannot be read is refused with a clear error. Each test uses its own key
 * prefix; everything under it is deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSessionDocument, newSessionDocument, type SessionDocument } from '../../src/sessions/document.js';
import { reconnectDelayMs, RedisSessionStore } from '../../src/sessions/redis-store.js';
import { SessionStoreError } from '../../src/sessions/store.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let admin: Redis;
const prefixes: string[] = [];
const stores: RedisSessionStore[] = [];

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});

afterAll(async () => {
  for (const s of stores) await s.close();
  for (const prefix of prefixes) {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

function newPrefix(): string {
  const p = `sbtest:sessions:${randomUUID()}:`;
  prefixes.push(p);
  return p;
}

async function openStore(opts: { ttlMs?: number; prefix?: string } = {}): Promise<{ store: RedisSessionStore; prefix: string }> {
  const prefix = opts.prefix ?? newPrefix();
  const store = new RedisSessionStore({ url: REDIS_URL, ttlMs: opts.ttlMs ?? 60_000, keyPrefix: prefix, timeoutMs: 500 });
  stores.push(store);
  await store.ready();
  expect(store.up).toBe(true);
  return { store, prefix };
}

function doc(callId: string, over: Partial<SessionDocument> = {}): SessionDocument {
  return {
    ...newSessionDocument({ callId, channelId: callId, agentName: 'support', caller: { number: '+15550100', name: 'Ada' }, dialed: '100' }),
    ...over,
  };
}

/** Poll until `pred` holds (bounded): the TTL is Redis's clock, not ours. */
async function eventually(what: string, pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('RedisSessionStore on a real Redis', () => {
  it('stores a session under <prefix><call id> and reads the same document back', async () => {
    const { store, prefix } = await openStore();
    const d = doc('1700000000.1', {
      turn: 2,
      history: [
        { role: 'assistant', content: 'Hello, how can I help?' },
        { role: 'user', content: 'where is my order' },
        { role: 'assistant', content: '', toolCalls: [{ id: 't1', name: 'get_order_status', arguments: { order_id: '30552' } }] },
        { role: 'tool', toolCallId: 't1', name: 'get_order_status', content: '{"ok":true,"data":{"status":"shipped"}}' },
      ],
      variables: { language: 'en' },
      llm: { status: 'listening', current: 'ask_order', slots: {}, nested: [1, 'two', null] },
      media: { bridgeId: 'b-1', mediaChannelId: '1700000000.1-media' },
    });
    await store.put(d);
    expect(await admin.exists(`${prefix}1700000000.1`)).toBe(1);
    expect(await store.get('1700000000.1')).toEqual(d);
    expect(await store.get('never-stored')).toBeUndefined();
    await store.delete('1700000000.1');
    expect(await store.get('1700000000.1')).toBeUndefined();
    expect(await admin.exists(`${prefix}1700000000.1`)).toBe(0);
  });

  it('a session expires after its TTL; every save starts the TTL again', async () => {
    const { store, prefix } = await openStore({ ttlMs: 3000 });
    await store.put(doc('ttl-1'));
    const pttl = await admin.pttl(`${prefix}ttl-1`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(3000);
    // Once most of it has run out, a save gives it the full TTL again.
    await eventually('the TTL to run down', async () => (await admin.pttl(`${prefix}ttl-1`)) < 1500);
    await store.put(doc('ttl-1', { turn: 1 }));
    expect(await admin.pttl(`${prefix}ttl-1`)).toBeGreaterThan(1500);
    expect((await store.get('ttl-1'))?.turn).toBe(1);
    await eventually('the session to expire', async () => (await store.get('ttl-1')) === undefined);
    expect(await admin.exists(`${prefix}ttl-1`)).toBe(0);
  });

  it('touch gives a session a full TTL again, and says when there is nothing to touch', async () => {
    const { store, prefix } = await openStore({ ttlMs: 60_000 });
    await store.put(doc('touch-1'), 2000);
    expect(await admin.pttl(`${prefix}touch-1`)).toBeLessThanOrEqual(2000);
    expect(await store.touch('touch-1')).toBe(true);
    // Far beyond the 2 s it had: the store's TTL (60 s) applies again.
    expect(await admin.pttl(`${prefix}touch-1`)).toBeGreaterThan(30_000);
    expect(await store.touch('touch-1', 1200)).toBe(true);
    await eventually('the touched session to expire', async () => (await admin.exists(`${prefix}touch-1`)) === 0);
    expect(await store.touch('touch-1')).toBe(false);
    expect(await store.touch('never-stored')).toBe(false);
  });

  it('refuses a stored value of another version or shape with a clear error', async () => {
    const { store, prefix } = await openStore();
    await admin.set(`${prefix}old`, JSON.stringify({ ...doc('old'), v: 0 }), 'PX', 60_000);
    await expect(store.get('old')).rejects.toThrow(InvalidSessionDocument);
    await expect(store.get('old')).rejects.toThrow(/version 0/);
    await admin.set(`${prefix}broken`, JSON.stringify({ ...doc('broken'), history: [{ role: 'robot', content: 1 }] }), 'PX', 60_000);
    await expect(store.get('broken')).rejects.toThrow(/history\.0/);
    await admin.set(`${prefix}garbage`, '{not json', 'PX', 60_000);
    await expect(store.get('garbage')).rejects.toThrow(/not JSON/);
  });

  it('refuses bad call ids, TTLs and URLs before touching Redis', async () => {
    const { store } = await openStore();
    await expect(store.put(doc(''))).rejects.toThrow(SessionStoreError);
    await expect(store.get('has space')).rejects.toThrow(/spaces/);
    await expect(store.put(doc('ok'), 0)).rejects.toThrow(/TTL/);
    await expect(store.touch('ok', 1.5)).rejects.toThrow(/TTL/);
    expect(() => new RedisSessionStore({ url: 'http://user:hunter2@127.0.0.1:6379', ttlMs: 1000, keyPrefix: 'x:', timeoutMs: 100 })).toThrow(/redis:\/\/.*user:\*\*\*@/);
  });

  it('reconnects with a capped exponential backoff', () => {
    expect([1, 2, 3, 4, 5].map((n) => reconnectDelayMs(n))).toEqual([100, 200, 400, 800, 1600]);
    expect(reconnectDelayMs(30)).toBe(5000);
    expect(reconnectDelayMs(3, 50, 150)).toBe(150);
  });
});
