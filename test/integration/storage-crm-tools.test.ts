/**
 * Every CRM tool through its real path (schema, policy, idempotent transaction, SQL), on a
 * real PostgreSQL (fresh scratch database) and on embedded PGlite, with the demo data and a
 * fixed clock: Monday 2030-01-07, 09:00 in America/New_York (14:00 UTC).
 *
 * Demo facts used below: Maria Garcia (+12025550143, +12025550144; Toyota Camry and Honda
 * CR-V; order 10234 processing, 10235 delivered; oil change Tue 01-08 09:00), Sean O'Brien
 * (+12025550178; order 20417 shipped, 20418 placed; inspection Wed 01-09 13:00-14:00), James
 * Smith (+12025550111; 30552 out for delivery, 30553 cancelled), Jamie Smithers
 * (+12025550112), Olena Kovalenko (+380501234567; tire rotation Thu 01-10 10:00).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCrmToolkit, CrmConfigSchema, type CrmToolkit } from '../../plugins/tools-crm/index.js';
import { UNAVAILABLE } from '../../plugins/tools-crm/tools.js';
import type { ToolContext, ToolDefinition, ToolResult } from '../../src/plugins/api.js';
import { silentLogger } from '../../src/log.js';
import { createPgDb } from '../../src/storage/pg.js';
import { createPgliteDb } from '../../src/storage/pglite.js';
import { locationBackends } from '../../src/storage/test-backends.js';

const NOW = new Date('2030-01-07T14:00:00Z');
const MARIA = '+12025550143';
const SEAN = '+12025550178';
const JAMES = '+12025550111';
const OLENA = '+380501234567';
const STAFF = '+12025550100';
const STRANGER = '+12025550199';

const baseConfig = {
  seedDemoData: true,
  timezone: 'America/New_York',
  staffNumbers: [STAFF],
  connectRetrySeconds: 0,
};

function ctx(callerNumber: string, idempotencyKey: string = randomUUID()): ToolContext {
  return { callId: 'call-1', turn: 1, idempotencyKey, callerNumber, variables: new Map(), signal: new AbortController().signal, log: silentLogger };
}

interface Appt {
  appointment_id: number;
  service: string;
  date: string;
  weekday: string;
  time: string;
  end_time: string;
  vehicle: string | null;
  status: string;
}

/** What the tests read from tool results (JSON for the model); a wrong claim fails at run time. */
interface Data {
  [key: string]: unknown;
  vehicles: { description: string }[];
  customers: { customer_id: number; first_name: string; last_name: string }[];
  free_start_times: string[];
  appointments: Appt[];
  appointment_id: number;
  ticket_id: number;
  count: number;
  delivery_address: string;
  linked_to_account: boolean;
}
type Fail = { ok: false; error: string; retryable?: boolean };

const anyNumber = expect.any(Number) as number;
const anyString = expect.any(String) as string;

