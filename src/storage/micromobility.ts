/**
 * The micromobility data (migrations/004_micromobility.sql): riders' trips on shared bicycles
 * and scooters, the fleet, its reported positions, parking areas and red zones, and the event
 * log of what was done to a vehicle or trip.
 *
 * Every statement is parameterised. Writes take the transaction they run in (see
 * runIdempotent), reads default to the Db. Business rules fail with MicromobilityError, whose
 * message is plain words a voice agent can say; no SQL, other riders' data or stack traces.
 *
 * Geometry is done here in TypeScript (no PostGIS: the same code runs on PGlite): distances by
 * the haversine formula, polygons by ray casting on a local flat projection, which is exact
 * enough for city-sized zones.
 */
import type { Db, Queryable, SqlValue } from './db.js';

export type VehicleType = 'bicycle' | 'scooter';
export type VehicleStatus = 'available' | 'in_trip' | 'maintenance';
export type LockState = 'locked' | 'unlocked' | 'not_responding';
export type LockFault = 'none' | 'transient' | 'persistent';
export type ZoneKind = 'allowed' | 'red';
export type TicketTopic = 'lock' | 'trip_end' | 'red_zone' | 'app' | 'other';
export const TICKET_TOPICS: readonly TicketTopic[] = ['lock', 'trip_end', 'red_zone', 'app', 'other'];
export type FleetEventKind = 'geofence_check' | 'locate_requested' | 'restart' | 'end_refused' | 'trip_ended' | 'minutes_waived';

/** The CRM ticket category (001's CHECK) each support topic is filed under. */
export const TOPIC_CATEGORY: Readonly<Record<TicketTopic, string>> = {
  lock: 'vehicle',
  trip_end: 'billing',
  red_zone: 'billing',
  app: 'technical',
  other: 'other',
};

export type MicromobilityErrorCode = 'not_found' | 'no_trip' | 'not_yours' | 'ambiguous' | 'invalid_state' | 'rate_limited' | 'invalid';

export class MicromobilityError extends Error {
  override readonly name = 'MicromobilityError';
  constructor(
    readonly code: MicromobilityErrorCode,
    /** Speakable: the agent may relay it to the caller as is. */
    message: string,
  ) {
    super(message);
  }
}

export interface FleetVehicle {
  vehicleId: number;
  code: string;
  type: VehicleType;
  status: VehicleStatus;
  lockState: LockState;
  lockFault: LockFault;
  batteryPercent: number | null;
}

export interface Trip {
  tripId: number;
  customerId: number;
  vehicle: FleetVehicle;
  status: 'active' | 'ended';
  startedAt: Date;
  endedAt: Date | null;
  currency: string;
  unlockFeeCents: number;
  perMinuteCents: number;
  minutes: number | null;
  waivedMinutes: number;
  waiveReason: string | null;
  chargeCents: number | null;
  endedBy: 'rider' | 'agent' | 'operator' | null;
}

export interface Position {
  lat: number;
  lon: number;
  /** When the vehicle was there. */
  recordedAt: Date;
  /** When the CRM received it. */
  visibleAt: Date;
}

export type ZoneShape = { kind: 'circle'; lat: number; lon: number; radiusM: number } | { kind: 'polygon'; points: readonly (readonly [number, number])[] };

export interface Zone {
  zoneId: number;
  name: string;
  kind: ZoneKind;
  shape: ZoneShape;
}

export interface ZoneVerdict {
  /** allowed: inside a parking area and no red zone; red: inside a red zone; outside: neither. */
  verdict: 'allowed' | 'red' | 'outside';
  /** The zone that decided (the red zone, or the parking area). */
  zone?: Zone;
  /**
   * The nearest parking area when the verdict is not allowed, and how far to go. `within`: the
   * red zone lies inside that parking area, so the distance is to the red zone's edge.
   */
  nearestAllowed?: { zone: Zone; distanceM: number; within?: boolean };
}

export interface GeofenceReading {
  position: Position | undefined;
  verdict: ZoneVerdict;
}

export interface RestartOutcome {
  vehicle: FleetVehicle;
  /** The lock answers again after the restart. */
  lockResponding: boolean;
  /** Restarts of this vehicle in the rate-limit window, this one included. */
  restartsInWindow: number;
}

export interface MicromobilityTicket {
  ticketId: number;
  category: string;
  topic: TicketTopic;
  tripId: number | null;
  vehicleId: number | null;
  status: string;
}

export interface MicromobilityStoreOptions {
  /** Current time (tests move it). */
  clock?: () => Date;
}

