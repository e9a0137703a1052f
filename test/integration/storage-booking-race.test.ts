/**
 * Booking races on a real PostgreSQL (separate pooled connections, truly concurrent
 * transactions) and on PGlite (one backend, serialised): however many callers go for one slot
 * at once, exactly as many as there are bays get it, the rest are told it is taken, and the
 * database never holds an overlap. A retried tool call racing its original acts once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCrmToolkit, CrmConfigSchema, type CrmToolkit } from '../../plugins/tools-crm/index.js';
import type { ToolContext, ToolDefinition, ToolResult } from '../../src/plugins/api.js';
import { silentLogger } from '../../src/log.js';
import type { Db } from '../../src/storage/db.js';
import { dbBackends } from '../../src/storage/test-backends.js';

const NOW = new Date('2030-01-07T14:00:00Z');
const N = 12;
/** Fictional numbers +1 202 555 0120 … 0131, one customer each. */
const CALLERS = Array.from({ length: N }, (_, i) => `+1202555${String(120 + i).padStart(4, '0')}`);

function ctx(callerNumber: string, idempotencyKey: string = randomUUID()): ToolContext {
  return { callId: `call-${callerNumber}`, turn: 3, idempotencyKey, callerNumber, variables: new Map(), signal: new AbortController().signal, log: silentLogger };
}

function exec(tk: CrmToolkit, name: string, args: unknown, c: ToolContext): Promise<ToolResult> {
  return (tk.tools.find((t) => t.name === name) as ToolDefinition<unknown>).execute(args, c);
}

const backends = dbBackends('sbrace', { max: 16 });

