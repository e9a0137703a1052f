/**
 * Demo data for the local sandbox and tests: a handful of customers (phones in E.164, one
 * Ukrainian-speaking, one with an apostrophe in the name), their vehicles, orders in every
 * status, and a few appointments on the next open days.
 *
 * Idempotent: customers are keyed by their first phone number, vehicles by VIN, orders by
 * their (fixed, five-digit) numbers, appointments are only added for a demo customer who has
 * none; running it again adds nothing. Runs in one transaction under an advisory lock so two
 * processes seeding at once do not race.
 */
import type { Db, Queryable } from './db.js';
import { addDays, gridStarts, isOpenOn, localDate, type Schedule } from './schedule.js';

interface DemoCustomer {
  firstName: string;
  lastName: string;
  language: string;
  phones: { phone: string; label: 'mobile' | 'home' | 'work' }[];
  vehicles: { make: string; model: string; year: number; plate: string; vin: string }[];
  orders: { id: number; status: string; address: string; items: { name: string; quantity: number }[]; expectedInDays: number | null }[];
  /** Appointments: n-th open day from tomorrow, n-th grid slot of that day. */
  appointments: { openDay: number; slot: number; service: string; vehicle: number | null }[];
}

/** Fictional numbers: NANP 555-01xx and a Ukrainian mobile. */
export const DEMO_CUSTOMERS: readonly DemoCustomer[] = [
  {
    firstName: 'Maria',
    lastName: 'Garcia',
    language: 'en-US',
    phones: [
      { phone: '+12025550143', label: 'mobile' },
      { phone: '+12025550144', label: 'home' },
    ],
    vehicles: [
      { make: 'Toyota', model: 'Camry', year: 2019, plate: '7ABC123', vin: '4T1B11HK5KU000001' },
      { make: 'Honda', model: 'CR-V', year: 2022, plate: '8XYZ789', vin: '2HKRW2H5XNH000002' },
    ],
    orders: [
      { id: 10234, status: 'processing', address: '12 Oak Street, Springfield, IL 62701', items: [{ name: 'All-weather floor mats', quantity: 1 }], expectedInDays: 4 },
      { id: 10235, status: 'delivered', address: '12 Oak Street, Springfield, IL 62701', items: [{ name: 'Cabin air filter', quantity: 2 }], expectedInDays: null },
    ],
    appointments: [{ openDay: 1, slot: 2, service: 'oil change', vehicle: 0 }],
  },
  {
    firstName: 'Sean',
    lastName: "O'Brien",
    language: 'en-US',
    phones: [{ phone: '+12025550178', label: 'mobile' }],
    vehicles: [{ make: 'Ford', model: 'F-150', year: 2017, plate: '4FRD150', vin: '1FTEW1EG5HF000003' }],
    orders: [
      { id: 20417, status: 'shipped', address: '48 Harbor Road, Boston, MA 02110', items: [{ name: 'Tonneau cover', quantity: 1 }], expectedInDays: 2 },
      { id: 20418, status: 'placed', address: '48 Harbor Road, Boston, MA 02110', items: [{ name: 'Wiper blades', quantity: 2 }], expectedInDays: 6 },
    ],
    appointments: [{ openDay: 2, slot: 10, service: 'inspection', vehicle: 0 }],
  },
  {
    firstName: 'James',
    lastName: 'Smith',
    language: 'en-US',
    phones: [{ phone: '+12025550111', label: 'mobile' }],
    vehicles: [{ make: 'Tesla', model: 'Model 3', year: 2020, plate: 'EV3SMTH', vin: '5YJ3E1EA7LF000004' }],
    orders: [
      { id: 30552, status: 'out_for_delivery', address: '301 Pine Avenue, Austin, TX 78701', items: [{ name: 'Wall charger', quantity: 1 }], expectedInDays: 0 },
      { id: 30553, status: 'cancelled', address: '301 Pine Avenue, Austin, TX 78701', items: [{ name: 'Roof rack', quantity: 1 }], expectedInDays: null },
    ],
    appointments: [],
  },
  {
    firstName: 'Jamie',
    lastName: 'Smithers',
    language: 'en-US',
    phones: [{ phone: '+12025550112', label: 'work' }],
    vehicles: [],
    orders: [],
    appointments: [],
  },
  {
    firstName: 'Olena',
    lastName: 'Kovalenko',
    language: 'uk-UA',
    phones: [{ phone: '+380501234567', label: 'mobile' }],
    vehicles: [{ make: 'Skoda', model: 'Octavia', year: 2018, plate: 'AA1234BB', vin: 'TMBJG7NE5J0000005' }],
    orders: [{ id: 40961, status: 'processing', address: 'vul. Khreshchatyk 22, Kyiv 01001', items: [{ name: 'Winter tyres', quantity: 4 }], expectedInDays: 5 }],
    appointments: [{ openDay: 3, slot: 4, service: 'tire rotation', vehicle: 0 }],
  },
];

