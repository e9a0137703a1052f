/**
 * The in-process session store (what runs when Redis is unset or down): the TTL is honoured on
 * every read, saves and touch renew it, expired entries are swept, and bad input is refused
 * with a clear error. The clock is injected, so expiry is exact, not raced.
 */
import { describe, expect, it } from 'vitest';
import { newSessionDocument, type SessionDocument } from '../../src/sessions/document.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { SessionStoreError } from '../../src/sessions/store.js';

function doc(callId: string, turn = 0): SessionDocument {
  return { ...newSessionDocument({ callId, channelId: callId, agentName: 'support', caller: { number: '+15550100', name: '' } }), turn };
}

function store(ttlMs = 1000): { s: MemorySessionStore; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  return { s: new MemorySessionStore({ ttlMs, now: () => clock.t, sweepIntervalMs: 3_600_000 }), clock };
}

describe('MemorySessionStore', () => {
  it('round-trips a document as a copy: later changes to the object do not leak in', async () => {
    const { s } = store();
    const d = doc('c1', 2);
    await s.put(d);
    d.turn = 99;
    d.variables.x = 'changed';
    const got = await s.get('c1');
    expect(got?.turn).toBe(2);
    expect(got?.variables).toEqual({});
    await s.close();
  });

  it('expires a session at its TTL; a save renews it', async () => {
    const { s, clock } = store(1000);
    await s.put(doc('c1'));
    clock.t += 999;
    expect(await s.get('c1')).toBeDefined();
    await s.put(doc('c1', 1)); // renewed: 1000 ms from now
    clock.t += 999;
    expect((await s.get('c1'))?.turn).toBe(1);
    clock.t += 1;
    expect(await s.get('c1')).toBeUndefined();
    await s.close();
  });

  it('touch extends a live session, and does nothing for an expired or unknown one', async () => {
    const { s, clock } = store(1000);
    await s.put(doc('c1'));
    clock.t += 900;
    expect(await s.touch('c1')).toBe(true);
    clock.t += 900;
    expect(await s.get('c1')).toBeDefined();
    expect(await s.touch('c1', 50)).toBe(true);
    clock.t += 50;
    expect(await s.touch('c1')).toBe(false);
    expect(await s.touch('never')).toBe(false);
    await s.close();
  });

  it('sweeps expired entries so ended calls do not pile up', async () => {
    const { s, clock } = store(1000);
    for (let i = 0; i < 5; i++) await s.put(doc(`c${i}`));
    await s.put(doc('long'), 10_000);
    clock.t += 1000;
    expect(s.sweep()).toBe(5);
    expect(s.size).toBe(1);
    expect(s.liveEntries()).toEqual([{ callId: 'long', json: expect.any(String) as string, remainingMs: 9000 }]);
    await s.close();
  });

  it('refuses bad call ids and TTLs with clear errors', async () => {
    const { s } = store();
    await expect(s.put(doc(''))).rejects.toThrow(SessionStoreError);
    await expect(s.get('a b')).rejects.toThrow(/spaces or non-printable/);
    await expect(s.get('x'.repeat(201))).rejects.toThrow(/longer than 200/);
    await expect(s.put(doc('ok'), -5)).rejects.toThrow(/TTL must be a positive/);
    expect(() => new MemorySessionStore({ ttlMs: 0 })).toThrow(/TTL/);
    await s.close();
  });

  it('deleteIfUnchanged removes an entry only if it was not rewritten meanwhile', async () => {
    const { s } = store();
    await s.put(doc('c1', 1));
    const json = s.getJson('c1')!;
    await s.put(doc('c1', 2));
    expect(s.deleteIfUnchanged('c1', json)).toBe(false);
    expect(s.deleteIfUnchanged('c1', s.getJson('c1')!)).toBe(true);
    expect(await s.get('c1')).toBeUndefined();
    await s.close();
  });
});
