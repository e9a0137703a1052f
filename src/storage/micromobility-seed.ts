/**
 * Demo data of the micromobility support line: a small city's parking areas and red zones,
 * a fleet of bicycles and scooters, and riders (CRM customers, numbers +1 202 555 02xx) each
 * in the situation one of the support scenarios is about:
 *
 *   +12025550201 Anna   scooter 4217  the CRM shows it in the Main Street red zone, but its
 *                                     newer fix (Market Square) is still on its way: a false
 *                                     red-zone trigger that the 10 s re-check clears
 *   +12025550202 Ben    scooter 5308  lock not responding, a remote restart fixes it
 *   +12025550203 Chloe  bicycle 1190  lock not responding, a restart does not help
 *   +12025550204 Dmytro bicycle 2264  parked at the University; the app froze (Ukrainian speaker)
 *   +12025550205 Emma   scooter 6031  really inside the Central Station entrance red zone
 *   +12025550206 Farid  (no active trip; one ended yesterday)
 *   vehicles 7100 (bicycle) and 7101 (scooter) are free; 7199 is in maintenance.
 *
 * Times are relative to `now` (trips started minutes ago). Idempotent: riders are keyed by
 * their phone, vehicles by their code, and a vehicle's trip and positions are only added when
 * the vehicle itself is new; running it again adds nothing. One transaction under an
 * advisory lock, so two processes seeding at once do not race.
 */
import type { Db, Queryable } from './db.js';

export interface DemoZone {
  name: string;
  kind: 'allowed' | 'red';
  circle?: { lat: number; lon: number; radiusM: number };
  polygon?: [number, number][];
}

export const DEMO_ZONES: readonly DemoZone[] = [
  { name: 'Market Square', kind: 'allowed', circle: { lat: 50.4501, lon: 30.5234, radiusM: 60 } },
  { name: 'Central Station', kind: 'allowed', circle: { lat: 50.4405, lon: 30.489, radiusM: 80 } },
  { name: 'Riverside Park', kind: 'allowed', circle: { lat: 50.458, lon: 30.529, radiusM: 50 } },
  {
    name: 'University Campus',
    kind: 'allowed',
    polygon: [
      [50.4425, 30.51],
      [50.4425, 30.5125],
      [50.444, 30.5125],
      [50.444, 30.51],
    ],
  },
  {
    name: 'Main Street pedestrian zone',
    kind: 'red',
    polygon: [
      [50.4508, 30.5215],
      [50.4508, 30.525],
      [50.4522, 30.525],
      [50.4522, 30.5215],
    ],
  },
  // Inside the Central Station parking area: red wins, nobody may block the doors.
  { name: 'Central Station entrance', kind: 'red', circle: { lat: 50.441, lon: 30.489, radiusM: 20 } },
  { name: 'Cathedral Square', kind: 'red', circle: { lat: 50.4528, lon: 30.5143, radiusM: 100 } },
];

export interface DemoRider {
  firstName: string;
  lastName: string;
  language: string;
  phone: string;
}

export interface DemoFix {
  lat: number;
  lon: number;
  /** Recorded this many minutes before `now`. */
  minutesAgo: number;
  /** Still on its way to the CRM (visible `transitMs` after a locate request). */
  inTransit?: boolean;
}

export interface DemoVehicle {
  code: string;
  type: 'bicycle' | 'scooter';
  status: 'available' | 'in_trip' | 'maintenance';
  lockState: 'locked' | 'unlocked' | 'not_responding';
  lockFault: 'none' | 'transient' | 'persistent';
  battery: number | null;
  fixes: DemoFix[];
  /** The rider (by phone) and how long ago the trip started; `endedMinutesAgo`: a past trip. */
  trip?: { phone: string; startedMinutesAgo: number; endedMinutesAgo?: number };
}

export const DEMO_RIDERS: readonly DemoRider[] = [
  { firstName: 'Anna', lastName: 'Petrenko', language: 'en-US', phone: '+12025550201' },
  { firstName: 'Ben', lastName: 'Carter', language: 'en-US', phone: '+12025550202' },
  { firstName: 'Chloe', lastName: 'Nguyen', language: 'en-US', phone: '+12025550203' },
  { firstName: 'Dmytro', lastName: 'Shevchenko', language: 'uk-UA', phone: '+12025550204' },
  { firstName: 'Emma', lastName: 'Wilson', language: 'en-US', phone: '+12025550205' },
  { firstName: 'Farid', lastName: 'Haddad', language: 'en-US', phone: '+12025550206' },
];

