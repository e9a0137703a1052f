/**
 * The CRM's data access: customers by phone or name, orders, service appointments on the
 * slot grid, tickets. Every statement is parameterised. Writes take the transaction they run
 * in (see runIdempotent) so the caller decides the transaction boundary; reads default to
 * the Db.
 *
 * Business rules live here and fail with CrmError, whose message is plain words a voice
 * agent can relay; no SQL, ids of other customers or stack traces ever appear in it.
 * Authorisation (whose data a caller may see or change) is decided by the caller of this
 * module and passed in as `ownerId`: null means "any customer" (staff), a number restricts
 * the operation to that customer's rows.
 */
import { sqlState, type Db, type Queryable, type SqlValue } from './db.js';
import { escapeLike } from './sql.js';
import { addDays, daysBetween, gridProblem, gridStarts, hhmm, isOpenOn, localDate, minutesOf, serviceMinutes, weekdayOf, type Schedule } from './schedule.js';

export type CrmErrorCode =
  | 'not_found'
  | 'not_yours'
  | 'invalid_state'
  | 'slot_taken'
  | 'past'
  | 'too_far'
  | 'closed'
  | 'outside_hours'
  | 'off_grid'
  | 'vehicle_not_found'
  | 'vehicle_ambiguous'
  | 'invalid';

export class CrmError extends Error {
  override readonly name = 'CrmError';
  constructor(
    readonly code: CrmErrorCode,
    /** Speakable: the model may relay it to the caller as is. */
    message: string,
  ) {
    super(message);
  }
}

