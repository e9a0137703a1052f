/**
 * The call-records store on a real PostgreSQL (a scratch database) and on PGlite: a record
 * written and read back whole, a second write of the same call changing nothing, listing with
 * filters and paging, statistics, and records the database would refuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrate.js';
import { dbBackends } from '../../src/storage/test-backends.js';
import { CallQueryError, InvalidCallRecordError, PgCallRecordStore } from '../../src/records/pg-store.js';
import { CallRecorder } from '../../src/records/recorder.js';
import type { CallRecord } from '../../src/records/types.js';
import { callInfo, latency, orderStatusCall, summaryOf, tool } from '../support/call-record-fixtures.js';

/** Starting a PGlite takes seconds, far longer on a loaded machine. */
const PGLITE_START_MS = 180_000;

function transferredCall(callId: string, at: string, reason: string): CallRecord {
  let t = Date.parse(at);
  const r = new CallRecorder(callInfo(callId, { caller: { number: '+12025550178', name: 'Sean' }, agentName: 'sales' }), { now: () => new Date((t += 500)) });
  r.callerSaid(2, 'I want to speak to a person');
  r.toolCalled(2, tool('t1', 'create_ticket', { category: 'complaint' }, { ok: false, error: 'create_ticket failed unexpectedly.' }, { failure: 'error' }));
  r.toolCalled(2, tool('t2', 'transfer_call', { destination: 'operator', reason }, { ok: true, data: { transferring_to: 'operator' } }));
  r.agentSaid(2, "I'm connecting you.", "I'm connecting you.", true);
  return r.finish(summaryOf(r.call, { outcome: 'transferred', durationMs: 20_000, turns: [latency(2, 900)] }));
}

function abandonedCall(callId: string, at: string): CallRecord {
  const r = new CallRecorder(callInfo(callId), { now: () => new Date(at) });
  return r.finish(summaryOf(r.call, { outcome: 'caller_hangup', durationMs: 3000 }));
}

const backends = dbBackends('sbrec');