export const DEMO_FLEET: readonly DemoVehicle[] = [
  {
    code: '4217',
    type: 'scooter',
    status: 'in_trip',
    lockState: 'unlocked',
    lockFault: 'none',
    battery: 64,
    fixes: [
      { lat: 50.4466, lon: 30.5205, minutesAgo: 18 },
      // Crossing the pedestrian zone: the last fix the CRM has.
      { lat: 50.4512, lon: 30.5232, minutesAgo: 6 },
      // Parked on Market Square three minutes ago; the fix has not reached the CRM yet.
      { lat: 50.4502, lon: 30.5235, minutesAgo: 3, inTransit: true },
    ],
    trip: { phone: '+12025550201', startedMinutesAgo: 18 },
  },
  {
    code: '5308',
    type: 'scooter',
    status: 'in_trip',
    lockState: 'not_responding',
    lockFault: 'transient',
    battery: 41,
    fixes: [
      { lat: 50.4441, lon: 30.5262, minutesAgo: 12 },
      { lat: 50.4499, lon: 30.523, minutesAgo: 1 },
    ],
    trip: { phone: '+12025550202', startedMinutesAgo: 12 },
  },
  {
    code: '1190',
    type: 'bicycle',
    status: 'in_trip',
    lockState: 'not_responding',
    lockFault: 'persistent',
    battery: null,
    fixes: [
      { lat: 50.451, lon: 30.5301, minutesAgo: 25 },
      { lat: 50.4581, lon: 30.5291, minutesAgo: 2 },
    ],
    trip: { phone: '+12025550203', startedMinutesAgo: 25 },
  },
  {
    code: '2264',
    type: 'bicycle',
    status: 'in_trip',
    lockState: 'unlocked',
    lockFault: 'none',
    battery: null,
    fixes: [
      { lat: 50.4401, lon: 30.4952, minutesAgo: 9 },
      { lat: 50.4432, lon: 30.5112, minutesAgo: 1 },
    ],
    trip: { phone: '+12025550204', startedMinutesAgo: 9 },
  },
  {
    code: '6031',
    type: 'scooter',
    status: 'in_trip',
    lockState: 'unlocked',
    lockFault: 'none',
    battery: 77,
    fixes: [
      { lat: 50.4452, lon: 30.5001, minutesAgo: 15 },
      { lat: 50.4411, lon: 30.489, minutesAgo: 1 },
    ],
    trip: { phone: '+12025550205', startedMinutesAgo: 15 },
  },
  {
    code: '3350',
    type: 'bicycle',
    status: 'available',
    lockState: 'locked',
    lockFault: 'none',
    battery: null,
    fixes: [{ lat: 50.4579, lon: 30.5288, minutesAgo: 60 * 20 }],
    trip: { phone: '+12025550206', startedMinutesAgo: 60 * 24 + 30, endedMinutesAgo: 60 * 24 + 8 },
  },
  { code: '7100', type: 'bicycle', status: 'available', lockState: 'locked', lockFault: 'none', battery: null, fixes: [{ lat: 50.4503, lon: 30.5237, minutesAgo: 30 }] },
  { code: '7101', type: 'scooter', status: 'available', lockState: 'locked', lockFault: 'none', battery: 93, fixes: [{ lat: 50.4404, lon: 30.4895, minutesAgo: 45 }] },
  { code: '7199', type: 'scooter', status: 'maintenance', lockState: 'locked', lockFault: 'persistent', battery: 5, fixes: [] },
];

/** Prices of the demo trips (cents). */
export const DEMO_PRICES: Readonly<Record<'bicycle' | 'scooter', { unlockFeeCents: number; perMinuteCents: number }>> = {
  bicycle: { unlockFeeCents: 50, perMinuteCents: 10 },
  scooter: { unlockFeeCents: 100, perMinuteCents: 25 },
};

export interface MicromobilitySeedResult {
  zones: number;
  riders: number;
  vehicles: number;
  trips: number;
}

export interface MicromobilitySeedOptions {
  now?: Date;
  /** How long a fix in transit takes to reach the CRM after a locate request (default 4000 ms). */
  transitMs?: number;
  currency?: string;
}