const VEHICLE_COLUMNS = `v.id AS "vehicleId", v.code, v.type, v.status, v.lock_state AS "lockState", v.lock_fault AS "lockFault", v.battery_percent AS "batteryPercent"`;

interface TripRow {
  tripId: number;
  customerId: number;
  status: 'active' | 'ended';
  startedMs: number;
  endedMs: number | null;
  currency: string;
  unlockFeeCents: number;
  perMinuteCents: number;
  minutes: number | null;
  waivedMinutes: number;
  waiveReason: string | null;
  chargeCents: number | null;
  endedBy: Trip['endedBy'];
  vehicle: FleetVehicle;
}

const TRIP_SELECT = `
  SELECT t.id AS "tripId", t.customer_id AS "customerId", t.status,
         (extract(epoch FROM t.started_at) * 1000)::float8 AS "startedMs",
         (extract(epoch FROM t.ended_at) * 1000)::float8 AS "endedMs",
         t.currency, t.unlock_fee_cents AS "unlockFeeCents", t.per_minute_cents AS "perMinuteCents",
         t.minutes, t.waived_minutes AS "waivedMinutes", t.waive_reason AS "waiveReason",
         t.charge_cents AS "chargeCents", t.ended_by AS "endedBy",
         json_build_object('vehicleId', v.id, 'code', v.code, 'type', v.type, 'status', v.status, 'lockState', v.lock_state,
                           'lockFault', v.lock_fault, 'batteryPercent', v.battery_percent) AS vehicle
  FROM trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id`;

function toTrip(r: TripRow): Trip {
  return {
    tripId: r.tripId,
    customerId: r.customerId,
    vehicle: r.vehicle,
    status: r.status,
    startedAt: new Date(r.startedMs),
    endedAt: r.endedMs === null ? null : new Date(r.endedMs),
    currency: r.currency,
    unlockFeeCents: r.unlockFeeCents,
    perMinuteCents: r.perMinuteCents,
    minutes: r.minutes,
    waivedMinutes: r.waivedMinutes,
    waiveReason: r.waiveReason,
    chargeCents: r.chargeCents,
    endedBy: r.endedBy,
  };
}

export class MicromobilityStore {
  private readonly clock: () => Date;