export const ORDER_STATUSES = ['placed', 'processing', 'shipped', 'out_for_delivery', 'delivered', 'cancelled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const TICKET_CATEGORIES = ['complaint', 'order', 'delivery', 'billing', 'appointment', 'vehicle', 'technical', 'other'] as const;
export type TicketCategory = (typeof TICKET_CATEGORIES)[number];
export type AppointmentStatus = 'booked' | 'cancelled' | 'completed' | 'no_show';

/** Orders whose address may still be changed: nothing has left the warehouse. */
const ADDRESS_CHANGEABLE: readonly OrderStatus[] = ['placed', 'processing'];
/** Orders that can still be cancelled. */
const CANCELLABLE: readonly OrderStatus[] = ['placed', 'processing', 'shipped', 'out_for_delivery'];

export interface Vehicle {
  vehicleId: number;
  make: string;
  model: string;
  year: number | null;
  plate: string | null;
}

export interface Appointment {
  appointmentId: number;
  customerId: number;
  service: string;
  status: AppointmentStatus;
  /** Local date and times in the business's time zone. */
  date: string;
  weekday: string;
  time: string;
  endTime: string;
  /** Instant, ISO 8601 UTC. */
  startsAt: string;
  vehicle: Vehicle | null;
}

export interface OrderItem {
  name: string;
  quantity: number;
}

export interface Order {
  orderId: number;
  customerId: number;
  status: OrderStatus;
  address: string;
  items: OrderItem[];
  expectedOn: string | null;
  /** ISO 8601 UTC. */
  updatedAt: string;
}

export interface CustomerProfile {
  customerId: number;
  firstName: string;
  lastName: string;
  language: string;
  phones: string[];
  vehicles: Vehicle[];
  /** Orders not yet delivered or cancelled, newest first. */
  openOrders: { orderId: number; status: OrderStatus; expectedOn: string | null }[];
  upcomingAppointments: Appointment[];
}

export interface CustomerMatch {
  customerId: number;
  firstName: string;
  lastName: string;
  phones: string[];
  vehicles: Vehicle[];
}

export interface Ticket {
  ticketId: number;
  customerId: number | null;
  category: TicketCategory;
  summary: string;
  status: string;
  createdAt: string;
}

export interface DaySlots {
  date: string;
  weekday: string;
  service: string | null;
  minutes: number;
  /** Free start times, "HH:MM" local. */
  slots: string[];
}

const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS"Z"'`;

/** Columns of an appointment view; `tz` is the placeholder of the time zone parameter. */
function appointmentColumns(tz: string): string {
  return `a.id AS "appointmentId", a.customer_id AS "customerId", a.service, a.status,
    to_char(a.starts_at AT TIME ZONE ${tz}, 'YYYY-MM-DD') AS date,
    to_char(a.starts_at AT TIME ZONE ${tz}, 'FMDay') AS weekday,
    to_char(a.starts_at AT TIME ZONE ${tz}, 'HH24:MI') AS time,
    to_char(a.ends_at AT TIME ZONE ${tz}, 'HH24:MI') AS "endTime",
    to_char(a.starts_at AT TIME ZONE 'UTC', ${ISO_UTC}) AS "startsAt",
    CASE WHEN v.id IS NULL THEN NULL
         ELSE json_build_object('vehicleId', v.id, 'make', v.make, 'model', v.model, 'year', v.year, 'plate', v.plate) END AS vehicle`;
}

const ORDER_COLUMNS = `o.id AS "orderId", o.customer_id AS "customerId", o.status, o.address, o.items,
  to_char(o.expected_on, 'YYYY-MM-DD') AS "expectedOn",
  to_char(o.updated_at AT TIME ZONE 'UTC', ${ISO_UTC}) AS "updatedAt"`;

export interface CrmStoreOptions {
  schedule: Schedule;
  /** Current time (tests move it). */
  clock?: () => Date;
}

export class CrmStore {
  readonly schedule: Schedule;
  private readonly clock: () => Date;

  constructor(
    readonly db: Db,
    opts: CrmStoreOptions,
  ) {
    this.schedule = opts.schedule;
    this.clock = opts.clock ?? (() => new Date());
  }

  now(): Date {
    return this.clock();
  }

  /** Today's date in the business's time zone. */
  today(): string {
    return localDate(this.clock(), this.schedule.timezone);
  }

  // --- customers -------------------------------------------------------------------------

  async customerIdByPhone(phone: string, q: Queryable = this.db): Promise<number | undefined> {
    const { rows } = await q.query<{ id: number }>('SELECT customer_id AS id FROM customer_phones WHERE phone = $1', [phone]);
    return rows[0]?.id;
  }

  async phonesOf(customerId: number, q: Queryable = this.db): Promise<string[]> {
    const { rows } = await q.query<{ phone: string }>('SELECT phone FROM customer_phones WHERE customer_id = $1 ORDER BY phone', [customerId]);
    return rows.map((r) => r.phone);
  }

  /** The customer a phone number belongs to, with vehicles, open orders and upcoming appointments. */
  async profileByPhone(phone: string, q: Queryable = this.db): Promise<CustomerProfile | undefined> {
    return this.profile(q, 'c.id = (SELECT customer_id FROM customer_phones WHERE phone = $3)', [phone]);
  }

  async profileById(customerId: number, q: Queryable = this.db): Promise<CustomerProfile | undefined> {
    return this.profile(q, 'c.id = $3', [customerId]);
  }

  private async profile(q: Queryable, where: string, params: SqlValue[]): Promise<CustomerProfile | undefined> {
    const { rows } = await q.query<CustomerProfile>(
      `SELECT c.id AS "customerId", c.first_name AS "firstName", c.last_name AS "lastName", c.language,
         (SELECT coalesce(json_agg(p.phone ORDER BY p.phone), '[]'::json) FROM customer_phones p WHERE p.customer_id = c.id) AS phones,
         (SELECT coalesce(json_agg(json_build_object('vehicleId', v.id, 'make', v.make, 'model', v.model, 'year', v.year, 'plate', v.plate)
                                   ORDER BY v.id), '[]'::json)
            FROM vehicles v WHERE v.customer_id = c.id) AS vehicles,
         (SELECT coalesce(json_agg(json_build_object('orderId', o.id, 'status', o.status,
                                                     'expectedOn', to_char(o.expected_on, 'YYYY-MM-DD'))
                                   ORDER BY o.updated_at DESC, o.id), '[]'::json)
            FROM orders o WHERE o.customer_id = c.id AND o.status NOT IN ('delivered', 'cancelled')) AS "openOrders",
         (SELECT coalesce(json_agg(row_to_json(x) ORDER BY x."startsAt"), '[]'::json)
            FROM (SELECT ${appointmentColumns('$1')}
                    FROM appointments a LEFT JOIN vehicles v ON v.id = a.vehicle_id
                   WHERE a.customer_id = c.id AND a.status = 'booked' AND a.starts_at > $2::timestamptz
                   ORDER BY a.starts_at LIMIT 10) x) AS "upcomingAppointments"
       FROM customers c WHERE ${where}`,
      [this.schedule.timezone, this.clock(), ...params],
    );
    return rows[0];
  }

  /**
   * Customers whose first and/or last name contain the given text, case-insensitively. The
   * text is matched literally: quotes, % and _ in it are characters, not SQL or wildcards.
   */
  async searchByName(first: string | undefined, last: string | undefined, limit: number): Promise<CustomerMatch[]> {
    const f = first?.trim() ? `%${escapeLike(collapse(first))}%` : null;
    const l = last?.trim() ? `%${escapeLike(collapse(last))}%` : null;
    if (f === null && l === null) return [];
    const { rows } = await this.db.query<CustomerMatch>(
      `SELECT c.id AS "customerId", c.first_name AS "firstName", c.last_name AS "lastName",
         (SELECT coalesce(json_agg(p.phone ORDER BY p.phone), '[]'::json) FROM customer_phones p WHERE p.customer_id = c.id) AS phones,
         (SELECT coalesce(json_agg(json_build_object('vehicleId', v.id, 'make', v.make, 'model', v.model, 'year', v.year, 'plate', v.plate)
                                   ORDER BY v.id), '[]'::json)
            FROM vehicles v WHERE v.customer_id = c.id) AS vehicles
       FROM customers c
       WHERE ($1::text IS NULL OR c.first_name ILIKE $1::text ESCAPE '\\')
         AND ($2::text IS NULL OR c.last_name ILIKE $2::text ESCAPE '\\')
       ORDER BY lower(c.last_name), lower(c.first_name), c.id
       LIMIT $3`,
      [f, l, limit],
    );
    return rows;
  }

  // --- orders ----------------------------------------------------------------------------

  async getOrder(orderId: number, q: Queryable = this.db): Promise<Order | undefined> {
    const { rows } = await q.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1`, [orderId]);
    return rows[0];
  }

  /** Locks the order row for the rest of the transaction and checks who may touch it. */
  private async lockOrder(tx: Queryable, orderId: number, ownerId: number | null): Promise<Order> {
    const { rows } = await tx.query<Order>(`SELECT ${ORDER_COLUMNS} FROM orders o WHERE o.id = $1 FOR UPDATE`, [orderId]);
    const order = rows[0];
    if (!order) throw new CrmError('not_found', `I couldn't find an order with the number ${orderId}.`);
    if (ownerId !== null && order.customerId !== ownerId) {
      throw new CrmError('not_yours', `Order ${orderId} is not linked to the phone number you are calling from, so I can't change it from this call.`);
    }
    return order;
  }

  async changeOrderAddress(tx: Queryable, orderId: number, address: string, ownerId: number | null): Promise<Order & { previousAddress: string }> {
    const order = await this.lockOrder(tx, orderId, ownerId);
    if (!ADDRESS_CHANGEABLE.includes(order.status)) {
      throw new CrmError('invalid_state', `The delivery address of order ${orderId} can't be changed any more: ${orderStateWords(order.status)}.`);
    }
    const { rows } = await tx.query<Order>(
      `UPDATE orders o SET address = $2, updated_at = $3::timestamptz WHERE o.id = $1 RETURNING ${ORDER_COLUMNS}`,
      [orderId, address, this.clock()],
    );
    return { ...rows[0]!, previousAddress: order.address };
  }

  async cancelOrder(tx: Queryable, orderId: number, ownerId: number | null): Promise<Order> {
    const order = await this.lockOrder(tx, orderId, ownerId);
    if (!CANCELLABLE.includes(order.status)) {
      throw new CrmError('invalid_state', `Order ${orderId} can't be cancelled: ${orderStateWords(order.status)}.`);
    }
    const { rows } = await tx.query<Order>(
      `UPDATE orders o SET status = 'cancelled', cancelled_at = $2::timestamptz, updated_at = $2::timestamptz WHERE o.id = $1 RETURNING ${ORDER_COLUMNS}`,
      [orderId, this.clock()],
    );
    return rows[0]!;
  }

  // --- slots -----------------------------------------------------------------------------

  /** Throws CrmError unless appointments can be booked on `date` at all. */
  checkBookableDate(date: string): void {
    const today = this.today();
    if (date < today) throw new CrmError('past', `${date} is in the past. Today is ${today}; please pick today or a later date.`);
    const ahead = daysBetween(today, date);
    if (ahead > this.schedule.maxDaysAhead) {
      throw new CrmError('too_far', `Appointments can be booked at most ${this.schedule.maxDaysAhead} days ahead, that is until ${addDays(today, this.schedule.maxDaysAhead)}.`);
    }
    const h = this.schedule.hours;
    if (h.closedDates.includes(date)) throw new CrmError('closed', `We are closed on ${date}.`);
    if (!isOpenOn(h, date)) {
      throw new CrmError('closed', `We don't take appointments on ${capitalise(weekdayName(date))}s. We are open ${openDaysWords(h.days)}.`);
    }
  }

  /** Free start times on `date` for `service` (one slot when no service is given). */
  async availableSlots(date: string, service?: string): Promise<DaySlots> {
    this.checkBookableDate(date);
    const minutes = serviceMinutes(this.schedule, service);
    const starts = gridStarts(this.schedule.hours, minutes).map((t) => `${date} ${t}`);
    const free = await this.freeStarts(this.db, starts, minutes);
    return { date, weekday: capitalise(weekdayName(date)), service: service ?? null, minutes, slots: free.map((s) => s.slice(11)) };
  }

  /** The first bookable date after `date` (within `days`) that has a free slot, if any. */
  async nextAvailable(date: string, service: string | undefined, days = 14): Promise<DaySlots | undefined> {
    const minutes = serviceMinutes(this.schedule, service);
    const today = this.today();
    const candidates: string[] = [];
    for (let i = 1; i <= days; i++) {
      const d = addDays(date < today ? today : date, i);
      if (daysBetween(today, d) > this.schedule.maxDaysAhead) break;
      if (!isOpenOn(this.schedule.hours, d)) continue;
      for (const t of gridStarts(this.schedule.hours, minutes)) candidates.push(`${d} ${t}`);
    }
    const free = await this.freeStarts(this.db, candidates, minutes);
    const first = free[0];
    if (!first) return undefined;
    const d = first.slice(0, 10);
    return { date: d, weekday: capitalise(weekdayName(d)), service: service ?? null, minutes, slots: free.filter((s) => s.startsWith(d)).map((s) => s.slice(11)) };
  }

  /**
   * Which of the local start times ("YYYY-MM-DD HH:MM") have a bay free for `minutes`,
   * and start no earlier than now plus the lead time. One query for any number of days.
   */
  private async freeStarts(q: Queryable, localStarts: readonly string[], minutes: number, excludeAppointment: number | null = null): Promise<string[]> {
    if (localStarts.length === 0) return [];
    const earliest = new Date(this.clock().getTime() + this.schedule.minLeadMinutes * 60_000);
    const { rows } = await q.query<{ local: string }>(
      `WITH cand AS (
         SELECT c.local, (c.local::timestamp AT TIME ZONE $1) AS s FROM unnest($2::text[]) AS c(local)
       )
       SELECT cand.local FROM cand
       WHERE cand.s >= $3::timestamptz
         AND EXISTS (
           SELECT 1 FROM generate_series(1, $4::int) AS b(bay)
           WHERE NOT EXISTS (
             SELECT 1 FROM appointments a
             WHERE a.status = 'booked' AND a.bay = b.bay AND ($6::int IS NULL OR a.id <> $6::int)
               AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(cand.s, cand.s + make_interval(mins => $5::int), '[)')))
       ORDER BY cand.s`,
      [this.schedule.timezone, [...localStarts], earliest, this.schedule.hours.bays, minutes, excludeAppointment],
    );
    return rows.map((r) => r.local);
  }

  /** The first bay free for [startsAt, endsAt), ignoring `excludeAppointment`. */
  private async freeBay(tx: Queryable, startsAt: Date, endsAt: Date, excludeAppointment: number | null): Promise<number | undefined> {
    const { rows } = await tx.query<{ bay: number }>(
      `SELECT b.bay FROM generate_series(1, $1::int) AS b(bay)
       WHERE NOT EXISTS (
         SELECT 1 FROM appointments a
         WHERE a.status = 'booked' AND a.bay = b.bay AND ($4::int IS NULL OR a.id <> $4::int)
           AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange($2::timestamptz, $3::timestamptz, '[)'))
       ORDER BY b.bay LIMIT 1`,
      [this.schedule.hours.bays, startsAt, endsAt, excludeAppointment],
    );
    return rows[0]?.bay;
  }

  /** Validates a requested start and turns it into instants (PostgreSQL applies the zone rules). */
  private async resolveSlot(q: Queryable, date: string, time: string, minutes: number): Promise<{ startsAt: Date; endsAt: Date }> {
    this.checkBookableDate(date);
    const h = this.schedule.hours;
    const problem = gridProblem(h, time, minutes);
    if (problem === 'outside_hours') {
      const lastStart = hhmm(minutesOf(h.close) - minutes);
      throw new CrmError('outside_hours', `We take appointments between ${h.open} and ${h.close}; this service must start by ${lastStart}.`);
    }
    if (problem === 'off_grid') {
      const before = minutesOf(h.open) + Math.floor((minutesOf(time) - minutesOf(h.open)) / h.slotMinutes) * h.slotMinutes;
      throw new CrmError('off_grid', `Appointments start every ${h.slotMinutes} minutes from ${h.open}, for example ${hhmm(before)} or ${hhmm(before + h.slotMinutes)}.`);
    }
    const { rows } = await q.query<{ s: Date; e: Date }>(
      `SELECT ($1::date + $2::time) AT TIME ZONE $3 AS s, ($1::date + $2::time + make_interval(mins => $4::int)) AT TIME ZONE $3 AS e`,
      [date, time, this.schedule.timezone, minutes],
    );
    const { s, e } = rows[0]!;
    const earliest = this.clock().getTime() + this.schedule.minLeadMinutes * 60_000;
    if (s.getTime() < earliest) {
      throw new CrmError('past', this.schedule.minLeadMinutes > 0 && s.getTime() >= this.clock().getTime()
        ? `That is too soon: appointments must be booked at least ${this.schedule.minLeadMinutes} minutes ahead.`
        : `${time} on ${date} has already passed.`);
    }
    return { startsAt: s, endsAt: e };
  }

  // --- appointments ----------------------------------------------------------------------

  async appointment(appointmentId: number, q: Queryable = this.db): Promise<Appointment | undefined> {
    const { rows } = await q.query<Appointment>(
      `SELECT ${appointmentColumns('$2')} FROM appointments a LEFT JOIN vehicles v ON v.id = a.vehicle_id WHERE a.id = $1`,
      [appointmentId, this.schedule.timezone],
    );
    return rows[0];
  }

  async upcomingAppointments(customerId: number, limit = 10): Promise<Appointment[]> {
    const { rows } = await this.db.query<Appointment>(
      `SELECT ${appointmentColumns('$2')} FROM appointments a LEFT JOIN vehicles v ON v.id = a.vehicle_id
       WHERE a.customer_id = $1 AND a.status = 'booked' AND a.starts_at > $3::timestamptz
       ORDER BY a.starts_at LIMIT $4`,
      [customerId, this.schedule.timezone, this.clock(), limit],
    );
    return rows;
  }

  /**
   * Which of the customer's vehicles `text` means: its id, its plate (spacing and case
   * ignored), or words of "year make model" ("the Camry", "2019 Toyota").
   */
  async resolveVehicle(customerId: number, text: string, q: Queryable = this.db): Promise<Vehicle> {
    const { rows } = await q.query<Vehicle>(
      'SELECT id AS "vehicleId", make, model, year, plate FROM vehicles WHERE customer_id = $1 ORDER BY id',
      [customerId],
    );
    if (rows.length === 0) throw new CrmError('vehicle_not_found', 'There are no vehicles on your account yet, so I booked nothing. I can book without a vehicle.');
    const wanted = text.trim();
    const plate = wanted.toUpperCase().replace(/[^A-Z0-9]/g, '');
    let matches = rows.filter((v) => String(v.vehicleId) === wanted || (v.plate !== null && v.plate === plate));
    if (matches.length === 0) {
      const words = wanted.toLowerCase().split(/[^\p{L}\p{N}-]+/u).filter((w) => w && !VEHICLE_STOP_WORDS.has(w));
      if (words.length > 0) {
        matches = rows.filter((v) => {
          const hay = `${v.year ?? ''} ${v.make} ${v.model} ${v.plate ?? ''}`.toLowerCase();
          return words.every((w) => hay.includes(w));
        });
      }
    }
    if (matches.length === 1) return matches[0]!;
    const list = rows.map(describeVehicle).join('; ');
    if (matches.length === 0) throw new CrmError('vehicle_not_found', `I couldn't find "${wanted}" among your vehicles: ${list}.`);
    throw new CrmError('vehicle_ambiguous', `"${wanted}" matches more than one of your vehicles: ${matches.map(describeVehicle).join('; ')}. Which one?`);
  }

  /** The customer's vehicle when they have exactly one, else null. */
  async soleVehicleId(customerId: number, q: Queryable = this.db): Promise<number | null> {
    const { rows } = await q.query<{ id: number }>('SELECT id FROM vehicles WHERE customer_id = $1 ORDER BY id LIMIT 2', [customerId]);
    return rows.length === 1 ? rows[0]!.id : null;
  }

  async bookAppointment(
    tx: Queryable,
    req: { customerId: number; date: string; time: string; service: string; vehicleId: number | null },
  ): Promise<Appointment> {
    const minutes = serviceMinutes(this.schedule, req.service);
    const { startsAt, endsAt } = await this.resolveSlot(tx, req.date, req.time, minutes);
    const id = await this.placeOnFreeBay(tx, req.date, req.time, startsAt, endsAt, null, async (bay) => {
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO appointments (customer_id, vehicle_id, service, bay, starts_at, ends_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7::timestamptz, $7::timestamptz) RETURNING id`,
        [req.customerId, req.vehicleId, canonicalService(this.schedule, req.service), bay, startsAt, endsAt, this.clock()],
      );
      return rows[0]!.id;
    });
    return (await this.appointment(id, tx))!;
  }

  /** Locks an appointment of `customerId` that can still be changed. */
  private async lockOwnAppointment(tx: Queryable, appointmentId: number, customerId: number): Promise<{ starts_at: Date; ends_at: Date; service: string }> {
    const { rows } = await tx.query<{ customer_id: number; status: AppointmentStatus; starts_at: Date; ends_at: Date; service: string }>(
      'SELECT customer_id, status, starts_at, ends_at, service FROM appointments WHERE id = $1 FOR UPDATE',
      [appointmentId],
    );
    const a = rows[0];
    // Someone else's appointment is "not found": its existence is none of this caller's business.
    if (!a || a.customer_id !== customerId) throw new CrmError('not_found', `I couldn't find appointment number ${appointmentId} on your account.`);
    if (a.status === 'cancelled') throw new CrmError('invalid_state', `Appointment ${appointmentId} is already cancelled.`);
    if (a.status !== 'booked' || a.starts_at.getTime() <= this.clock().getTime()) {
      throw new CrmError('invalid_state', `Appointment ${appointmentId} has already taken place, so it can't be changed.`);
    }
    return a;
  }

  async cancelAppointment(tx: Queryable, req: { appointmentId: number; customerId: number; reason: string | null }): Promise<Appointment> {
    await this.lockOwnAppointment(tx, req.appointmentId, req.customerId);
    await tx.query(`UPDATE appointments SET status = 'cancelled', cancel_reason = $2, updated_at = $3::timestamptz WHERE id = $1`, [
      req.appointmentId,
      req.reason,
      this.clock(),
    ]);
    return (await this.appointment(req.appointmentId, tx))!;
  }

  async rescheduleAppointment(tx: Queryable, req: { appointmentId: number; customerId: number; date: string; time: string }): Promise<Appointment & { previous: { date: string; time: string } }> {
    const current = await this.lockOwnAppointment(tx, req.appointmentId, req.customerId);
    const before = (await this.appointment(req.appointmentId, tx))!;
    const minutes = Math.round((current.ends_at.getTime() - current.starts_at.getTime()) / 60_000);
    const { startsAt, endsAt } = await this.resolveSlot(tx, req.date, req.time, minutes);
    await this.placeOnFreeBay(tx, req.date, req.time, startsAt, endsAt, req.appointmentId, async (bay) => {
      await tx.query('UPDATE appointments SET bay = $2, starts_at = $3::timestamptz, ends_at = $4::timestamptz, updated_at = $5::timestamptz WHERE id = $1', [
        req.appointmentId,
        bay,
        startsAt,
        endsAt,
        this.clock(),
      ]);
      return req.appointmentId;
    });
    const after = (await this.appointment(req.appointmentId, tx))!;
    return { ...after, previous: { date: before.date, time: before.time } };
  }

  /**
   * Puts an appointment on the first free bay. The exclusion constraint decides races: when
   * a concurrent transaction took the bay first (23P01, raised once it commits), this one
   * rolls back to the savepoint, looks again (READ COMMITTED: the next statement sees the
   * winner's row) and tries the next bay, until none is left.
   */
  private async placeOnFreeBay(
    tx: Queryable,
    date: string,
    time: string,
    startsAt: Date,
    endsAt: Date,
    excludeAppointment: number | null,
    write: (bay: number) => Promise<number>,
  ): Promise<number> {
    for (let attempt = 0; attempt <= this.schedule.hours.bays; attempt++) {
      const bay = await this.freeBay(tx, startsAt, endsAt, excludeAppointment);
      if (bay === undefined) break;
      await tx.query('SAVEPOINT place_on_bay');
      try {
        const id = await write(bay);
        await tx.query('RELEASE SAVEPOINT place_on_bay');
        return id;
      } catch (err) {
        await tx.query('ROLLBACK TO SAVEPOINT place_on_bay');
        if (sqlState(err) !== '23P01') throw err;
      }
    }
    throw new CrmError('slot_taken', `Sorry, ${time} on ${date} is not available any more.`);
  }

  /** Free start times on `date` near `time` (for offering alternatives after a refusal). */
  async alternativesNear(date: string, time: string, service: string | undefined, count = 3): Promise<string[]> {
    const { slots } = await this.availableSlots(date, service);
    const t = minutesOf(time);
    return [...slots].sort((a, b) => Math.abs(minutesOf(a) - t) - Math.abs(minutesOf(b) - t)).slice(0, count).sort();
  }

  // --- tickets ---------------------------------------------------------------------------

  async createTicket(
    tx: Queryable,
    req: { customerId: number | null; callerNumber: string | null; callId: string | null; category: TicketCategory; summary: string },
  ): Promise<Ticket> {
    const { rows } = await tx.query<Ticket>(
      `INSERT INTO tickets (customer_id, caller_number, call_id, category, summary, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $6::timestamptz)
       RETURNING id AS "ticketId", customer_id AS "customerId", category, summary, status,
                 to_char(created_at AT TIME ZONE 'UTC', ${ISO_UTC}) AS "createdAt"`,
      [req.customerId, req.callerNumber, req.callId, req.category, req.summary, this.clock()],
    );
    return rows[0]!;
  }
}

const VEHICLE_STOP_WORDS = new Set(['my', 'the', 'a', 'an', 'car', 'truck', 'vehicle', 'one', 'our', 'plate', 'number']);

export function describeVehicle(v: Vehicle): string {
  return `${v.year ? `${v.year} ` : ''}${v.make} ${v.model}${v.plate ? `, plate ${v.plate}` : ''}`;
}

function orderStateWords(status: OrderStatus): string {
  switch (status) {
    case 'shipped':
      return 'it has already been shipped';
    case 'out_for_delivery':
      return 'it is already out for delivery';
    case 'delivered':
      return 'it has already been delivered';
    case 'cancelled':
      return 'it has been cancelled';
    default:
      return `it is ${status}`;
  }
}

function canonicalService(schedule: Schedule, service: string): string {
  return schedule.services.find((s) => s.name.toLowerCase() === service.toLowerCase())?.name ?? service;
}

function collapse(s: string): string {
  return s.trim().replace(/\s+/g, ' ');
}

function weekdayName(date: string): string {
  return { sun: 'sunday', mon: 'monday', tue: 'tuesday', wed: 'wednesday', thu: 'thursday', fri: 'friday', sat: 'saturday' }[weekdayOf(date)];
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function openDaysWords(days: readonly string[]): string {
  const names: Record<string, string> = { sun: 'Sunday', mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday' };
  const order = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const sorted = order.filter((d) => days.includes(d));
  if (sorted.length === 0) return 'on no days';
  // Consecutive run ("Monday to Friday") when the days are contiguous in the week.
  const idx = sorted.map((d) => order.indexOf(d));
  const contiguous = idx.every((v, i) => i === 0 || v === idx[i - 1]! + 1);
  if (contiguous && sorted.length > 2) return `${names[sorted[0]!]} to ${names[sorted[sorted.length - 1]!]}`;
  return sorted.map((d) => names[d]).join(', ');
}