describe.each(backends)('call records store on $name', ({ open }) => {
  let db: Db;
  let drop: () => Promise<void>;
  let store: PgCallRecordStore;

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
    store = new PgCallRecordStore(db);
  }, PGLITE_START_MS);

  afterAll(async () => {
    await drop?.();
  });

  const count = async (table: string, callId: string): Promise<number> =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE call_id = $1`, [callId])).rows[0]!.n;

  it('writes a record and reads it back whole; a second write changes nothing', async () => {
    const { record } = orderStatusCall('store-1');
    expect(await store.write(record)).toBe('inserted');
    expect(await store.get('store-1')).toEqual(record);
    expect(await count('call_turns', 'store-1')).toBe(4);
    expect(await count('call_tool_calls', 'store-1')).toBe(3);

    const changed = { ...record, summary: 'something else', turns: record.turns.slice(0, 1) };
    expect(await store.write(changed)).toBe('duplicate');
    expect(await store.get('store-1')).toEqual(record);
    expect(await count('calls', 'store-1')).toBe(1);
    expect(await count('call_turns', 'store-1')).toBe(4);
    expect(await count('call_tool_calls', 'store-1')).toBe(3);
    expect(await store.get('no-such-call')).toBeUndefined();
  });

  it('writes a batch in one transaction; repeats within it and earlier rows are duplicates', async () => {
    const a = orderStatusCall('batch-a').record;
    const b = transferredCall('batch-b', '2030-01-07T15:00:00.000Z', 'caller asked for a person');
    expect(await store.writeMany([a, b, a])).toEqual(['inserted', 'inserted', 'duplicate']);
    expect(await store.writeMany([b, orderStatusCall('batch-c').record])).toEqual(['duplicate', 'inserted']);
    expect(await store.get('batch-a')).toEqual(a);
    expect(await store.get('batch-b')).toEqual(b);
    expect(await count('call_turns', 'batch-a')).toBe(4);
    expect(await count('call_tool_calls', 'batch-b')).toBe(2);
    expect(await store.writeMany([])).toEqual([]);
  });

  it('stores nothing of a batch the database refuses', async () => {
    const good = orderStatusCall('batch-good').record;
    const bad = orderStatusCall('batch-bad').record;
    bad.turns[1]!.latencyMs = -5; // the CHECK on call_turns.latency_ms refuses it
    await expect(store.writeMany([good, bad])).rejects.toMatchObject({ code: '23514' });
    expect(await count('calls', 'batch-good')).toBe(0);
    expect(await store.write(good)).toBe('inserted');
  });

  it('keeps tool arguments and results of any JSON shape, and text PostgreSQL would refuse', async () => {
    const r = new CallRecorder(callInfo('store-odd'), { now: () => new Date('2030-02-01T10:00:00.000Z') });
    r.callerSaid(2, 'nul\u0000 and a lone surrogate \ud800 here');
    r.toolCalled(2, tool('a', 'weird', undefined, { ok: true, data: null }));
    r.toolCalled(2, tool('b', 'weird', 'plain string', { ok: true, data: [1, 'two', { three: 3 }] }));
    r.toolCalled(2, tool('c', 'weird', { nested: { deep: [true, null] }, quote: "O'Brien" }, { ok: false, error: 'nope' }, { failure: 'invalid' }));
    const rec = r.finish(summaryOf(r.call, { variables: { note: 'x\u0000y' } }));
    expect(await store.write(rec)).toBe('inserted');
    const back = (await store.get('store-odd'))!;
    expect(back.turns[0]!.callerText).toBe('nul and a lone surrogate \ufffd here');
    expect(back.variables).toEqual({ note: 'xy' });
    expect(back.turns[0]!.toolCalls.map((t) => [t.arguments, t.result, t.failure])).toEqual([
      [null, null, undefined],
      ['plain string', [1, 'two', { three: 3 }], undefined],
      [{ nested: { deep: [true, null] }, quote: "O'Brien" }, 'nope', 'invalid'],
    ]);
  });

  it('refuses a record that can never be stored, saying why', async () => {
    const { record } = orderStatusCall('store-bad');
    await expect(store.write({ ...record, outcome: 'maybe' as never })).rejects.toThrow(InvalidCallRecordError);
    await expect(store.write({ ...record, startedAt: 'yesterday' })).rejects.toThrow(/startedAt is not a time/);
    await expect(store.write({ ...record, turns: [record.turns[0]!, record.turns[0]!] })).rejects.toThrow(/appears twice/);
    expect(await count('calls', 'store-bad')).toBe(0);
  });

  describe('list and stats', () => {
    const day = '2031-03-0';
    beforeAll(async () => {
      // A day of its own, so the rows of the tests above do not count.
      await store.write(orderStatusCall('L1', { startedAt: new Date(`${day}1T09:00:00.000Z`) }).record);
      await store.write(orderStatusCall('L2', { startedAt: new Date(`${day}1T10:00:00.000Z`), caller: '+12025550112' }).record);
      await store.write(transferredCall('L3', `${day}1T11:00:00.000Z`, 'caller asked for a person'));
      await store.write(transferredCall('L4', `${day}1T12:00:00.000Z`, 'caller asked for a person'));
      await store.write(abandonedCall('L5', `${day}1T13:00:00.000Z`));
    });
    const since = `${day}1T00:00:00.000Z`;
    const until = `${day}2T00:00:00.000Z`;

    it('lists newest first with filters and pages with `before`', async () => {
      const all = await store.list({ since, limit: 10 });
      expect(all.map((c) => c.callId)).toEqual(['L5', 'L4', 'L3', 'L2', 'L1']);
      const { startedAt, summary, ...rest } = all[4]!;
      expect(rest).toEqual({ callId: 'L1', callerNumber: '+12025550143', agent: 'support', durationMs: 41_000, outcome: 'resolved', turns: 4 });
      expect(startedAt).toMatch(/^2031-03-01T08:59:\d\d\.000Z$/);
      expect(summary).toContain('Resolved.');
      const page1 = await store.list({ since, limit: 2 });
      const page2 = await store.list({ since, limit: 2, before: page1.at(-1)!.startedAt });
      const page3 = await store.list({ since, limit: 2, before: page2.at(-1)!.startedAt });
      expect([...page1, ...page2, ...page3].map((c) => c.callId)).toEqual(['L5', 'L4', 'L3', 'L2', 'L1']);
      expect((await store.list({ since, outcome: 'transferred' })).map((c) => c.callId)).toEqual(['L4', 'L3']);
      expect((await store.list({ since, agent: 'sales' })).map((c) => c.callId)).toEqual(['L4', 'L3']);
      expect((await store.list({ since, callerNumber: '+12025550112' })).map((c) => c.callId)).toEqual(['L2']);
      expect(await store.list({ since: until })).toEqual([]);
    });

    // Found in review: paging by time alone skipped calls that started in the same millisecond
    // as the last row of a page.
    it('pages with before + beforeCallId without skipping calls that started in the same millisecond', async () => {
      const same = '2031-04-01T09:00:00.000Z';
      for (const id of ['S1', 'S2', 'S3', 'S4', 'S5']) await store.write(abandonedCall(id, same));
      const window = { since: '2031-04-01T00:00:00.000Z' };
      const seen: string[] = [];
      let page = await store.list({ ...window, limit: 2 });
      for (let i = 0; page.length > 0 && i < 10; i++) {
        seen.push(...page.map((c) => c.callId));
        const last = page.at(-1)!;
        page = await store.list({ ...window, limit: 2, before: last.startedAt, beforeCallId: last.callId });
      }
      expect(seen).toEqual(['S1', 'S2', 'S3', 'S4', 'S5']);
      // Time alone (the old cursor) loses the rest of the millisecond.
      const first = await store.list({ ...window, limit: 2 });
      expect(await store.list({ ...window, limit: 2, before: first.at(-1)!.startedAt })).toEqual([]);
      await expect(store.list({ beforeCallId: 'S1' })).rejects.toThrow(/needs before/);
    });

    it('refuses bad list arguments with a clear error', async () => {
      await expect(store.list({ limit: 0 })).rejects.toThrow(CallQueryError);
      await expect(store.list({ limit: 501 })).rejects.toThrow(/limit must be/);
      await expect(store.list({ outcome: 'won' as never })).rejects.toThrow(/outcome must be one of/);
      await expect(store.list({ before: 'last tuesday' })).rejects.toThrow(/before must be an ISO 8601 time/);
      await expect(store.stats({ since: 'soon' })).rejects.toThrow(CallQueryError);
    });

    it('computes the business figures over a time range', async () => {
      const s = await store.stats({ since, until });
      expect(s).toEqual({
        since,
        until,
        calls: 5,
        byOutcome: { resolved: 2, transferred: 2, abandoned: 1, failed: 0 },
        containmentRate: 0.4,
        transfersByReason: { 'caller asked for a person': 2 },
        // L1, L2: set_variable, get_order_status, end_call; L3, L4: create_ticket (failed), transfer_call.
        toolCalls: 10,
        toolErrors: 2,
        toolErrorsByTool: { create_ticket: 2 },
        averageHandleTimeMs: (41_000 * 2 + 20_000 * 2 + 3000) / 5,
        // 640.3, 702.5, 655 twice, 900 twice -> sorted: 640.3 640.3 655 655 702.5 702.5 900 900
        medianTurnLatencyMs: (655 + 702.5) / 2,
      });
      const empty = await store.stats({ since: '2040-01-01T00:00:00Z', until: '2040-01-02T00:00:00Z' });
      expect(empty).toMatchObject({ calls: 0, containmentRate: 0, averageHandleTimeMs: 0, medianTurnLatencyMs: undefined, toolCalls: 0 });
    });
  });
});
