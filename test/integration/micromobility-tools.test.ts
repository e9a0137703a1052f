/**
 * Every micromobility tool through its real path (schema, caller identity, idempotent
 * transaction, SQL), on a real PostgreSQL (fresh scratch database) and on embedded PGlite,
 * with the demo fleet seeded at the real current time and a short geofence re-check (100 ms).
 *
 * Demo facts (src/storage/micromobility-seed.ts): Anna +12025550201 on scooter 4217, shown in
 * the Main Street red zone while its Market Square fix is in transit; Ben +12025550202 on
 * scooter 5308, lock not responding (transient); Chloe +12025550203 on bicycle 1190, lock not
 * responding (persistent); Dmytro +12025550204 on bicycle 2264 at the University; Emma
 * +12025550205 on scooter 6031 inside the Central Station entrance red zone; Farid
 * +12025550206 without an active trip; 7100 / 7101 free, 7199 in maintenance.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMicromobilityToolkit, MicromobilityConfigSchema, type MicromobilityToolkit } from '../../plugins/tools-micromobility/index.js';
import { moneyWords, UNAVAILABLE } from '../../plugins/tools-micromobility/tools.js';
import type { ToolContext, ToolDefinition, ToolResult } from '../../src/plugins/api.js';
import { silentLogger } from '../../src/log.js';
import { createPgliteDb } from '../../src/storage/pglite.js';
import { locationBackends } from '../../src/storage/test-backends.js';

const ANNA = '+12025550201';
const BEN = '+12025550202';
const CHLOE = '+12025550203';
const DMYTRO = '+12025550204';
const EMMA = '+12025550205';
const FARID = '+12025550206';
const STRANGER = '+12025550299';
const RECHECK_MS = 100;

function ctx(callerNumber: string, idempotencyKey: string = randomUUID(), signal: AbortSignal = new AbortController().signal): ToolContext {
  return { callId: `call-${idempotencyKey.slice(0, 8)}`, turn: 1, idempotencyKey, callerNumber, variables: new Map(), signal, log: silentLogger };
}

type Data = Record<string, unknown>;
type Fail = { ok: false; error: string; retryable?: boolean };

function tool(tk: MicromobilityToolkit, name: string): ToolDefinition<unknown> {
  const t = tk.tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name}`);
  return t as ToolDefinition<unknown>;
}

async function call(tk: MicromobilityToolkit, name: string, args: unknown, caller: string, key?: string): Promise<ToolResult> {
  return tool(tk, name).execute(args, ctx(caller, key));
}

async function ok(tk: MicromobilityToolkit, name: string, args: unknown, caller: string, key?: string): Promise<Data> {
  const r = await call(tk, name, args, caller, key);
  if (!r.ok) throw new Error(`${name} failed: ${r.error}`);
  return r.data as Data;
}

async function fail(tk: MicromobilityToolkit, name: string, args: unknown, caller: string, key?: string): Promise<Fail> {
  const r = await call(tk, name, args, caller, key);
  if (r.ok) throw new Error(`${name} unexpectedly succeeded: ${JSON.stringify(r.data)}`);
  return r;
}

/** Speakable: a sentence, no SQL, no stack trace. */
function expectSpeakable(error: string): void {
  expect(error).toMatch(/^[A-Z"0-9]/);
  expect(error).not.toMatch(/\bat .*\.(ts|js):\d+|SELECT|INSERT|UPDATE|violates|constraint|syntax error|undefined/);
}

const backends = locationBackends('sbmm');

describe.each(backends)('micromobility tools on $name', (backend) => {
  let tk: MicromobilityToolkit;
  let drop: () => Promise<void>;
  let extraRiders = 0;

  beforeAll(async () => {
    const opened = await backend.open();
    drop = opened.drop;
    tk = await createMicromobilityToolkit(
      MicromobilityConfigSchema.parse({ databaseUrl: opened.location, seedDemoData: true, geofenceRecheckMs: RECHECK_MS, connectRetrySeconds: 0 }),
      { log: silentLogger },
    );
  });
  afterAll(async () => {
    await tk?.close();
    await drop?.();
  });

  const one = async <R extends object>(sql: string, params: (string | number)[] = []): Promise<R> => (await tk.db.query<R>(sql, params)).rows[0]!;
  const count = async (sql: string, params: (string | number)[] = []): Promise<number> => (await one<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).n;
  const tripOfVehicle = (code: string): Promise<{ id: number; status: string; minutes: number | null; waived_minutes: number; waive_reason: string | null; charge_cents: number | null; ended_by: string | null; end_call_id: string | null }> =>
    one(
      `SELECT t.id, t.status, t.minutes, t.waived_minutes, t.waive_reason, t.charge_cents, t.ended_by, t.end_call_id
       FROM trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id WHERE v.code = $1 ORDER BY t.id DESC LIMIT 1`,
      [code],
    );
  const eventsOf = async (code: string): Promise<string[]> =>
    (await tk.db.query<{ kind: string }>('SELECT e.kind FROM fleet_events e JOIN fleet_vehicles v ON v.id = e.vehicle_id WHERE v.code = $1 ORDER BY e.id', [code])).rows.map((r) => r.kind);

  /** A fresh rider on a fresh vehicle, with fixes (minutes ago; `transitMs`: still on its way). */
  async function addRider(opts: {
    type: 'bicycle' | 'scooter';
    startedMinutesAgo: number;
    fixes: { lat: number; lon: number; minutesAgo: number; transitMs?: number }[];
    lockState?: string;
    lockFault?: string;
  }): Promise<{ phone: string; code: string }> {
    extraRiders++;
    const phone = `+1202555${String(3000 + extraRiders).padStart(4, '0')}`;
    const code = String(80000 + extraRiders);
    const now = Date.now();
    await tk.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: number }>("INSERT INTO customers (first_name, last_name) VALUES ('Test', 'Rider') RETURNING id");
      const customerId = rows[0]!.id;
      await tx.query('INSERT INTO customer_phones (phone, customer_id) VALUES ($1, $2)', [phone, customerId]);
      const v = await tx.query<{ id: number }>("INSERT INTO fleet_vehicles (code, type, status, lock_state, lock_fault) VALUES ($1, $2, 'in_trip', $3, $4) RETURNING id", [
        code,
        opts.type,
        opts.lockState ?? 'unlocked',
        opts.lockFault ?? 'none',
      ]);
      const vehicleId = v.rows[0]!.id;
      for (const f of opts.fixes) {
        await tk.store.addPosition(tx, {
          vehicleId,
          lat: f.lat,
          lon: f.lon,
          recordedAt: new Date(now - f.minutesAgo * 60_000),
          ...(f.transitMs !== undefined ? { visibleAt: null, transitMs: f.transitMs } : {}),
        });
      }
      await tx.query('INSERT INTO trips (customer_id, vehicle_id, started_at, unlock_fee_cents, per_minute_cents) VALUES ($1, $2, $3::timestamptz, 100, 25)', [
        customerId,
        vehicleId,
        new Date(now - opts.startedMinutesAgo * 60_000),
      ]);
    });
    return { phone, code };
  }

  describe('tool definitions', () => {
    it('are the seed’s actions plus two look-ups; writes are not interruptible; schemas are strict JSON schemas', () => {
      expect(tk.tools.map((t) => t.name)).toEqual(['get_active_trip', 'get_vehicle_status', 'end_trip', 'restart_transport', 'create_ticket']);
      const writes = ['end_trip', 'restart_transport', 'create_ticket'];
      for (const t of tk.tools) {
        expect(t.interruptible, t.name).toBe(!writes.includes(t.name));
        expect(t.description.length, t.name).toBeGreaterThan(40);
        expect(t.filler, t.name).toBeTruthy();
        const js = z.toJSONSchema(t.parameters, { io: 'input', unrepresentable: 'any' }) as { type?: string; additionalProperties?: unknown };
        expect(js.type, t.name).toBe('object');
        expect(js.additionalProperties, t.name).toBe(false);
      }
      // end_trip may wait for the re-check: its timeout leaves room for it.
      expect(tool(tk, 'end_trip').timeoutMs).toBeGreaterThan(RECHECK_MS + 5000);
      expect(tool(tk, 'get_active_trip').parameters.safeParse({ phone: BEN }).success).toBe(false);
    });

    it('leaves out excluded tools (a create_ticket from another plugin)', async () => {
      const db = await createPgliteDb();
      const other = await createMicromobilityToolkit(MicromobilityConfigSchema.parse({ exclude: ['create_ticket'], seedDemoData: false }), { log: silentLogger, db });
      try {
        expect(other.tools.map((t) => t.name)).not.toContain('create_ticket');
        expect(other.tools).toHaveLength(4);
      } finally {
        await other.close();
      }
    });
  });

  describe('get_active_trip', () => {
    it('finds the caller’s trip from the number they call from, however the network formatted it', async () => {
      for (const presented of [ANNA, '(202) 555-0201', '12025550201', '0012025550201']) {
        const d = await ok(tk, 'get_active_trip', {}, presented);
        expect(d).toMatchObject({ found: true, vehicle_code: '4217', vehicle_type: 'scooter', lock_state: 'unlocked', other_active_trips: 0 });
        expect(d.minutes_so_far).toBeGreaterThanOrEqual(18);
        expect(d.charge_so_far).toMatch(/^\d+ dollars and \d+ cents$|^\d+ dollars$/);
      }
      expect(await ok(tk, 'get_active_trip', {}, CHLOE)).toMatchObject({ found: true, vehicle_code: '1190', vehicle_type: 'bicycle', lock_state: 'not_responding' });
    });

    it('says found: false for a rider without a trip (with the last one), an unknown or a withheld number', async () => {
      const farid = await ok(tk, 'get_active_trip', {}, FARID);
      expect(farid).toMatchObject({ found: false, reason: 'You have no active trip right now.', last_trip: { vehicle_code: '3350', charge: '2 dollars and 70 cents' } });
      expect(await ok(tk, 'get_active_trip', {}, STRANGER)).toMatchObject({ found: false, reason: expect.stringMatching(/could not find a rider account/) as string });
      expect(await ok(tk, 'get_active_trip', {}, 'anonymous')).toMatchObject({ found: false, reason: expect.stringMatching(/withheld/) as string });
      expect(await ok(tk, 'get_active_trip', {}, '')).toMatchObject({ found: false });
    });
  });

  describe('get_vehicle_status', () => {
    it('shows where the CRM sees the caller’s vehicle and where to move it', async () => {
      const d = await ok(tk, 'get_vehicle_status', {}, ANNA);
      expect(d).toMatchObject({ vehicle_code: '4217', vehicle_type: 'scooter', on_your_trip: true, zone: 'red', zone_name: 'Main Street pedestrian zone', move_to: 'Market Square' });
      expect(d.move_distance_m).toBeGreaterThan(40);
      expect(d.position_age_seconds).toBeGreaterThanOrEqual(6 * 60);
      // Asking does not release the fix in transit: only a locate request (end_trip) does.
      expect((await ok(tk, 'get_vehicle_status', { vehicle: 'four two one seven' }, ANNA)).zone).toBe('red');
      expect(await ok(tk, 'get_vehicle_status', {}, BEN)).toMatchObject({ vehicle_code: '5308', lock_state: 'not_responding', zone: 'allowed', zone_name: 'Market Square' });
      expect(await ok(tk, 'get_vehicle_status', { vehicle: 2264 }, DMYTRO)).toMatchObject({ zone: 'allowed', zone_name: 'University Campus' });
    });

    it('tells anyone the public status of another vehicle, but never its position', async () => {
      const d = await ok(tk, 'get_vehicle_status', { vehicle: '5308' }, ANNA);
      expect(d).toMatchObject({ vehicle_code: '5308', status: 'in_trip', on_your_trip: false });
      expect(d).not.toHaveProperty('zone');
      expect(d).not.toHaveProperty('move_to');
      expect(await ok(tk, 'get_vehicle_status', { vehicle: '7101' }, 'anonymous')).toMatchObject({ vehicle_code: '7101', status: 'available', battery_percent: 93 });
    });

    it('reports unknown vehicles and malformed numbers in words; SQL in a number never reaches the database', async () => {
      const unknown = await fail(tk, 'get_vehicle_status', { vehicle: '9999' }, ANNA);
      expect(unknown.error).toBe('I could not find a vehicle with the number 9 9 9 9. The number is printed under the QR code.');
      for (const bad of ["1'; DROP TABLE trips;--", '42', 'abcd', 12]) {
        const r = await fail(tk, 'get_vehicle_status', { vehicle: bad }, ANNA);
        expect(r.error).toMatch(/^I could not use those details: vehicle must be the 4 to 6 digit number/);
      }
      expect(await count('trips')).toBeGreaterThan(0);
      expect((await fail(tk, 'get_vehicle_status', {}, FARID)).error).toMatch(/^You have no active trip right now\. Which vehicle/);
      expectSpeakable((await fail(tk, 'get_vehicle_status', {}, STRANGER)).error);
    });
  });

  describe('end_trip', () => {
    it('ends a trip parked in a parking area at once, without waiting or waiving', async () => {
      const before = await tripOfVehicle('2264');
      const d = await ok(tk, 'end_trip', {}, DMYTRO);
      expect(d).toMatchObject({ ended: true, rechecked: false, waived_minutes: 0, false_red_zone: false, zone_name: 'University Campus', vehicle_code: '2264' });
      const row = await tripOfVehicle('2264');
      expect(row).toMatchObject({ id: before.id, status: 'ended', waived_minutes: 0, waive_reason: null, ended_by: 'agent' });
      expect(row.minutes).toBe(d.minutes);
      // Bicycle: 50 cents + 10 cents a minute.
      expect(row.charge_cents).toBe(50 + 10 * row.minutes!);
      expect(d.charge).toBe(moneyWords(row.charge_cents!, 'USD'));
      expect(await one<{ status: string; lock_state: string }>("SELECT status, lock_state FROM fleet_vehicles WHERE code = '2264'")).toEqual({ status: 'available', lock_state: 'locked' });
      expect(await eventsOf('2264')).toEqual(['trip_ended']);
      // Nothing left to end.
      expect((await fail(tk, 'end_trip', {}, DMYTRO)).error).toBe('You have no active trip right now.');
    });

    it('false red zone: asks the vehicle for a fresh fix, re-checks, ends the trip and waives the extra minutes', async () => {
      const d = await ok(tk, 'end_trip', {}, ANNA);
      expect(d).toMatchObject({ ended: true, rechecked: true, false_red_zone: true, zone_name: 'Market Square', vehicle_code: '4217' });
      const row = await tripOfVehicle('4217');
      expect(row.status).toBe('ended');
      // Started 18 minutes before seeding, parked (the delayed fix) 15 minutes in: the rest is waived.
      expect(row.minutes).toBeGreaterThanOrEqual(19);
      expect(row.waived_minutes).toBe(row.minutes! - 15);
      expect(row.waive_reason).toMatch(/geofence data delayed/);
      expect(row.charge_cents).toBe(100 + 25 * 15);
      expect(d).toMatchObject({ minutes: row.minutes, billed_minutes: 15, waived_minutes: row.waived_minutes, charge: '4 dollars and 75 cents' });
      expect(await eventsOf('4217')).toEqual(['geofence_check', 'locate_requested', 'geofence_check', 'trip_ended', 'minutes_waived']);
      const checks = (await tk.db.query<{ detail: { verdict: string } }>("SELECT e.detail FROM fleet_events e JOIN fleet_vehicles v ON v.id = e.vehicle_id WHERE v.code = '4217' AND e.kind = 'geofence_check' ORDER BY e.id")).rows;
      expect(checks.map((c) => c.detail.verdict)).toEqual(['red', 'allowed']);
    });

    it('a real red zone: re-checks, does not end the trip, and says where to move the vehicle', async () => {
      const d = await ok(tk, 'end_trip', {}, EMMA);
      expect(d).toMatchObject({ ended: false, reason: 'red_zone', rechecked: true, zone: 'red', zone_name: 'Central Station entrance', move_to: 'Central Station' });
      expect(d.advice).toMatch(/^Your scooter is still in the Central Station entrance no-parking zone, so the trip cannot end there\. Please move it out of that zone, about \d+ meters/);
      expect((await tripOfVehicle('6031')).status).toBe('active');
      expect(await eventsOf('6031')).toEqual(['geofence_check', 'locate_requested', 'geofence_check', 'end_refused']);
    });

    it('a correction that arrives after the re-check does not end the trip; once it is in, the next attempt does (no waiver needed)', async () => {
      const late = await addRider({
        type: 'scooter',
        startedMinutesAgo: 20,
        fixes: [
          { lat: 50.4512, lon: 30.5232, minutesAgo: 5 },
          { lat: 50.4502, lon: 30.5235, minutesAgo: 2, transitMs: 600_000 },
        ],
      });
      expect(await ok(tk, 'end_trip', {}, late.phone)).toMatchObject({ ended: false, reason: 'red_zone', rechecked: true, move_to: 'Market Square' });
      expect((await tripOfVehicle(late.code)).status).toBe('active');
      // The vehicle's fix finally arrives.
      await tk.db.query('UPDATE fleet_positions SET visible_at = now() - interval \'1 second\' WHERE transit_ms IS NOT NULL AND vehicle_id = (SELECT id FROM fleet_vehicles WHERE code = $1)', [late.code]);
      const d = await ok(tk, 'end_trip', { vehicle: late.code }, late.phone);
      expect(d).toMatchObject({ ended: true, rechecked: false, waived_minutes: 0 });
    });

    it('outside every parking area: refused with the nearest one', async () => {
      const lost = await addRider({ type: 'bicycle', startedMinutesAgo: 5, fixes: [{ lat: 50.47, lon: 30.54, minutesAgo: 1 }] });
      const d = await ok(tk, 'end_trip', {}, lost.phone);
      expect(d).toMatchObject({ ended: false, reason: 'outside_parking', zone: 'outside', move_to: 'Riverside Park' });
      expect(d.advice).toMatch(/outside every parking area.*Please move it to Riverside Park, about \d+ meters away/);
    });

    it('refuses while the lock is not responding (no re-check wait), and ends after a restart fixed it', async () => {
      const refused = await ok(tk, 'end_trip', {}, BEN);
      expect(refused).toMatchObject({ ended: false, reason: 'lock_not_responding', rechecked: false });
      expect(refused.advice).toMatch(/lock of your scooter is not responding/);
      expect((await tripOfVehicle('5308')).status).toBe('active');
      expect(await ok(tk, 'restart_transport', { vehicle: '5308' }, BEN)).toMatchObject({ restarted: true, lock_responding: true, lock_state: 'unlocked', on_your_trip: true });
      expect(await ok(tk, 'end_trip', {}, BEN)).toMatchObject({ ended: true, zone_name: 'Market Square' });
      expect(await eventsOf('5308')).toEqual(['end_refused', 'restart', 'trip_ended']);
    });

    it('is idempotent per tool call: a retry gets the stored answer without waiting or acting again', async () => {
      const r = await addRider({
        type: 'scooter',
        startedMinutesAgo: 10,
        fixes: [
          { lat: 50.4512, lon: 30.5232, minutesAgo: 4 },
          { lat: 50.4502, lon: 30.5235, minutesAgo: 3, transitMs: 0 },
        ],
      });
      const key = randomUUID();
      const first = await ok(tk, 'end_trip', {}, r.phone, key);
      expect(first).toMatchObject({ ended: true, false_red_zone: true });
      const again = await ok(tk, 'end_trip', {}, r.phone, key);
      expect(again).toEqual(first);
      expect((await eventsOf(r.code)).filter((k) => k === 'trip_ended')).toHaveLength(1);
      // The same key with other arguments is a caller bug: refused, nothing done.
      expectSpeakable((await fail(tk, 'end_trip', { vehicle: r.code }, r.phone, key)).error);
    });

    it('two attempts at once end the trip exactly once', async () => {
      const r = await addRider({ type: 'bicycle', startedMinutesAgo: 7, fixes: [{ lat: 50.4581, lon: 30.5291, minutesAgo: 1 }] });
      const results = await Promise.all([call(tk, 'end_trip', {}, r.phone), call(tk, 'end_trip', {}, r.phone)]);
      const ended = results.filter((x) => x.ok && (x.data as Data).ended === true);
      expect(ended).toHaveLength(1);
      const other = results.find((x) => x !== ended[0])!;
      expect(other.ok).toBe(false);
      expect((other as Fail).error).toMatch(/already ended|no active trip/);
      expect(await count("trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id WHERE v.code = $1 AND t.status = 'ended'", [r.code])).toBe(1);
    });

    it('only ends the caller’s own trip: another vehicle, an unknown one, or no account', async () => {
      expect((await fail(tk, 'end_trip', { vehicle: '7100' }, CHLOE)).error).toBe('Vehicle 7 1 0 0 is not on your current trip. Your trip is on bicycle 1 1 9 0.');
      expect((await fail(tk, 'end_trip', { vehicle: '9999' }, CHLOE)).error).toMatch(/^I could not find a vehicle with the number 9 9 9 9/);
      expect((await fail(tk, 'end_trip', {}, STRANGER)).error).toBe('I could not find a rider account for the number you are calling from.');
      expect((await fail(tk, 'end_trip', {}, 'anonymous')).error).toMatch(/withheld/);
      expect((await tripOfVehicle('1190')).status).toBe('active');
      expect((await tripOfVehicle('5308')).status).toBe('ended');
    });

    it('asks which vehicle when the rider has two trips', async () => {
      const r = await addRider({ type: 'bicycle', startedMinutesAgo: 3, fixes: [{ lat: 50.4581, lon: 30.5291, minutesAgo: 1 }] });
      await tk.db.query(
        `WITH v AS (INSERT INTO fleet_vehicles (code, type, status, lock_state) VALUES ('90001', 'scooter', 'in_trip', 'unlocked') RETURNING id)
         INSERT INTO trips (customer_id, vehicle_id, started_at, per_minute_cents)
         SELECT (SELECT customer_id FROM customer_phones WHERE phone = $1), v.id, now() - interval '2 minutes', 25 FROM v`,
        [r.phone],
      );
      expect(await ok(tk, 'get_active_trip', {}, r.phone)).toMatchObject({ found: true, other_active_trips: 1 });
      expect((await fail(tk, 'end_trip', {}, r.phone)).error).toMatch(/^You have 2 active trips, on (bicycle|scooter) .* and .*\. Which vehicle is it about\?$/);
      expect(await ok(tk, 'end_trip', { vehicle: r.code }, r.phone)).toMatchObject({ ended: true, vehicle_code: r.code });
    });

    it('stops waiting when the call ends, and changes nothing', async () => {
      const slow = await createMicromobilityToolkit(MicromobilityConfigSchema.parse({ seedDemoData: false, migrate: false, geofenceRecheckMs: 60_000 }), {
        log: silentLogger,
        db: { ...tk.db, close: async () => {} },
      });
      const r = await addRider({ type: 'scooter', startedMinutesAgo: 4, fixes: [{ lat: 50.4512, lon: 30.5232, minutesAgo: 1 }] });
      const ac = new AbortController();
      const pending = tool(slow, 'end_trip').execute({}, ctx(r.phone, randomUUID(), ac.signal));
      // Abort once the first check has been logged (the tool is then waiting).
      for (let i = 0; i < 500 && !(await eventsOf(r.code)).includes('locate_requested'); i++) await new Promise((res) => setTimeout(res, 20));
      ac.abort(new DOMException('call ended', 'AbortError'));
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      expect((await tripOfVehicle(r.code)).status).toBe('active');
      expect(await eventsOf(r.code)).toEqual(['geofence_check', 'locate_requested']);
      await slow.close();
    });
  });

  describe('restart_transport', () => {
    it('a persistent fault survives the restart: lock_responding false, and the trip still cannot end', async () => {
      const d = await ok(tk, 'restart_transport', {}, CHLOE);
      expect(d).toMatchObject({ vehicle_code: '1190', vehicle_type: 'bicycle', restarted: true, lock_responding: false, lock_state: 'not_responding', on_your_trip: true });
      expect(d.advice).toBe('The bicycle restarted, but its lock still does not respond.');
      expect(await ok(tk, 'end_trip', {}, CHLOE)).toMatchObject({ ended: false, reason: 'lock_not_responding' });
    });

    it('restarts a free vehicle the caller stands at, up to the limit in the window', async () => {
      for (let i = 1; i <= 3; i++) expect(await ok(tk, 'restart_transport', { vehicle: 'seven one zero one' }, FARID)).toMatchObject({ vehicle_code: '7101', lock_responding: true, lock_state: 'locked', on_your_trip: false });
      const limited = await fail(tk, 'restart_transport', { vehicle: '7101' }, FARID);
      expect(limited.error).toBe('Vehicle 7 1 0 1 has already been restarted 3 times in the last few minutes; another restart will not help.');
      expect(await count("fleet_events e JOIN fleet_vehicles v ON v.id = e.vehicle_id WHERE v.code = '7101' AND e.kind = 'restart'")).toBe(3);
    });

    it('is idempotent per tool call', async () => {
      const key = randomUUID();
      const a = await ok(tk, 'restart_transport', { vehicle: '7100' }, FARID, key);
      const b = await ok(tk, 'restart_transport', { vehicle: '7 1 0 0' }, FARID, key);
      expect(b).toEqual(a);
      expect(await count("fleet_events e JOIN fleet_vehicles v ON v.id = e.vehicle_id WHERE v.code = '7100' AND e.kind = 'restart'")).toBe(1);
    });

    it('refuses another rider’s vehicle, a vehicle in maintenance, unknown vehicles and callers without an account', async () => {
      expect((await fail(tk, 'restart_transport', { vehicle: '6031' }, FARID)).error).toBe("Vehicle 6 0 3 1 is in someone else's trip, so I cannot restart it.");
      expect((await fail(tk, 'restart_transport', { vehicle: '7199' }, FARID)).error).toBe('Vehicle 7 1 9 9 is out of service, so it cannot be restarted remotely.');
      expect((await fail(tk, 'restart_transport', { vehicle: '99999' }, FARID)).error).toMatch(/^I could not find a vehicle with the number 9 9 9 9 9/);
      expect((await fail(tk, 'restart_transport', {}, FARID)).error).toMatch(/^You have no active trip right now\. Which vehicle should I restart/);
      expect((await fail(tk, 'restart_transport', { vehicle: '7100' }, STRANGER)).error).toMatch(/could not find a rider account/);
      expect((await fail(tk, 'restart_transport', { vehicle: "7100'); DELETE FROM trips;--" }, FARID)).error).toMatch(/^I could not use those details: vehicle/);
      expect(await eventsOf('6031')).not.toContain('restart');
    });
  });

  describe('create_ticket', () => {
    it('files a ticket in the CRM’s table, linked to the caller’s trip and vehicle', async () => {
      const d = await ok(tk, 'create_ticket', { summary: 'Bicycle 1190 lock does not respond after a remote restart.', topic: 'lock' }, CHLOE);
      expect(d).toMatchObject({ topic: 'lock', status: 'open', vehicle_code: '1190' });
      const row = await one<{ category: string; summary: string; customer_id: number | null; caller_number: string | null; trip_id: number; topic: string; code: string }>(
        `SELECT t.category, t.summary, t.customer_id, t.caller_number, tt.trip_id, tt.topic, v.code
         FROM tickets t JOIN trip_tickets tt ON tt.ticket_id = t.id JOIN fleet_vehicles v ON v.id = tt.vehicle_id WHERE t.id = $1`,
        [d.ticket_id as number],
      );
      expect(row).toMatchObject({ category: 'vehicle', topic: 'lock', code: '1190', caller_number: null });
      expect(row.trip_id).toBe((await tripOfVehicle('1190')).id);
      expect(d.linked_trip_id).toBe(row.trip_id);
    });

    it('keeps quotes and SQL in a summary as plain text, collapses whitespace, refuses control characters', async () => {
      const summary = "Rider says: '; DROP TABLE trips; -- the app's map   froze";
      const d = await ok(tk, 'create_ticket', { summary, topic: 'app' }, FARID);
      expect((await one<{ summary: string; category: string }>('SELECT summary, category FROM tickets WHERE id = $1', [d.ticket_id as number])).summary).toBe(
        "Rider says: '; DROP TABLE trips; -- the app's map froze",
      );
      // Farid has no active trip: the ticket is about his last one.
      expect(d.linked_trip_id).toBe((await tripOfVehicle('3350')).id);
      expect(await count('trips')).toBeGreaterThan(0);
      expect((await fail(tk, 'create_ticket', { summary: 'bad\u0007bell', topic: 'app' }, FARID)).error).toMatch(/control characters/);
      expect((await fail(tk, 'create_ticket', { summary: 'Something', topic: 'refund' }, FARID)).error).toMatch(/^I could not use those details: topic/);
    });

    it('unknown callers get a ticket with their number for a call back; withheld ones without', async () => {
      const d = await ok(tk, 'create_ticket', { summary: 'Caller cannot unlock scooter 7101.', topic: 'lock', vehicle: '7101' }, STRANGER);
      expect(await one('SELECT customer_id, caller_number FROM tickets WHERE id = $1', [d.ticket_id as number])).toEqual({ customer_id: null, caller_number: STRANGER });
      expect(d).toMatchObject({ linked_trip_id: null, vehicle_code: '7101' });
      const w = await ok(tk, 'create_ticket', { summary: 'Withheld caller with a frozen app.', topic: 'app' }, 'anonymous');
      expect(await one('SELECT customer_id, caller_number FROM tickets WHERE id = $1', [w.ticket_id as number])).toEqual({ customer_id: null, caller_number: null });
    });

    it('is idempotent per tool call', async () => {
      const key = randomUUID();
      const before = await count('tickets');
      const a = await ok(tk, 'create_ticket', { summary: 'Charge looks too high for trip.', topic: 'trip_end' }, BEN, key);
      const b = await ok(tk, 'create_ticket', { summary: 'Charge looks too high for trip.', topic: 'trip_end' }, BEN, key);
      expect(b).toEqual(a);
      expect(await count('tickets')).toBe(before + 1);
    });
  });

  describe('a database that is down', () => {
    it('makes every tool say the trip system is not answering, retryable', async () => {
      const db = await createPgliteDb();
      const down = await createMicromobilityToolkit(MicromobilityConfigSchema.parse({ seedDemoData: true, geofenceRecheckMs: 0 }), { log: silentLogger, db });
      await db.close();
      for (const [name, args] of [
        ['get_active_trip', {}],
        ['get_vehicle_status', { vehicle: '4217' }],
        ['end_trip', {}],
        ['restart_transport', { vehicle: '4217' }],
        ['create_ticket', { summary: 'Lock is stuck.', topic: 'lock' }],
      ] as const) {
        const r = await tool(down, name).execute(args, ctx(ANNA));
        expect(r, name).toEqual({ ok: false, error: UNAVAILABLE, retryable: true });
      }
      await down.close();
    });
  });
});