describe.each(backends)('booking races on $name', (backend) => {
  let db: Db;
  let drop: () => Promise<void>;
  let one: CrmToolkit; // one bay
  let three: CrmToolkit; // three bays, same database

  const toolkit = (bays: number) =>
    createCrmToolkit(
      CrmConfigSchema.parse({ seedDemoData: true, timezone: 'America/New_York', connectRetrySeconds: 0, businessHours: { bays } }),
      { log: silentLogger, clock: () => NOW, db: { ...db, close: async () => {} } },
    );

  beforeAll(async () => {
    ({ db, drop } = await backend.open());
    one = await toolkit(1);
    three = await toolkit(3);
    for (const [i, phone] of CALLERS.entries()) {
      const c = await db.query<{ id: number }>('INSERT INTO customers (first_name, last_name) VALUES ($1, $2) RETURNING id', [`Racer${i}`, 'Test']);
      await db.query('INSERT INTO customer_phones (phone, customer_id) VALUES ($1, $2)', [phone, c.rows[0]!.id]);
    }
  });
  afterAll(async () => {
    await one?.close();
    await three?.close();
    await drop?.();
  });

  const bookedAt = async (localStart: string): Promise<{ customer_id: number; bay: number }[]> =>
    (
      await db.query<{ customer_id: number; bay: number }>(
        "SELECT customer_id, bay FROM appointments WHERE status = 'booked' AND starts_at = ($1::timestamp AT TIME ZONE 'America/New_York') ORDER BY bay",
        [localStart],
      )
    ).rows;

  const noOverlaps = async (): Promise<void> => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM appointments a JOIN appointments b ON a.id < b.id AND a.bay = b.bay
       WHERE a.status = 'booked' AND b.status = 'booked' AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)`,
    );
    expect(rows[0]!.n).toBe(0);
  };

  it(`${N} callers book the same slot at once: exactly one gets it`, async () => {
    const results = await Promise.all(CALLERS.map((phone) => exec(one, 'book_appointment', { date: '2030-01-14', time: '10:00', service: 'oil change' }, ctx(phone))));
    const won = results.filter((r) => r.ok);
    const lost = results.filter((r): r is { ok: false; error: string } => !r.ok);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(N - 1);
    for (const l of lost) expect(l.error).toMatch(/^Sorry, 10:00 on 2030-01-14 is not available any more\./);
    expect(await bookedAt('2030-01-14 10:00')).toHaveLength(1);
    await noOverlaps();
  });

  it('overlapping requests of different lengths and start times: one wins', async () => {
    // 10:00-11:00 inspection, 10:30-11:00 oil change, 09:30-11:00 brake service all overlap.
    const reqs = [
      { date: '2030-01-15', time: '10:00', service: 'inspection' },
      { date: '2030-01-15', time: '10:30', service: 'oil change' },
      { date: '2030-01-15', time: '09:30', service: 'brake service' },
    ];
    const results = await Promise.all(reqs.flatMap((args, i) => [exec(one, 'book_appointment', args, ctx(CALLERS[i]!)), exec(one, 'book_appointment', args, ctx(CALLERS[i + 3]!))]));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    await noOverlaps();
  });

  it(`with three bays, ${N} callers for one slot: exactly three get it, one per bay`, async () => {
    const results = await Promise.all(CALLERS.map((phone) => exec(three, 'book_appointment', { date: '2030-01-16', time: '11:00', service: 'tire rotation' }, ctx(phone))));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect((await bookedAt('2030-01-16 11:00')).map((r) => r.bay)).toEqual([1, 2, 3]);
    const slots = await exec(three, 'get_available_slots', { date: '2030-01-16' }, ctx(CALLERS[0]!));
    expect(slots.ok && (slots.data as { free_start_times: string[] }).free_start_times).not.toContain('11:00');
    await noOverlaps();
  });

  it('two reschedules and a booking race for one free slot: one wins, the losers keep what they had', async () => {
    const a = await exec(one, 'book_appointment', { date: '2030-01-17', time: '08:00', service: 'oil change' }, ctx(CALLERS[0]!));
    const b = await exec(one, 'book_appointment', { date: '2030-01-17', time: '08:30', service: 'oil change' }, ctx(CALLERS[1]!));
    expect(a.ok && b.ok).toBe(true);
    const idA = (a as { data: { appointment_id: number } }).data.appointment_id;
    const idB = (b as { data: { appointment_id: number } }).data.appointment_id;
    const results = await Promise.all([
      exec(one, 'reschedule_appointment', { appointment_id: idA, date: '2030-01-17', time: '15:00' }, ctx(CALLERS[0]!)),
      exec(one, 'reschedule_appointment', { appointment_id: idB, date: '2030-01-17', time: '15:00' }, ctx(CALLERS[1]!)),
      exec(one, 'book_appointment', { date: '2030-01-17', time: '15:00', service: 'oil change' }, ctx(CALLERS[2]!)),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(await bookedAt('2030-01-17 15:00')).toHaveLength(1);
    const kept = await bookedAt('2030-01-17 08:00');
    const kept2 = await bookedAt('2030-01-17 08:30');
    // Whoever lost a reschedule still has the original slot.
    expect(kept.length + kept2.length).toBe(results[0]?.ok || results[1]?.ok ? 1 : 2);
    await noOverlaps();
  });

  it('a retry racing its original call (same idempotency key) books once and both get the same answer', async () => {
    const key = randomUUID();
    const args = { date: '2030-01-18', time: '09:00', service: 'diagnostics' };
    const results = await Promise.all(Array.from({ length: 5 }, () => exec(one, 'book_appointment', args, ctx(CALLERS[5]!, key))));
    expect(results.every((r) => r.ok)).toBe(true);
    const ids = new Set(results.map((r) => (r as { data: { appointment_id: number } }).data.appointment_id));
    expect(ids.size).toBe(1);
    for (const r of results) expect(r).toEqual(results[0]);
    expect(await bookedAt('2030-01-18 09:00')).toHaveLength(1);
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tool_idempotency WHERE key = $1', [key])).rows[0]!.n).toBe(1);
  });
});