export interface SeedResult {
  customers: number;
  vehicles: number;
  orders: number;
  appointments: number;
}

export async function seedDemoData(db: Db, opts: { schedule: Schedule; now?: Date }): Promise<SeedResult> {
  const now = opts.now ?? new Date();
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('switchboard:seed-demo', 0))");
    const out: SeedResult = { customers: 0, vehicles: 0, orders: 0, appointments: 0 };
    const openDays = nextOpenDays(opts.schedule, now, 5);
    for (const c of DEMO_CUSTOMERS) {
      let customerId = await customerOf(tx, c.phones[0]!.phone);
      if (customerId === undefined) {
        const { rows } = await tx.query<{ id: number }>('INSERT INTO customers (first_name, last_name, language) VALUES ($1, $2, $3) RETURNING id', [
          c.firstName,
          c.lastName,
          c.language,
        ]);
        customerId = rows[0]!.id;
        out.customers++;
      }
      for (const p of c.phones) {
        await tx.query('INSERT INTO customer_phones (phone, customer_id, label) VALUES ($1, $2, $3) ON CONFLICT (phone) DO NOTHING', [p.phone, customerId, p.label]);
      }
      const vehicleIds: number[] = [];
      for (const v of c.vehicles) {
        const ins = await tx.query<{ id: number }>(
          'INSERT INTO vehicles (customer_id, make, model, year, plate, vin) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vin) DO NOTHING RETURNING id',
          [customerId, v.make, v.model, v.year, v.plate, v.vin],
        );
        if (ins.rows[0]) out.vehicles++;
        const { rows } = await tx.query<{ id: number }>('SELECT id FROM vehicles WHERE vin = $1', [v.vin]);
        vehicleIds.push(rows[0]!.id);
      }
      for (const o of c.orders) {
        const expected = o.expectedInDays === null ? null : addDays(localDate(now, opts.schedule.timezone), o.expectedInDays);
        const ins = await tx.query(
          `INSERT INTO orders (id, customer_id, status, address, items, expected_on, cancelled_at)
           VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::date, CASE WHEN $3 = 'cancelled' THEN $7::timestamptz END)
           ON CONFLICT (id) DO NOTHING`,
          [o.id, customerId, o.status, o.address, JSON.stringify(o.items), expected, now],
        );
        out.orders += ins.rowCount;
      }
      const { rows: existing } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM appointments WHERE customer_id = $1', [customerId]);
      if (existing[0]!.n === 0) {
        for (const a of c.appointments) {
          if (await insertAppointment(tx, opts.schedule, openDays, customerId, a.openDay, a.slot, a.service, a.vehicle === null ? null : (vehicleIds[a.vehicle] ?? null))) {
            out.appointments++;
          }
        }
      }
    }
    return out;
  });
}

async function customerOf(tx: Queryable, phone: string): Promise<number | undefined> {
  const { rows } = await tx.query<{ id: number }>('SELECT customer_id AS id FROM customer_phones WHERE phone = $1', [phone]);
  return rows[0]?.id;
}

/** Inserts on the first free bay; skips (false) when the slot is full or does not exist. */
async function insertAppointment(
  tx: Queryable,
  schedule: Schedule,
  openDays: string[],
  customerId: number,
  openDay: number,
  slot: number,
  service: string,
  vehicleId: number | null,
): Promise<boolean> {
  const date = openDays[openDay - 1];
  const svc = schedule.services.find((s) => s.name === service);
  const minutes = svc?.minutes ?? schedule.hours.slotMinutes;
  const starts = gridStarts(schedule.hours, minutes);
  const time = starts[Math.min(slot, starts.length - 1)];
  if (!date || !time) return false;
  const res = await tx.query(
    `INSERT INTO appointments (customer_id, vehicle_id, service, bay, starts_at, ends_at)
     SELECT $1, $2, $3, b.bay, ($4::date + $5::time) AT TIME ZONE $6, ($4::date + $5::time + make_interval(mins => $7::int)) AT TIME ZONE $6
     FROM generate_series(1, $8::int) AS b(bay)
     WHERE NOT EXISTS (
       SELECT 1 FROM appointments a WHERE a.status = 'booked' AND a.bay = b.bay
         AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(($4::date + $5::time) AT TIME ZONE $6, ($4::date + $5::time + make_interval(mins => $7::int)) AT TIME ZONE $6, '[)'))
     ORDER BY b.bay LIMIT 1`,
    [customerId, vehicleId, svc?.name ?? service, date, time, schedule.timezone, minutes, schedule.hours.bays],
  );
  return res.rowCount > 0;
}

/** The next `n` dates after today the business is open. */
function nextOpenDays(schedule: Schedule, now: Date, n: number): string[] {
  const out: string[] = [];
  let d = localDate(now, schedule.timezone);
  for (let i = 0; i < 366 && out.length < n; i++) {
    d = addDays(d, 1);
    if (isOpenOn(schedule.hours, d)) out.push(d);
  }
  return out;
}