function tool(tk: CrmToolkit, name: string): ToolDefinition<unknown> {
  const t = tk.tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name}`);
  return t as ToolDefinition<unknown>;
}

async function call(tk: CrmToolkit, name: string, args: unknown, caller: string, key?: string): Promise<ToolResult> {
  return tool(tk, name).execute(args, ctx(caller, key));
}

async function ok(tk: CrmToolkit, name: string, args: unknown, caller: string, key?: string): Promise<Data> {
  const r = await call(tk, name, args, caller, key);
  if (!r.ok) throw new Error(`${name} failed: ${r.error}`);
  return r.data as Data;
}

async function fail(tk: CrmToolkit, name: string, args: unknown, caller: string, key?: string): Promise<Fail> {
  const r = await call(tk, name, args, caller, key);
  if (r.ok) throw new Error(`${name} unexpectedly succeeded: ${JSON.stringify(r.data)}`);
  return r;
}

function accepts(tk: CrmToolkit, name: string, args: unknown): boolean {
  return tool(tk, name).parameters.safeParse(args).success;
}

/** Speakable: a sentence, no SQL, no stack trace. */
function expectSpeakable(error: string): void {
  expect(error).toMatch(/^[A-Z"0-9]/);
  expect(error).not.toMatch(/\bat .*\.(ts|js):\d+|SELECT|INSERT|UPDATE|violates|constraint|syntax error|undefined/);
}

const backends = locationBackends('sbcrm');

describe.each(backends)('CRM tools on $name', (backend) => {
  let tk: CrmToolkit;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const opened = await backend.open();
    drop = opened.drop;
    tk = await createCrmToolkit(CrmConfigSchema.parse({ ...baseConfig, databaseUrl: opened.location }), { log: silentLogger, clock: () => NOW });
  });
  afterAll(async () => {
    await tk?.close();
    await drop?.();
  });

  const count = async (sql: string, params: (string | number)[] = []): Promise<number> =>
    (await tk.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]!.n;

  describe('tool definitions', () => {
    it('expose the eleven tools, writes not interruptible, every schema representable as JSON schema', () => {
      expect(tk.tools.map((t) => t.name)).toEqual([
        'lookup_customer',
        'search_customers_by_name',
        'get_order_status',
        'change_address',
        'cancel_order',
        'get_available_slots',
        'book_appointment',
        'get_upcoming_appointments',
        'cancel_appointment',
        'reschedule_appointment',
        'create_ticket',
      ]);
      const writes = ['change_address', 'cancel_order', 'book_appointment', 'cancel_appointment', 'reschedule_appointment', 'create_ticket'];
      for (const t of tk.tools) {
        expect(t.interruptible, t.name).toBe(!writes.includes(t.name));
        expect(t.description.length, t.name).toBeGreaterThan(30);
        const js = z.toJSONSchema(t.parameters, { io: 'input', unrepresentable: 'any' }) as { type?: string; additionalProperties?: unknown };
        expect(js.type, t.name).toBe('object');
        expect(js.additionalProperties, t.name).toBe(false);
      }
      const book = z.toJSONSchema(tool(tk, 'book_appointment').parameters, { io: 'input' }) as unknown as { properties: { service: { enum: string[] } }; required: string[] };
      expect(book.properties.service.enum).toEqual(['oil change', 'tire rotation', 'inspection', 'brake service', 'diagnostics']);
      expect(book.required.sort()).toEqual(['date', 'service', 'time']);
    });
  });

  describe('lookup_customer', () => {
    it("finds the caller by their own number, however the network formatted it", async () => {
      for (const presented of [MARIA, '(202) 555-0143', '12025550143', '0012025550143', '+12025550144']) {
        const data = await ok(tk, 'lookup_customer', {}, presented);
        expect(data).toMatchObject({ found: true, first_name: 'Maria', last_name: 'Garcia', language: 'en-US' });
      }
      const data = await ok(tk, 'lookup_customer', { phone: '202-555-0143' }, MARIA);
      expect(data.vehicles.map((v) => v.description)).toEqual(['2019 Toyota Camry, plate 7ABC123', '2022 Honda CR-V, plate 8XYZ789']);
      expect(data.open_orders).toEqual([{ order_id: 10234, status: 'processing', expected_on: '2030-01-11' }]);
      expect(data.upcoming_appointments as Appt[]).toEqual([
        expect.objectContaining({ service: 'oil change', date: '2030-01-08', weekday: 'Tuesday', time: '09:00', end_time: '09:30', vehicle: '2019 Toyota Camry, plate 7ABC123' }),
      ]);
      expect(data).not.toHaveProperty('phones');
    });

    it('refuses another customer’s number unless the caller is staff', async () => {
      const refused = await fail(tk, 'lookup_customer', { phone: SEAN }, MARIA);
      expect(refused.error).toMatch(/only look up the account of the number you are calling from/);
      expect(refused.error).not.toMatch(/Sean|O'Brien/);
      const staff = await ok(tk, 'lookup_customer', { phone: '202 555 0178' }, STAFF);
      expect(staff).toMatchObject({ found: true, first_name: 'Sean', last_name: "O'Brien", phones: [SEAN] });
    });

    it('reports unknown, withheld and malformed numbers in words', async () => {
      expect(await ok(tk, 'lookup_customer', {}, STRANGER)).toMatchObject({ found: false });
      expect(await ok(tk, 'lookup_customer', {}, 'anonymous')).toMatchObject({ found: false, reason: expect.stringMatching(/withheld/) as string });
      expect((await fail(tk, 'lookup_customer', { phone: 'call me maybe' }, STAFF)).error).toMatch(/is not a phone number/);
      expect(accepts(tk, 'lookup_customer', { phone: 12025550143 })).toBe(false);
      expect(accepts(tk, 'lookup_customer', { phone: MARIA, extra: 1 })).toBe(false);
      expect((await fail(tk, 'lookup_customer', { phone: 5 }, MARIA)).error).toMatch(/^I could not use those details: phone/);
    });
  });

  describe('search_customers_by_name', () => {
    it('matches partially and case-insensitively, showing callers only names and number hints', async () => {
      const data = await ok(tk, 'search_customers_by_name', { last: 'SMIT' }, STRANGER);
      expect(data.customers).toEqual([
        { customer_id: anyNumber, first_name: 'James', last_name: 'Smith', phone_hints: ['ending in 11'] },
        { customer_id: anyNumber, first_name: 'Jamie', last_name: 'Smithers', phone_hints: ['ending in 12'] },
      ]);
      const both = await ok(tk, 'search_customers_by_name', { first: 'jam', last: 'smithe' }, STRANGER);
      expect(both.customers.map((c) => c.first_name)).toEqual(['Jamie']);
      const staff = await ok(tk, 'search_customers_by_name', { first: 'mar' }, STAFF);
      expect(staff.customers).toEqual([
        expect.objectContaining({ first_name: 'Maria', phones: [MARIA, '+12025550144'], vehicles: ['2019 Toyota Camry, plate 7ABC123', '2022 Honda CR-V, plate 8XYZ789'] }),
      ]);
    });

    it("treats quotes, LIKE wildcards and backslashes in names as data", async () => {
      const obrien = await ok(tk, 'search_customers_by_name', { last: "o'brien" }, STRANGER);
      expect(obrien.customers.map((c) => c.last_name)).toEqual(["O'Brien"]);
      expect((await ok(tk, 'search_customers_by_name', { last: "O'" }, STRANGER)).count).toBe(1);

      // A customer whose name really contains the metacharacters.
      const ins = await tk.db.query<{ id: number }>('INSERT INTO customers (first_name, last_name) VALUES ($1, $2) RETURNING id', ['Pat', 'Ab%_\\Cd']);
      const weirdId = ins.rows[0]!.id;
      const wild = await ok(tk, 'search_customers_by_name', { last: '%_\\' }, STRANGER);
      expect(wild.customers.map((c) => c.customer_id)).toEqual([weirdId]);
      // Unescaped, "%_" would match every name of two or more letters.
      expect((await ok(tk, 'search_customers_by_name', { first: '%_' }, STRANGER)).count).toBe(0);
      expect((await ok(tk, 'search_customers_by_name', { last: '__' }, STRANGER)).count).toBe(0);
      expect((await ok(tk, 'search_customers_by_name', { last: 'b%_' }, STRANGER)).count).toBe(1);

      const injection = await ok(tk, 'search_customers_by_name', { last: "x'; DROP TABLE customers; --" }, STRANGER);
      expect(injection.count).toBe(0);
      expect(await count('customers')).toBeGreaterThanOrEqual(6);
    });

    it('rejects empty, one-letter, oversized and unknown arguments', async () => {
      expect(accepts(tk, 'search_customers_by_name', {})).toBe(false);
      expect(accepts(tk, 'search_customers_by_name', { first: ' ', last: 'a' })).toBe(false);
      expect(accepts(tk, 'search_customers_by_name', { last: 'x'.repeat(51) })).toBe(false);
      expect(accepts(tk, 'search_customers_by_name', { last: 'Smith', phone: '1' })).toBe(false);
      expect(accepts(tk, 'search_customers_by_name', { last: 'Smi\nth' })).toBe(false);
      expect((await fail(tk, 'search_customers_by_name', { first: 'J' }, STRANGER)).error).toMatch(/at least 2 letters/);
    });
  });

  describe('orders', () => {
    it('get_order_status: full details for the owner, status only for anyone else', async () => {
      const own = await ok(tk, 'get_order_status', { order_id: 10234 }, MARIA);
      expect(own).toMatchObject({ order_id: 10234, status: 'processing', expected_on: '2030-01-11', items: ['1 × All-weather floor mats'], delivery_address: '12 Oak Street, Springfield, IL 62701' });
      const spoken = await ok(tk, 'get_order_status', { order_id: '10 234' }, '+12025550144');
      expect(spoken.delivery_address).toBe('12 Oak Street, Springfield, IL 62701');
      const other = await ok(tk, 'get_order_status', { order_id: '20417' }, MARIA);
      expect(other).toEqual({ order_id: 20417, status: 'shipped', expected_on: '2030-01-09', note: anyString });
      expect((await ok(tk, 'get_order_status', { order_id: 20417 }, STAFF)).delivery_address).toBe('48 Harbor Road, Boston, MA 02110');
    });

    it('get_order_status: unknown and malformed order numbers', async () => {
      const unknown = await fail(tk, 'get_order_status', { order_id: 99999 }, MARIA);
      expect(unknown.error).toBe("I couldn't find an order with the number 99999. Could you read me the number again?");
      expect(unknown.retryable).toBeUndefined();
      for (const bad of [{ order_id: 'abc' }, { order_id: 1234567 }, { order_id: -5 }, { order_id: 1.5 }, {}, { order_id: '12; DROP TABLE orders' }]) {
        expect(accepts(tk, 'get_order_status', bad), JSON.stringify(bad)).toBe(false);
      }
    });

    it('change_address: changes the owner’s order, once per idempotency key', async () => {
      const key = randomUUID();
      const args = { order_id: 10234, address: '  77 Elm Street,   Springfield, IL 62704 ' };
      const first = await ok(tk, 'change_address', args, MARIA, key);
      expect(first).toEqual({ order_id: 10234, status: 'processing', delivery_address: '77 Elm Street, Springfield, IL 62704', previous_address: '12 Oak Street, Springfield, IL 62701' });
      // Someone changes it again by other means; a retry of the same call must not re-apply.
      await tk.db.query("UPDATE orders SET address = 'changed by a colleague' WHERE id = 10234");
      const retry = await ok(tk, 'change_address', args, MARIA, key);
      expect(retry).toEqual(first);
      expect((await tk.db.query<{ address: string }>('SELECT address FROM orders WHERE id = 10234')).rows[0]!.address).toBe('changed by a colleague');
      expect(await count('tool_idempotency WHERE key = $1', [key])).toBe(1);
      // The same key with different arguments is refused, not answered with the stored result.
      const clash = await fail(tk, 'change_address', { order_id: 10234, address: '1 Other Road, Springfield' }, MARIA, key);
      expect(clash.error).toMatch(/clashes with an earlier one/);
    });

    it('change_address: refuses other people’s orders, shipped or unknown orders and bad addresses', async () => {
      expect((await fail(tk, 'change_address', { order_id: 20418, address: '1 Thief Lane, Nowhere' }, MARIA)).error).toMatch(/not linked to the phone number you are calling from/);
      expect((await tk.db.query<{ address: string }>('SELECT address FROM orders WHERE id = 20418')).rows[0]!.address).toBe('48 Harbor Road, Boston, MA 02110');
      expect((await fail(tk, 'change_address', { order_id: 20417, address: '2 New Road, Boston' }, SEAN)).error).toBe(
        "The delivery address of order 20417 can't be changed any more: it has already been shipped.",
      );
      expect((await fail(tk, 'change_address', { order_id: 55555, address: '2 New Road, Boston' }, SEAN)).error).toMatch(/couldn't find an order with the number 55555/);
      expect((await fail(tk, 'change_address', { order_id: 20418, address: '2 New Road' }, STRANGER)).error).toMatch(/couldn’t find an account/);
      expect(accepts(tk, 'change_address', { order_id: 20418, address: 'x' })).toBe(false);
      expect(accepts(tk, 'change_address', { order_id: 20418, address: 'line one\nline two' })).toBe(false);
      expect(accepts(tk, 'change_address', { order_id: 20418 })).toBe(false);
      // Staff may change any order.
      expect(await ok(tk, 'change_address', { order_id: 20418, address: '9 Dock Street, Boston, MA 02109' }, STAFF)).toMatchObject({ delivery_address: '9 Dock Street, Boston, MA 02109' });
    });

    it('cancel_order: cancels once; delivered and cancelled orders are refused', async () => {
      const key = randomUUID();
      expect(await ok(tk, 'cancel_order', { order_id: 30552 }, JAMES, key)).toEqual({ order_id: 30552, status: 'cancelled' });
      expect(await ok(tk, 'cancel_order', { order_id: 30552 }, JAMES, key)).toEqual({ order_id: 30552, status: 'cancelled' });
      expect((await fail(tk, 'cancel_order', { order_id: 30552 }, JAMES)).error).toBe("Order 30552 can't be cancelled: it has been cancelled.");
      expect((await fail(tk, 'cancel_order', { order_id: 10235 }, MARIA)).error).toBe("Order 10235 can't be cancelled: it has already been delivered.");
      expect((await fail(tk, 'cancel_order', { order_id: 40961 }, MARIA)).error).toMatch(/not linked/);
      expect((await tk.db.query<{ status: string }>('SELECT status FROM orders WHERE id = 40961')).rows[0]!.status).toBe('processing');
      expect(accepts(tk, 'cancel_order', { order_id: '' })).toBe(false);
    });
  });

  describe('appointments', () => {
    it('get_available_slots: the grid minus booked appointments and the past', async () => {
      const tue = await ok(tk, 'get_available_slots', { date: '2030-01-08' }, MARIA);
      expect(tue).toMatchObject({ date: '2030-01-08', weekday: 'Tuesday', duration_minutes: 30 });
      expect(tue.free_start_times).toHaveLength(19);
      expect(tue.free_start_times).not.toContain('09:00');
      expect(tue.free_start_times.slice(0, 3)).toEqual(['08:00', '08:30', '09:30']);
      expect(tue.free_start_times.at(-1)).toBe('17:30');
      expect(await ok(tk, 'get_available_slots', { date: 'tomorrow' }, MARIA)).toEqual(tue);

      // A 60-minute inspection on Wednesday cannot overlap Sean's 13:00-14:00.
      const wed = await ok(tk, 'get_available_slots', { date: '2030-01-09', service: 'inspection' }, MARIA);
      expect(wed.free_start_times).toEqual(expect.arrayContaining(['12:00', '14:00']));
      expect(wed.free_start_times).not.toContain('12:30');
      expect(wed.free_start_times).not.toContain('13:00');
      expect(wed.free_start_times.at(-1)).toBe('17:00');

      // Today: it is 09:00 and slots need 30 minutes' notice.
      const today = await ok(tk, 'get_available_slots', { date: 'today' }, MARIA);
      expect(today.free_start_times[0]).toBe('09:30');
    });

    it('get_available_slots: past, closed, too far and malformed dates', async () => {
      expect((await fail(tk, 'get_available_slots', { date: '2030-01-06' }, MARIA)).error).toBe(
        '2030-01-06 is in the past. Today is 2030-01-07; please pick today or a later date.',
      );
      expect((await fail(tk, 'get_available_slots', { date: '2030-01-12' }, MARIA)).error).toBe(
        "We don't take appointments on Saturdays. We are open Monday to Friday.",
      );
      expect((await fail(tk, 'get_available_slots', { date: '2030-06-03' }, MARIA)).error).toMatch(/at most 60 days ahead/);
      for (const date of ['2030-02-30', '08/01/2030', 'next week', '2030-1-8']) expect(accepts(tk, 'get_available_slots', { date }), date).toBe(false);
      expect(accepts(tk, 'get_available_slots', { date: '2030-01-08', service: 'car wash' })).toBe(false);
    });

    it('book_appointment: books the caller, on the caller’s vehicle, once per key', async () => {
      const key = randomUUID();
      const args = { date: '2030-01-08', time: '10:00', service: 'oil change', vehicle: 'the camry' };
      const booked = await ok(tk, 'book_appointment', args, MARIA, key);
      expect(booked).toMatchObject({ booked: true, date: '2030-01-08', weekday: 'Tuesday', time: '10:00', end_time: '10:30', service: 'oil change', vehicle: '2019 Toyota Camry, plate 7ABC123', status: 'booked' });
      const retry = await ok(tk, 'book_appointment', args, MARIA, key);
      expect(retry).toEqual(booked);
      const maria = (await tk.db.query<{ id: number }>('SELECT customer_id AS id FROM customer_phones WHERE phone = $1', [MARIA])).rows[0]!.id;
      expect(await count("appointments WHERE customer_id = $1 AND status = 'booked'", [maria])).toBe(2);
      const slots = await ok(tk, 'get_available_slots', { date: '2030-01-08' }, SEAN);
      expect(slots.free_start_times).not.toContain('10:00');

      // By plate, spacing and case ignored; "9:00"-style times.
      const byPlate = await ok(tk, 'book_appointment', { date: '2030-01-08', time: '8:00', service: 'tire rotation', vehicle: '8xyz 789' }, MARIA);
      expect(byPlate).toMatchObject({ time: '08:00', vehicle: '2022 Honda CR-V, plate 8XYZ789' });
      // One vehicle on file: used without asking.
      expect(await ok(tk, 'book_appointment', { date: '2030-01-08', time: '15:00', service: 'inspection' }, SEAN)).toMatchObject({ vehicle: '2017 Ford F-150, plate 4FRD150', end_time: '16:00' });
    });

    it('book_appointment: a taken slot is refused with nearby alternatives', async () => {
      const taken = await fail(tk, 'book_appointment', { date: '2030-01-08', time: '10:00', service: 'oil change' }, SEAN);
      expect(taken.error).toMatch(/^Sorry, 10:00 on 2030-01-08 is not available any more\. The nearest free times that day are /);
      expect(taken.error).toMatch(/09:30, 10:30/);
      // An inspection at 14:30 would overlap Sean's own 15:00 booking of the same bay.
      expect((await fail(tk, 'book_appointment', { date: '2030-01-08', time: '14:30', service: 'inspection' }, OLENA)).error).toMatch(/not available/);
      expectSpeakable(taken.error);
    });

    it('book_appointment: past, off-grid, out of hours, unknown caller, vehicles and bad input', async () => {
      expect((await fail(tk, 'book_appointment', { date: 'today', time: '08:30', service: 'oil change' }, MARIA)).error).toBe('08:30 on 2030-01-07 has already passed.');
      expect((await fail(tk, 'book_appointment', { date: 'today', time: '09:00', service: 'oil change' }, MARIA)).error).toMatch(/too soon/);
      expect((await fail(tk, 'book_appointment', { date: '2030-01-03', time: '10:00', service: 'oil change' }, MARIA)).error).toMatch(/in the past/);
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '10:15', service: 'oil change' }, MARIA)).error).toBe(
        'Appointments start every 30 minutes from 08:00, for example 10:00 or 10:30.',
      );
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '17:00', service: 'brake service' }, MARIA)).error).toBe(
        'We take appointments between 08:00 and 18:00; this service must start by 16:30.',
      );
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '07:00', service: 'oil change' }, MARIA)).error).toMatch(/between 08:00 and 18:00/);
      expect((await fail(tk, 'book_appointment', { date: '2030-01-13', time: '10:00', service: 'oil change' }, MARIA)).error).toMatch(/Sundays/);
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '11:00', service: 'oil change' }, STRANGER)).error).toBe(
        'I couldn’t find an account for the number you are calling from.',
      );
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '11:00', service: 'oil change', vehicle: 'Porsche' }, MARIA)).error).toMatch(
        /couldn't find "Porsche" among your vehicles: 2019 Toyota Camry/,
      );
      expect((await fail(tk, 'book_appointment', { date: '2030-01-10', time: '11:00', service: 'oil change', vehicle: '20' }, MARIA)).error).toMatch(/matches more than one/);
      // Nothing was written by any refusal.
      expect(await count("appointments WHERE starts_at::date = '2030-01-10' AND status = 'booked'")).toBe(1);
      for (const bad of [
        { date: '2030-01-10', time: '25:00', service: 'oil change' },
        { date: '2030-01-10', time: '10:00', service: 'oil change; DROP TABLE appointments' },
        { date: '2030-01-10', time: '10:00' },
        { date: '2030-01-10', time: '10:00', service: 'oil change', vehicle: '' },
        { date: '2030-01-10', time: '10:00', service: 'oil change', customer_id: 1 },
      ]) {
        expect(accepts(tk, 'book_appointment', bad), JSON.stringify(bad)).toBe(false);
      }
    });

    it('get_upcoming_appointments: only the caller’s own, soonest first', async () => {
      const maria = await ok(tk, 'get_upcoming_appointments', {}, MARIA);
      expect(maria.appointments.map((a) => `${a.date} ${a.time}`)).toEqual(['2030-01-08 08:00', '2030-01-08 09:00', '2030-01-08 10:00']);
      const olena = await ok(tk, 'get_upcoming_appointments', {}, OLENA);
      expect(olena).toMatchObject({ count: 1, appointments: [{ service: 'tire rotation', date: '2030-01-10', time: '10:00', vehicle: '2018 Skoda Octavia, plate AA1234BB' }] });
      expect((await fail(tk, 'get_upcoming_appointments', {}, STRANGER)).error).toMatch(/couldn’t find an account/);
      expect(accepts(tk, 'get_upcoming_appointments', { customer_id: 3 })).toBe(false);
    });

    it('cancel_appointment: the owner cancels once, the slot frees up; others cannot see it', async () => {
      const [first] = (await ok(tk, 'get_upcoming_appointments', {}, MARIA)).appointments;
      expect(first!.time).toBe('08:00');
      const id = first!.appointment_id;
      const stranger = await fail(tk, 'cancel_appointment', { appointment_id: id }, SEAN);
      expect(stranger.error).toBe(`I couldn't find appointment number ${id} on your account.`);
      const key = randomUUID();
      const cancelled = await ok(tk, 'cancel_appointment', { appointment_id: String(id), reason: 'car sold' }, MARIA, key);
      expect(cancelled).toMatchObject({ cancelled: true, appointment_id: id, status: 'cancelled', time: '08:00' });
      expect(await ok(tk, 'cancel_appointment', { appointment_id: String(id), reason: 'car sold' }, MARIA, key)).toEqual(cancelled);
      expect((await fail(tk, 'cancel_appointment', { appointment_id: id }, MARIA)).error).toBe(`Appointment ${id} is already cancelled.`);
      expect((await tk.db.query<{ cancel_reason: string }>('SELECT cancel_reason FROM appointments WHERE id = $1', [id])).rows[0]!.cancel_reason).toBe('car sold');
      expect((await ok(tk, 'get_available_slots', { date: '2030-01-08' }, SEAN)).free_start_times).toContain('08:00');
      expect((await fail(tk, 'cancel_appointment', { appointment_id: 987654 }, MARIA)).error).toMatch(/couldn't find appointment number 987654/);
      expect(accepts(tk, 'cancel_appointment', { appointment_id: 'first one' })).toBe(false);
    });

    it('reschedule_appointment: moves the owner’s appointment, frees the old slot, refuses a taken one', async () => {
      const list = (await ok(tk, 'get_upcoming_appointments', {}, SEAN)).appointments;
      const insp = list.find((a) => a.date === '2030-01-09')!;
      expect(insp).toMatchObject({ time: '13:00', service: 'inspection' });

      const taken = await fail(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10', time: '09:30' }, SEAN);
      expect(taken.error).toMatch(/^Sorry, 09:30 on 2030-01-10 is not available any more\./); // overlaps Olena's 10:00

      const key = randomUUID();
      const moved = await ok(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10', time: '11:00' }, SEAN, key);
      expect(moved).toMatchObject({ rescheduled: true, date: '2030-01-10', time: '11:00', end_time: '12:00', service: 'inspection', previous_date: '2030-01-09', previous_time: '13:00' });
      expect(await ok(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10', time: '11:00' }, SEAN, key)).toEqual(moved);
      expect((await ok(tk, 'get_available_slots', { date: '2030-01-09', service: 'inspection' }, MARIA)).free_start_times).toContain('13:00');
      // Moving within its own current slot range is not a conflict with itself.
      expect(await ok(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10', time: '11:30' }, SEAN)).toMatchObject({ time: '11:30', end_time: '12:30' });

      expect((await fail(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10', time: '12:00' }, MARIA)).error).toMatch(
        /couldn't find appointment number/,
      );
      expect((await fail(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-01', time: '12:00' }, SEAN)).error).toMatch(/in the past/);
      expect(accepts(tk, 'reschedule_appointment', { appointment_id: insp.appointment_id, date: '2030-01-10' })).toBe(false);
    });
  });

  describe('create_ticket', () => {
    it('links the caller’s account, keeps an unknown caller’s number, writes once per key', async () => {
      const key = randomUUID();
      const args = { summary: 'The dealership scratched my bumper during the last service.', category: 'complaint' };
      const t = await ok(tk, 'create_ticket', args, MARIA, key);
      expect(t).toEqual({ ticket_id: anyNumber, category: 'complaint', status: 'open', linked_to_account: true });
      expect(await ok(tk, 'create_ticket', args, MARIA, key)).toEqual(t);
      expect(await count('tickets WHERE id = $1', [t.ticket_id])).toBe(1);
      expect(await count("tickets WHERE summary LIKE 'The dealership scratched%'")).toBe(1);

      const anon = await ok(tk, 'create_ticket', { summary: 'Wants a call back about a lease offer.', category: 'other' }, STRANGER);
      expect(anon.linked_to_account).toBe(false);
      const row = (await tk.db.query<{ caller_number: string; customer_id: number | null; call_id: string }>('SELECT caller_number, customer_id, call_id FROM tickets WHERE id = $1', [anon.ticket_id])).rows[0]!;
      expect(row).toEqual({ caller_number: STRANGER, customer_id: null, call_id: 'call-1' });

      expect(accepts(tk, 'create_ticket', { summary: 'Broken', category: 'rant' })).toBe(false);
      expect(accepts(tk, 'create_ticket', { summary: 'hi', category: 'other' })).toBe(false);
      expect(accepts(tk, 'create_ticket', { category: 'other' })).toBe(false);
    });
  });

  describe('aborted calls', () => {
    it('a tool whose signal is already aborted does not run', async () => {
      const ac = new AbortController();
      ac.abort();
      const before = await count('tickets');
      await expect(tool(tk, 'create_ticket').execute({ summary: 'Should never be written.', category: 'other' }, { ...ctx(MARIA), signal: ac.signal })).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(await count('tickets')).toBe(before);
    });
  });
});

describe('CRM tools with the database gone', () => {
  const cases = [
    { name: 'postgres (nothing listening)', db: async () => createPgDb({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutMs: 500 }) },
    {
      name: 'pglite (closed)',
      db: async () => {
        const db = await createPgliteDb();
        await db.close();
        return db;
      },
    },
  ];
  it.each(cases)('every tool answers "not answering right now", retryable, on $name', async ({ db }) => {
    const tk = await createCrmToolkit(CrmConfigSchema.parse({ ...baseConfig, migrate: false, seedDemoData: false }), { log: silentLogger, db: await db(), clock: () => NOW });
    try {
      const calls: [string, unknown, string][] = [
        ['lookup_customer', {}, UNAVAILABLE.customers],
        ['search_customers_by_name', { last: 'Smith' }, UNAVAILABLE.customers],
        ['get_order_status', { order_id: 10234 }, 'The order system is not answering right now.'],
        ['change_address', { order_id: 10234, address: '1 Main Street, Springfield' }, 'The order system is not answering right now.'],
        ['cancel_order', { order_id: 10234 }, 'The order system is not answering right now.'],
        ['get_available_slots', { date: '2030-01-08' }, UNAVAILABLE.bookings],
        ['book_appointment', { date: '2030-01-08', time: '10:00', service: 'oil change' }, UNAVAILABLE.bookings],
        ['get_upcoming_appointments', {}, UNAVAILABLE.bookings],
        ['cancel_appointment', { appointment_id: 1 }, UNAVAILABLE.bookings],
        ['reschedule_appointment', { appointment_id: 1, date: '2030-01-08', time: '10:00' }, UNAVAILABLE.bookings],
        ['create_ticket', { summary: 'Nothing works today.', category: 'other' }, UNAVAILABLE.tickets],
      ];
      for (const [name, args, message] of calls) {
        const r = await call(tk, name, args, MARIA);
        expect(r, name).toEqual({ ok: false, error: message, retryable: true });
      }
    } finally {
      await tk.close();
    }
  }, 180_000); // opening a PGlite takes seconds, far longer on a loaded machine
});