export async function seedMicromobilityDemo(db: Db, opts: MicromobilitySeedOptions = {}): Promise<MicromobilitySeedResult> {
  const now = opts.now ?? new Date();
  const transitMs = opts.transitMs ?? 4000;
  const ago = (minutes: number): Date => new Date(now.getTime() - minutes * 60_000);
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('switchboard:seed-micromobility', 0))");
    const out: MicromobilitySeedResult = { zones: 0, riders: 0, vehicles: 0, trips: 0 };
    for (const z of DEMO_ZONES) {
      const res = await tx.query(
        `INSERT INTO geo_zones (name, kind, center_lat, center_lon, radius_m, polygon) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)
         ON CONFLICT (name) DO NOTHING`,
        [z.name, z.kind, z.circle?.lat ?? null, z.circle?.lon ?? null, z.circle?.radiusM ?? null, z.polygon ? JSON.stringify(z.polygon) : null],
      );
      out.zones += res.rowCount;
    }
    const riders = new Map<string, number>();
    for (const r of DEMO_RIDERS) {
      let id = await customerOf(tx, r.phone);
      if (id === undefined) {
        const { rows } = await tx.query<{ id: number }>('INSERT INTO customers (first_name, last_name, language) VALUES ($1, $2, $3) RETURNING id', [
          r.firstName,
          r.lastName,
          r.language,
        ]);
        id = rows[0]!.id;
        await tx.query("INSERT INTO customer_phones (phone, customer_id, label) VALUES ($1, $2, 'mobile') ON CONFLICT (phone) DO NOTHING", [r.phone, id]);
        out.riders++;
      }
      riders.set(r.phone, id);
    }
    for (const v of DEMO_FLEET) {
      const ins = await tx.query<{ id: number }>(
        `INSERT INTO fleet_vehicles (code, type, status, lock_state, lock_fault, battery_percent, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz) ON CONFLICT (code) DO NOTHING RETURNING id`,
        [v.code, v.type, v.status, v.lockState, v.lockFault, v.battery, now],
      );
      const vehicleId = ins.rows[0]?.id;
      if (vehicleId === undefined) continue; // already there: its trip and positions too
      out.vehicles++;
      for (const f of v.fixes) {
        await tx.query('INSERT INTO fleet_positions (vehicle_id, lat, lon, recorded_at, visible_at, transit_ms) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6)', [
          vehicleId,
          f.lat,
          f.lon,
          ago(f.minutesAgo),
          f.inTransit ? null : ago(f.minutesAgo),
          f.inTransit ? transitMs : null,
        ]);
      }
      if (v.trip) {
        const customerId = riders.get(v.trip.phone);
        if (customerId === undefined) continue;
        const price = DEMO_PRICES[v.type];
        if (v.trip.endedMinutesAgo === undefined) {
          await tx.query(
            `INSERT INTO trips (customer_id, vehicle_id, status, started_at, currency, unlock_fee_cents, per_minute_cents)
             VALUES ($1, $2, 'active', $3::timestamptz, $4, $5, $6)`,
            [customerId, vehicleId, ago(v.trip.startedMinutesAgo), opts.currency ?? 'USD', price.unlockFeeCents, price.perMinuteCents],
          );
        } else {
          const minutes = v.trip.startedMinutesAgo - v.trip.endedMinutesAgo;
          await tx.query(
            `INSERT INTO trips (customer_id, vehicle_id, status, started_at, ended_at, currency, unlock_fee_cents, per_minute_cents, minutes, charge_cents, ended_by)
             VALUES ($1, $2, 'ended', $3::timestamptz, $4::timestamptz, $5, $6, $7, $8, $9, 'rider')`,
            [
              customerId,
              vehicleId,
              ago(v.trip.startedMinutesAgo),
              ago(v.trip.endedMinutesAgo),
              opts.currency ?? 'USD',
              price.unlockFeeCents,
              price.perMinuteCents,
              minutes,
              price.unlockFeeCents + price.perMinuteCents * minutes,
            ],
          );
        }
        out.trips++;
      }
    }
    return out;
  });
}

async function customerOf(tx: Queryable, phone: string): Promise<number | undefined> {
  const { rows } = await tx.query<{ id: number }>('SELECT customer_id AS id FROM customer_phones WHERE phone = $1', [phone]);
  return rows[0]?.id;
}
