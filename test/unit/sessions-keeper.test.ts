/**
 * A call's session keeper: updates are copied at once and saved in the background, one write
 * at a time with bursts coalesced into the latest state; a failing store is logged and counted,
 * never thrown at the turn; the session is deleted when the call ends.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { newSessionDocument, type SessionDocument } from '../../src/sessions/document.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { createSessionMetrics } from '../../src/sessions/metrics.js';
import { SessionKeeper } from '../../src/sessions/session-keeper.js';
import type { SessionStore } from '../../src/sessions/store.js';
import type { ChatMessage } from '../../src/plugins/api.js';

const start = (): SessionDocument => newSessionDocument({ callId: 'k1', channelId: 'k1', agentName: 'support', caller: { number: '', name: '' } });

/** A store whose writes wait until released, to see what the keeper does meanwhile. */
class GatedStore implements SessionStore {
  readonly written: SessionDocument[] = [];
  readonly deleted: string[] = [];
  private gate: (() => void) | undefined;
  fail = false;
  async get(): Promise<undefined> {
    return undefined;
  }
  async put(doc: SessionDocument): Promise<void> {
    await new Promise<void>((r) => (this.gate = r));
    if (this.fail) throw new Error('redis exploded');
    this.written.push(structuredClone(doc));
  }
  async delete(callId: string): Promise<void> {
    if (this.fail) throw new Error('redis exploded');
    this.deleted.push(callId);
  }
  async touch(): Promise<boolean> {
    return false;
  }
  async close(): Promise<void> {}
  release(): void {
    const g = this.gate;
    this.gate = undefined;
    g?.();
  }
  get waiting(): boolean {
    return this.gate !== undefined;
  }
}

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !pred(); i++) await new Promise((r) => setImmediate(r));
  if (!pred()) throw new Error('condition never held');
}

describe('SessionKeeper', () => {
  it('copies each update at once: a history changed later is not what was saved', async () => {
    const store = new MemorySessionStore({ ttlMs: 60_000 });
    const metrics = createSessionMetrics(new MetricsRegistry());
    const k = new SessionKeeper(store, start(), silentLogger, metrics);
    const history: ChatMessage[] = [{ role: 'user', content: 'where is my order' }];
    k.update({ turn: 1, history });
    history.push({ role: 'assistant', content: 'later' });
    await k.flush();
    expect((await store.get('k1'))?.history).toEqual([{ role: 'user', content: 'where is my order' }]);
    await store.close();
  });

  it('one write at a time; updates during a write become one more write of the latest state', async () => {
    const store = new GatedStore();
    const k = new SessionKeeper(store, start(), silentLogger, createSessionMetrics(new MetricsRegistry()));
    k.update({ turn: 1 });
    await until(() => store.waiting);
    k.update({ turn: 2 });
    k.update({ turn: 3 });
    k.update({ turn: 4 });
    store.release();
    await until(() => store.waiting);
    store.release();
    await k.flush();
    expect(store.written.map((d) => d.turn)).toEqual([1, 4]);
    expect(k.saves).toBe(2);
  });

  it('a failing store is logged and counted, never thrown; the end of the call still completes', async () => {
    const store = new GatedStore();
    store.fail = true;
    const metrics = createSessionMetrics(new MetricsRegistry());
    const k = new SessionKeeper(store, start(), silentLogger, metrics);
    expect(() => k.update({ turn: 1 })).not.toThrow();
    await until(() => store.waiting);
    store.release();
    await k.flush();
    expect(metrics.saveErrors.get()).toBe(1);
    await expect(k.discard()).resolves.toBeUndefined();
  });

  it('a state JSON cannot hold is refused (counted), the last good state kept', async () => {
    const store = new MemorySessionStore({ ttlMs: 60_000 });
    const metrics = createSessionMetrics(new MetricsRegistry());
    const k = new SessionKeeper(store, start(), silentLogger, metrics);
    k.update({ turn: 1, llm: { ok: true } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    k.update({ turn: 2, llm: cyclic });
    await k.flush();
    expect(metrics.saveErrors.get()).toBe(1);
    expect(await store.get('k1')).toMatchObject({ turn: 1, llm: { ok: true } });
    await store.close();
  });

  it('discard waits for the write in flight, deletes the session and ignores later updates', async () => {
    const store = new GatedStore();
    const k = new SessionKeeper(store, start(), silentLogger, createSessionMetrics(new MetricsRegistry()));
    k.update({ turn: 1 });
    await until(() => store.waiting);
    const discarding = k.discard();
    k.update({ turn: 2 });
    store.release();
    await discarding;
    expect(store.written.map((d) => d.turn)).toEqual([1]);
    expect(store.deleted).toEqual(['k1']);
  });
});

describe('SessionKeeper keep-alive', () => {
  // Found in review: only saves renewed the TTL, so a call quiet for longer than the TTL (a
  // hold, a slow tool, the echo agent) lost its session and could not be adopted.
  it('renews the TTL while the call is up, writes a session that expired anyway, and stops at the end', async () => {
    const store = new MemorySessionStore({ ttlMs: 60 });
    const keeper = new SessionKeeper(store, start(), silentLogger, createSessionMetrics(new MetricsRegistry()), undefined, 20);
    keeper.update({ turn: 3 });
    await keeper.flush();
    // Well past the 60 ms TTL: still there, because the keeper renews it.
    await new Promise((r) => setTimeout(r, 250));
    expect((await store.get('k1'))?.turn).toBe(3);
    // Gone behind its back (Redis restarted empty): written again at the next renewal.
    await store.delete('k1');
    for (let i = 0; i < 200 && keeper.saves < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await keeper.flush();
    expect((await store.get('k1'))?.turn).toBe(3);
    await keeper.discard();
    expect(await store.get('k1')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(await store.get('k1')).toBeUndefined();
    await store.close();
  });
});