  constructor(
    readonly db: Db,
    opts: MicromobilityStoreOptions = {},
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  now(): Date {
    return this.clock();
  }

  // --- riders and trips ------------------------------------------------------------------

  async riderIdByPhone(phone: string, q: Queryable = this.db): Promise<number | undefined> {
    const { rows } = await q.query<{ id: number }>('SELECT customer_id AS id FROM customer_phones WHERE phone = $1', [phone]);
    return rows[0]?.id;
  }

  /** The rider's active trips, most recent first. */
  async activeTrips(customerId: number, q: Queryable = this.db): Promise<Trip[]> {
    const { rows } = await q.query<TripRow>(`${TRIP_SELECT} WHERE t.customer_id = $1 AND t.status = 'active' ORDER BY t.started_at DESC, t.id DESC`, [customerId]);
    return rows.map(toTrip);
  }

  /** The rider's most recent trips, ended ones included (newest first). */
  async recentTrips(customerId: number, limit = 5, q: Queryable = this.db): Promise<Trip[]> {
    const { rows } = await q.query<TripRow>(`${TRIP_SELECT} WHERE t.customer_id = $1 ORDER BY t.started_at DESC, t.id DESC LIMIT $2`, [customerId, limit]);
    return rows.map(toTrip);
  }

  async trip(tripId: number, q: Queryable = this.db, forUpdate = false): Promise<Trip | undefined> {
    const { rows } = await q.query<TripRow>(`${TRIP_SELECT} WHERE t.id = $1${forUpdate ? ' FOR UPDATE OF t, v' : ''}`, [tripId]);
    return rows[0] ? toTrip(rows[0]) : undefined;
  }

  // --- the fleet -------------------------------------------------------------------------

  async vehicleByCode(code: string, q: Queryable = this.db): Promise<FleetVehicle | undefined> {
    const { rows } = await q.query<FleetVehicle>(`SELECT ${VEHICLE_COLUMNS} FROM fleet_vehicles v WHERE v.code = $1`, [code]);
    return rows[0];
  }

  async vehicle(vehicleId: number, q: Queryable = this.db, forUpdate = false): Promise<FleetVehicle | undefined> {
    const { rows } = await q.query<FleetVehicle>(`SELECT ${VEHICLE_COLUMNS} FROM fleet_vehicles v WHERE v.id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [vehicleId]);
    return rows[0];
  }

  /** The active trip a vehicle is in, if any. */
  async activeTripOfVehicle(vehicleId: number, q: Queryable = this.db): Promise<Trip | undefined> {
    const { rows } = await q.query<TripRow>(`${TRIP_SELECT} WHERE t.vehicle_id = $1 AND t.status = 'active'`, [vehicleId]);
    return rows[0] ? toTrip(rows[0]) : undefined;
  }

  // --- positions and zones -----------------------------------------------------------------

  /** Where the CRM believes the vehicle is now: its latest fix among those already received. */
  async visiblePosition(vehicleId: number, q: Queryable = this.db): Promise<Position | undefined> {
    const { rows } = await q.query<{ lat: number; lon: number; recordedMs: number; visibleMs: number }>(
      `SELECT lat, lon, (extract(epoch FROM recorded_at) * 1000)::float8 AS "recordedMs", (extract(epoch FROM visible_at) * 1000)::float8 AS "visibleMs"
       FROM fleet_positions
       WHERE vehicle_id = $1 AND visible_at IS NOT NULL AND visible_at <= $2::timestamptz
       ORDER BY recorded_at DESC, id DESC LIMIT 1`,
      [vehicleId, this.clock()],
    );
    const r = rows[0];
    return r ? { lat: r.lat, lon: r.lon, recordedAt: new Date(r.recordedMs), visibleAt: new Date(r.visibleMs) } : undefined;
  }

  async zones(q: Queryable = this.db): Promise<Zone[]> {
    const { rows } = await q.query<{ zoneId: number; name: string; kind: ZoneKind; lat: number | null; lon: number | null; radiusM: number | null; polygon: unknown }>(
      `SELECT id AS "zoneId", name, kind, center_lat AS lat, center_lon AS lon, radius_m AS "radiusM", polygon
       FROM geo_zones WHERE active ORDER BY id`,
    );
    return rows.map((r) => ({
      zoneId: r.zoneId,
      name: r.name,
      kind: r.kind,
      shape:
        r.polygon !== null
          ? { kind: 'polygon', points: parsePolygon(typeof r.polygon === 'string' ? (JSON.parse(r.polygon) as unknown) : r.polygon) }
          : { kind: 'circle', lat: r.lat!, lon: r.lon!, radiusM: r.radiusM! },
    }));
  }

  /** The vehicle's visible position and what the zones make of it. */
  async geofence(vehicleId: number, q: Queryable = this.db): Promise<GeofenceReading> {
    const [position, zones] = await Promise.all([this.visiblePosition(vehicleId, q), this.zones(q)]);
    if (!position) return { position: undefined, verdict: { verdict: 'outside', ...nearest(zones, undefined) } };
    return { position, verdict: classifyPosition(position, zones) };
  }

  /**
   * Ask the vehicle where it is: fixes still on their way (transit) become visible their
   * transit time from now. Returns how many fixes were released. Recorded as an event.
   */
  async requestLocate(q: Queryable, req: { vehicleId: number; tripId: number | null; callId: string | null }): Promise<number> {
    const now = this.clock();
    const res = await q.query(
      `UPDATE fleet_positions SET visible_at = $2::timestamptz + make_interval(secs => transit_ms / 1000.0)
       WHERE vehicle_id = $1 AND visible_at IS NULL`,
      [req.vehicleId, now],
    );
    await this.recordEvent(q, { vehicleId: req.vehicleId, tripId: req.tripId, kind: 'locate_requested', detail: { released_fixes: res.rowCount }, callId: req.callId });
    return res.rowCount;
  }

  /** Adds a fix (tests and the demo seed; a vehicle gateway would do the same). */
  async addPosition(
    q: Queryable,
    p: { vehicleId: number; lat: number; lon: number; recordedAt: Date; visibleAt?: Date | null; transitMs?: number | null },
  ): Promise<void> {
    await q.query('INSERT INTO fleet_positions (vehicle_id, lat, lon, recorded_at, visible_at, transit_ms) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6)', [
      p.vehicleId,
      p.lat,
      p.lon,
      p.recordedAt,
      p.visibleAt === undefined ? p.recordedAt : p.visibleAt,
      p.transitMs ?? null,
    ]);
  }

  // --- events ------------------------------------------------------------------------------

  async recordEvent(
    q: Queryable,
    e: { vehicleId: number; tripId: number | null; kind: FleetEventKind; detail?: Record<string, unknown>; callId: string | null },
  ): Promise<void> {
    await q.query('INSERT INTO fleet_events (vehicle_id, trip_id, kind, detail, call_id, created_at) VALUES ($1, $2, $3, $4::text::jsonb, $5, $6::timestamptz)', [
      e.vehicleId,
      e.tripId,
      e.kind,
      JSON.stringify(e.detail ?? {}),
      e.callId,
      this.clock(),
    ]);
  }

  async events(q: Queryable, where: { tripId?: number; vehicleId?: number }): Promise<{ kind: FleetEventKind; detail: Record<string, unknown>; callId: string | null; tripId: number | null }[]> {
    const conds: string[] = [];
    const params: SqlValue[] = [];
    if (where.tripId !== undefined) {
      params.push(where.tripId);
      conds.push(`trip_id = $${params.length}`);
    }
    if (where.vehicleId !== undefined) {
      params.push(where.vehicleId);
      conds.push(`vehicle_id = $${params.length}`);
    }
    const { rows } = await q.query<{ kind: FleetEventKind; detail: Record<string, unknown>; callId: string | null; tripId: number | null }>(
      `SELECT kind, detail, call_id AS "callId", trip_id AS "tripId" FROM fleet_events ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY id`,
      params,
    );
    return rows;
  }

  // --- actions -----------------------------------------------------------------------------

  /**
   * Remote restart of a vehicle (its lock controller). A transient lock fault is cleared and
   * the lock answers again (unlocked during a trip, locked otherwise); a persistent one is
   * not. Refused past `maxRestarts` restarts of the vehicle within `windowMs`.
   */
  async restartVehicle(
    tx: Queryable,
    req: { vehicleId: number; tripId: number | null; callId: string | null; maxRestarts: number; windowMs: number },
  ): Promise<RestartOutcome> {
    const now = this.clock();
    const before = await this.vehicle(req.vehicleId, tx, true);
    if (!before) throw new MicromobilityError('not_found', 'I could not find that vehicle.');
    if (before.status === 'maintenance') throw new MicromobilityError('invalid_state', `Vehicle ${spaced(before.code)} is out of service, so it cannot be restarted remotely.`);
    const { rows: recent } = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fleet_events WHERE vehicle_id = $1 AND kind = 'restart' AND created_at > $2::timestamptz`,
      [req.vehicleId, new Date(now.getTime() - req.windowMs)],
    );
    const earlier = recent[0]!.n;
    if (earlier >= req.maxRestarts) {
      throw new MicromobilityError(
        'rate_limited',
        `Vehicle ${spaced(before.code)} has already been restarted ${earlier} times in the last few minutes; another restart will not help.`,
      );
    }
    let lockState: LockState = before.lockState;
    let lockFault: LockFault = before.lockFault;
    if (before.lockFault === 'transient') {
      lockFault = 'none';
      lockState = before.status === 'in_trip' ? 'unlocked' : 'locked';
    } else if (before.lockFault === 'none' && before.lockState === 'not_responding') {
      lockState = before.status === 'in_trip' ? 'unlocked' : 'locked';
    }
    await tx.query('UPDATE fleet_vehicles SET lock_state = $2, lock_fault = $3, restarted_at = $4::timestamptz, updated_at = $4::timestamptz WHERE id = $1', [
      req.vehicleId,
      lockState,
      lockFault,
      now,
    ]);
    const lockResponding = lockState !== 'not_responding';
    await this.recordEvent(tx, {
      vehicleId: req.vehicleId,
      tripId: req.tripId,
      kind: 'restart',
      detail: { lock_state_before: before.lockState, lock_state_after: lockState, lock_responding: lockResponding },
      callId: req.callId,
    });
    return { vehicle: { ...before, lockState, lockFault }, lockResponding, restartsInWindow: earlier + 1 };
  }

  /**
   * Ends an active trip now. `billableUntil` (when the vehicle was really parked) waives the
   * minutes after it, with `waiveReason`. The vehicle becomes available and locked.
   */
  async endTrip(
    tx: Queryable,
    req: { tripId: number; endedBy: 'rider' | 'agent' | 'operator'; callId: string | null; billableUntil?: Date | undefined; waiveReason?: string | undefined },
  ): Promise<Trip> {
    const trip = await this.trip(req.tripId, tx, true);
    if (!trip) throw new MicromobilityError('no_trip', 'I could not find that trip.');
    if (trip.status !== 'active') throw new MicromobilityError('invalid_state', 'That trip has already ended.');
    const now = this.clock();
    const bill = tripBill(trip, now, req.billableUntil);
    const waiveReason = bill.waivedMinutes > 0 ? (req.waiveReason ?? 'waived by support') : null;
    await tx.query(
      `UPDATE trips SET status = 'ended', ended_at = $2::timestamptz, minutes = $3, waived_minutes = $4, waive_reason = $5, charge_cents = $6,
              ended_by = $7, end_call_id = $8, updated_at = $2::timestamptz
       WHERE id = $1`,
      [trip.tripId, bill.endedAt, bill.minutes, bill.waivedMinutes, waiveReason, bill.chargeCents, req.endedBy, req.callId],
    );
    await tx.query(`UPDATE fleet_vehicles SET status = 'available', lock_state = 'locked', updated_at = $2::timestamptz WHERE id = $1`, [trip.vehicle.vehicleId, now]);
    await this.recordEvent(tx, {
      vehicleId: trip.vehicle.vehicleId,
      tripId: trip.tripId,
      kind: 'trip_ended',
      detail: { minutes: bill.minutes, charge_cents: bill.chargeCents, ended_by: req.endedBy },
      callId: req.callId,
    });
    if (bill.waivedMinutes > 0) {
      await this.recordEvent(tx, {
        vehicleId: trip.vehicle.vehicleId,
        tripId: trip.tripId,
        kind: 'minutes_waived',
        detail: { waived_minutes: bill.waivedMinutes, reason: waiveReason, billable_until: req.billableUntil?.toISOString() },
        callId: req.callId,
      });
    }
    return (await this.trip(trip.tripId, tx))!;
  }

  /** A support ticket in the CRM's tickets table, linked to the trip and vehicle it is about. */
  async createTicket(
    tx: Queryable,
    req: { customerId: number | null; callerNumber: string | null; callId: string | null; topic: TicketTopic; summary: string; tripId: number | null; vehicleId: number | null },
  ): Promise<MicromobilityTicket> {
    const category = TOPIC_CATEGORY[req.topic];
    const now = this.clock();
    const { rows } = await tx.query<{ ticketId: number; status: string }>(
      `INSERT INTO tickets (customer_id, caller_number, call_id, category, summary, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $6::timestamptz) RETURNING id AS "ticketId", status`,
      [req.customerId, req.callerNumber, req.callId, category, req.summary, now],
    );
    const t = rows[0]!;
    await tx.query('INSERT INTO trip_tickets (ticket_id, trip_id, vehicle_id, topic) VALUES ($1, $2, $3, $4)', [t.ticketId, req.tripId, req.vehicleId, req.topic]);
    return { ticketId: t.ticketId, category, topic: req.topic, tripId: req.tripId, vehicleId: req.vehicleId, status: t.status };
  }

  /** The stored result of an idempotent tool call, if the key was used before. */
  async storedToolResult(key: string, q: Queryable = this.db): Promise<{ tool: string; requestHash: string; result: unknown } | undefined> {
    const { rows } = await q.query<{ tool: string; requestHash: string; result: unknown }>(
      'SELECT tool, request_hash AS "requestHash", result FROM tool_idempotency WHERE key = $1',
      [key],
    );
    return rows[0];
  }
}

// --- billing -----------------------------------------------------------------------------------

export interface TripBill {
  endedAt: Date;
  /** Ridden, start to end, rounded up to whole minutes (at least 1). */
  minutes: number;
  waivedMinutes: number;
  billedMinutes: number;
  chargeCents: number;
}

/** What a trip ending at `endedAt` costs, when only the minutes up to `billableUntil` are charged. */
export function tripBill(trip: Pick<Trip, 'startedAt' | 'unlockFeeCents' | 'perMinuteCents'>, endedAt: Date, billableUntil?: Date): TripBill {
  const end = endedAt.getTime() < trip.startedAt.getTime() ? trip.startedAt : endedAt;
  const minutes = Math.max(1, Math.ceil((end.getTime() - trip.startedAt.getTime()) / 60_000));
  let billedMinutes = minutes;
  if (billableUntil) billedMinutes = Math.min(minutes, Math.max(1, Math.ceil((billableUntil.getTime() - trip.startedAt.getTime()) / 60_000)));
  return { endedAt: end, minutes, waivedMinutes: minutes - billedMinutes, billedMinutes, chargeCents: trip.unlockFeeCents + trip.perMinuteCents * billedMinutes };
}

// --- geometry ----------------------------------------------------------------------------------

const EARTH_RADIUS_M = 6_371_008.8;

/** Great-circle distance in metres. */
export function distanceM(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const rad = Math.PI / 180;
  const dLat = (bLat - aLat) * rad;
  const dLon = (bLon - aLon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * rad) * Math.cos(bLat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Metres east (x) and north (y) of (lat0, lon0): a flat projection, good over a few km. */
function project(lat0: number, lon0: number, lat: number, lon: number): [number, number] {
  const rad = Math.PI / 180;
  return [(lon - lon0) * rad * EARTH_RADIUS_M * Math.cos(lat0 * rad), (lat - lat0) * rad * EARTH_RADIUS_M];
}

/** Whether the point is inside the zone's shape. */
export function inZone(lat: number, lon: number, shape: ZoneShape): boolean {
  if (shape.kind === 'circle') return distanceM(lat, lon, shape.lat, shape.lon) <= shape.radiusM;
  const pts = shape.points.map(([la, lo]) => project(lat, lon, la, lo));
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i]!;
    const [xj, yj] = pts[j]!;
    if (yi > 0 !== yj > 0 && 0 < ((xj - xi) * (0 - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Metres from the point to the zone (0 inside it). */
export function distanceToZone(lat: number, lon: number, shape: ZoneShape): number {
  if (shape.kind === 'circle') return Math.max(0, distanceM(lat, lon, shape.lat, shape.lon) - shape.radiusM);
  if (inZone(lat, lon, shape)) return 0;
  const pts = shape.points.map(([la, lo]) => project(lat, lon, la, lo));
  let best = Infinity;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) best = Math.min(best, segmentDistance(pts[j]!, pts[i]!));
  return best;
}

/** Metres from a point inside the shape to its edge. */
function distanceToEdge(lat: number, lon: number, shape: ZoneShape): number {
  if (shape.kind === 'circle') return Math.max(0, shape.radiusM - distanceM(lat, lon, shape.lat, shape.lon));
  const pts = shape.points.map(([la, lo]) => project(lat, lon, la, lo));
  let best = Infinity;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) best = Math.min(best, segmentDistance(pts[j]!, pts[i]!));
  return best;
}

/** Distance from the origin to the segment a-b. */
function segmentDistance(a: readonly [number, number], b: readonly [number, number]): number {
  const [ax, ay] = a;
  const dx = b[0] - ax;
  const dy = b[1] - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len2));
  return Math.hypot(ax + t * dx, ay + t * dy);
}

/** Red zones win over parking areas; outside both, the vehicle is not parked where a trip may end. */
export function classifyPosition(p: { lat: number; lon: number }, zones: readonly Zone[]): ZoneVerdict {
  const red = zones.find((z) => z.kind === 'red' && inZone(p.lat, p.lon, z.shape));
  if (red) {
    const near = nearest(zones, p).nearestAllowed;
    // A red zone inside a parking area (a station's doors): the way out is the red zone's edge.
    if (near && near.distanceM === 0) Object.assign(near, { distanceM: distanceToEdge(p.lat, p.lon, red.shape), within: true });
    return near ? { verdict: 'red', zone: red, nearestAllowed: near } : { verdict: 'red', zone: red };
  }
  const allowed = zones.find((z) => z.kind === 'allowed' && inZone(p.lat, p.lon, z.shape));
  if (allowed) return { verdict: 'allowed', zone: allowed };
  return { verdict: 'outside', ...nearest(zones, p) };
}

/**
 * The nearest parking area to the point. For a point in a red zone the answer is measured
 * from the point itself (a parking area the red zone overlaps counts only outside the red part
 * — good enough: it is where to head for).
 */
function nearest(zones: readonly Zone[], p: { lat: number; lon: number } | undefined): Pick<ZoneVerdict, 'nearestAllowed'> {
  if (!p) return {};
  let best: { zone: Zone; distanceM: number } | undefined;
  for (const z of zones) {
    if (z.kind !== 'allowed') continue;
    const d = distanceToZone(p.lat, p.lon, z.shape);
    if (!best || d < best.distanceM) best = { zone: z, distanceM: d };
  }
  return best ? { nearestAllowed: best } : {};
}

function parsePolygon(v: unknown): [number, number][] {
  if (!Array.isArray(v)) return [];
  return v.filter((p): p is [number, number] => Array.isArray(p) && p.length === 2 && typeof p[0] === 'number' && typeof p[1] === 'number');
}

/** "4217" -> "4 2 1 7": how a vehicle number is said. */
export function spaced(code: string): string {
  return code.split('').join(' ');
}
