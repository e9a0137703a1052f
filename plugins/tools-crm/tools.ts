/**
 * The CRM tools the model can call. Each has a zod schema (the conversation loop turns it
 * into the JSON schema the model sees and validates arguments with it; execute validates
 * again, so a direct call with bad arguments is refused the same way).
 *
 * What a tool returns is for the model to speak about: `ok:false` errors are plain sentences
 * (never SQL, stack traces or other customers' data). A database that cannot be reached is
 * reported as "<system> is not answering right now" with retryable:true.
 *
 * Writes (change_address, cancel_order, book_appointment, cancel_appointment,
 * reschedule_appointment, create_ticket) are not interruptible and are idempotent per
 * ctx.idempotencyKey: the result is stored with the write in one transaction and a retry
 * returns it without acting again. See policy.ts for who may see and change what.
 */
import { z } from 'zod';
import { isAbortError, type ToolContext, type ToolDefinition, type ToolResult } from '../../src/plugins/api.js';
import type { Logger } from '../../src/log.js';
import { isDbUnavailableError, sqlState, type Queryable } from '../../src/storage/db.js';
import { CrmError, TICKET_CATEGORIES, describeVehicle, type Appointment, type CrmStore, type CustomerProfile, type DaySlots, type Order } from '../../src/storage/crm.js';
import { IdempotencyConflictError, runIdempotent } from '../../src/storage/idempotency.js';
import { normalizePhone, phoneHint } from '../../src/storage/phone.js';
import { addDays, isIsoDate } from '../../src/storage/schedule.js';
import type { CustomerCache } from './cache.js';
import type { AccessPolicy, Caller } from './policy.js';

export interface CrmToolDeps {
  store: CrmStore;
  cache: CustomerCache;
  policy: AccessPolicy;
  log: Logger;
}

type Domain = 'customers' | 'orders' | 'bookings' | 'tickets';

/** What the caller hears when the database cannot be reached. */
export const UNAVAILABLE: Record<Domain, string> = {
  customers: 'The customer system is not answering right now.',
  orders: 'The order system is not answering right now.',
  bookings: 'The booking system is not answering right now.',
  tickets: 'The ticket system is not answering right now.',
};

const INTERNAL_ERROR = 'Something went wrong on our side, so I could not do that. A colleague can help.';
const READ_TIMEOUT_MS = 5000;
const WRITE_TIMEOUT_MS = 10_000;

// --- argument schemas --------------------------------------------------------------------

/** A number the model may send as a number or as spoken digits ("10 234"). */
function numericId(label: string, maxDigits: number): z.ZodType<number | string> {
  return z
    .union([z.number().int().min(1), z.string().regex(/^\s*\d[\d\s-]*$/, `${label} must be digits`)])
    .refine((v) => parseNumericId(v, maxDigits) !== undefined, `${label} has at most ${maxDigits} digits`);
}

function parseNumericId(v: number | string, maxDigits: number): number | undefined {
  const digits = typeof v === 'number' ? String(v) : v.replace(/\D/g, '');
  if (!/^\d+$/.test(digits) || digits.length > maxDigits) return undefined;
  const n = Number(digits);
  return n >= 1 ? n : undefined;
}

const DateArg = z
  .string()
  .refine((v) => v === 'today' || v === 'tomorrow' || isIsoDate(v), 'must be a date as YYYY-MM-DD (or "today" / "tomorrow")')
  .describe('Date as YYYY-MM-DD in the business time zone; "today" and "tomorrow" are accepted.');
const TimeArg = z
  .string()
  .regex(/^([01]?\d|2[0-3]):[0-5]\d$/, 'must be a 24-hour time such as "09:30" or "14:00"')
  .describe('Start time, 24-hour "HH:MM", one of the free slots.');

const OrderId = numericId('order_id', 6).describe('The order number the caller reads out (digits).');
const AppointmentId = numericId('appointment_id', 9).describe('appointment_id from get_upcoming_appointments or book_appointment.');

const NoControlChars = (s: string): boolean => !/[\u0000-\u001f\u007f]/.test(s);

// --- presenters: exactly what the model gets to see --------------------------------------

function presentAppointment(a: Appointment): Record<string, unknown> {
  return {
    appointment_id: a.appointmentId,
    service: a.service,
    date: a.date,
    weekday: a.weekday,
    time: a.time,
    end_time: a.endTime,
    vehicle: a.vehicle ? describeVehicle(a.vehicle) : null,
    status: a.status,
  };
}

function presentProfile(p: CustomerProfile, staff: boolean): Record<string, unknown> {
  return {
    found: true,
    customer_id: p.customerId,
    first_name: p.firstName,
    last_name: p.lastName,
    language: p.language,
    ...(staff ? { phones: p.phones } : {}),
    vehicles: p.vehicles.map((v) => ({ vehicle_id: v.vehicleId, description: describeVehicle(v) })),
    open_orders: p.openOrders.map((o) => ({ order_id: o.orderId, status: statusWords(o.status), expected_on: o.expectedOn })),
    upcoming_appointments: p.upcomingAppointments.map(presentAppointment),
  };
}

function presentOrder(o: Order): Record<string, unknown> {
  return {
    order_id: o.orderId,
    status: statusWords(o.status),
    expected_on: o.expectedOn,
    items: o.items.map((i) => `${i.quantity} × ${i.name}`),
    delivery_address: o.address,
    last_update: o.updatedAt,
  };
}

function presentSlots(d: DaySlots): Record<string, unknown> {
  return { date: d.date, weekday: d.weekday, service: d.service, duration_minutes: d.minutes, free_start_times: d.slots };
}

function statusWords(status: string): string {
  return status.replace(/_/g, ' ');
}

// --- the tools ---------------------------------------------------------------------------

export function buildCrmTools(deps: CrmToolDeps): ToolDefinition<any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { store, cache, policy } = deps;
  const serviceNames = store.schedule.services.map((s) => s.name) as [string, ...string[]];
  const Service = z.enum(serviceNames).describe(`One of: ${serviceNames.join(', ')}.`);

  /** Profile of the customer a phone number identifies: Redis first, then PostgreSQL. */
  const profileOf = async (phone: string): Promise<CustomerProfile | undefined> => {
    const cached = await cache.get(phone);
    if (cached) return cached;
    const profile = await store.profileByPhone(phone);
    if (profile) await cache.set(profile);
    return profile;
  };

  const invalidateCustomer = async (customerId: number, log: Logger): Promise<void> => {
    try {
      await cache.invalidate(await store.phonesOf(customerId));
    } catch (err) {
      // The write has committed; a failed invalidation only shortens to the cache TTL.
      log.warn({ err: errText(err), customerId }, 'could not invalidate the customer cache after a write');
    }
  };

  /** Runs a write once per idempotency key, then drops the customer's cached profile. */
  const idempotentWrite = async <T>(
    ctx: ToolContext,
    tool: string,
    args: unknown,
    fn: (tx: Queryable) => Promise<{ data: T; customerId: number | null }>,
  ): Promise<ToolResult> => {
    const { result, replayed } = await runIdempotent(store.db, { key: ctx.idempotencyKey, tool, args }, fn);
    if (replayed) ctx.log.info({ tool }, 'retried tool call: returning the stored result');
    else if (result.customerId !== null) await invalidateCustomer(result.customerId, ctx.log);
    return { ok: true, data: result.data };
  };

  /** The caller's customer id, read in the write's own transaction (never from the cache). */
  const callerCustomerIn = async (tx: Queryable, caller: Caller): Promise<number> => {
    if (!caller.number) throw new CrmError('not_found', WITHHELD);
    const id = await store.customerIdByPhone(caller.number, tx);
    if (id === undefined) throw new CrmError('not_found', NO_ACCOUNT);
    return id;
  };

  const resolveDate = (d: string): string => (d === 'today' ? store.today() : d === 'tomorrow' ? addDays(store.today(), 1) : d);
  const resolveTime = (t: string): string => t.padStart(5, '0');

  const tool = <S extends z.ZodType>(def: {
    name: string;
    description: string;
    parameters: S;
    domain: Domain;
    write: boolean;
    filler: string;
    run: (args: z.output<S>, ctx: ToolContext, caller: Caller) => Promise<ToolResult>;
  }): ToolDefinition<z.output<S>> => ({
    name: def.name,
    description: def.description,
    parameters: def.parameters as unknown as z.ZodType<z.output<S>>,
    timeoutMs: def.write ? WRITE_TIMEOUT_MS : READ_TIMEOUT_MS,
    interruptible: !def.write,
    filler: def.filler,
    execute: async (args, ctx) => {
      ctx.signal.throwIfAborted();
      const parsed = def.parameters.safeParse(args);
      if (!parsed.success) {
        return { ok: false, error: `I could not use those details: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'} ${i.message}`).join('; ')}.` };
      }
      try {
        return await def.run(parsed.data, ctx, policy.caller(ctx.callerNumber));
      } catch (err) {
        return failure(err, def.name, def.domain, ctx);
      }
    },
  });

  const lookupCustomer = tool({
    name: 'lookup_customer',
    description:
      "Find the caller's customer account from the number they are calling from: name, preferred language, vehicles, open orders and upcoming appointments. " +
      'Call it at the start of the call. Leave `phone` out: only staff may look up a different number.',
    parameters: z.strictObject({
      phone: z.string().min(3).max(40).optional().describe('Omit to use the caller’s own number. Staff only: another customer’s number.'),
    }),
    domain: 'customers',
    write: false,
    filler: 'Let me pull up your account.',
    run: async (args, _ctx, caller) => {
      let target = caller.number;
      if (args.phone !== undefined) {
        const asked = normalizePhone(args.phone, policy.phoneRules);
        if (!asked) return { ok: false, error: `"${args.phone}" is not a phone number I can look up.` };
        if (!policy.mayLookUp(caller, asked)) {
          return {
            ok: false,
            error: 'For privacy I can only look up the account of the number you are calling from. Please call from the number on your account, or I can connect you to a colleague.',
          };
        }
        target = asked;
      }
      if (!target) return { ok: true, data: { found: false, reason: 'The caller’s number is withheld, so no account can be matched.' } };
      const profile = await profileOf(target);
      if (!profile) return { ok: true, data: { found: false, reason: 'No customer account has this phone number.' } };
      return { ok: true, data: presentProfile(profile, caller.isStaff) };
    },
  });

  const searchByName = tool({
    name: 'search_customers_by_name',
    description:
      'Search customers by first and/or last name (partial, case-insensitive), e.g. when the caller’s number is not on file. ' +
      'A name match does not verify anyone: bookings and changes only ever apply to the account of the number the caller is calling from.',
    parameters: z
      .strictObject({
        first: z.string().max(50).refine(NoControlChars, 'contains control characters').optional().describe('First name or its beginning.'),
        last: z.string().max(50).refine(NoControlChars, 'contains control characters').optional().describe('Last name or part of it.'),
      })
      .refine((a) => (a.first?.trim().length ?? 0) >= 2 || (a.last?.trim().length ?? 0) >= 2, {
        message: 'give a first or last name of at least 2 letters',
      }),
    domain: 'customers',
    write: false,
    filler: 'Let me search for that name.',
    run: async (args, _ctx, caller) => {
      const limit = caller.isStaff ? 20 : 5;
      const matches = await store.searchByName(args.first, args.last, limit);
      return {
        ok: true,
        data: {
          count: matches.length,
          customers: matches.map((m) => ({
            customer_id: m.customerId,
            first_name: m.firstName,
            last_name: m.lastName,
            ...(caller.isStaff
              ? { phones: m.phones, vehicles: m.vehicles.map(describeVehicle) }
              : { phone_hints: m.phones.map(phoneHint) }),
          })),
        },
      };
    },
  });

  const getOrderStatus = tool({
    name: 'get_order_status',
    description: 'Status, expected delivery date and details of an order, by the order number the caller reads out.',
    parameters: z.strictObject({ order_id: OrderId }),
    domain: 'orders',
    write: false,
    filler: 'Let me check on that order.',
    run: async (args, _ctx, caller) => {
      const orderId = parseNumericId(args.order_id, 6)!;
      const order = await store.getOrder(orderId);
      if (!order) return { ok: false, error: `I couldn't find an order with the number ${orderId}. Could you read me the number again?` };
      const mine = caller.number ? await profileOf(caller.number) : undefined;
      if (policy.mayManageOrder(caller, mine?.customerId, order.customerId)) return { ok: true, data: presentOrder(order) };
      return {
        ok: true,
        data: {
          order_id: order.orderId,
          status: statusWords(order.status),
          expected_on: order.expectedOn,
          note: 'This order is not linked to the number the caller is calling from: share only the status and expected date, no other details.',
        },
      };
    },
  });

  const changeAddress = tool({
    name: 'change_address',
    description:
      'Change the delivery address of one of the caller’s orders (possible until it ships). Read the full new address back to the caller and get a yes before calling.',
    parameters: z.strictObject({
      order_id: OrderId,
      address: z
        .string()
        .min(5, 'address is too short')
        .max(300)
        .refine(NoControlChars, 'contains control characters')
        .describe('Full new delivery address: street and number, city, postal code.'),
    }),
    domain: 'orders',
    write: true,
    filler: 'One moment while I update the address.',
    run: async (args, ctx, caller) => {
      const orderId = parseNumericId(args.order_id, 6)!;
      const address = args.address.trim().replace(/\s+/g, ' ');
      return idempotentWrite(ctx, 'change_address', { order_id: orderId, address }, async (tx) => {
        const owner = await orderOwnerFor(tx, caller);
        const order = await store.changeOrderAddress(tx, orderId, address, owner);
        return {
          data: { order_id: order.orderId, status: statusWords(order.status), delivery_address: order.address, previous_address: order.previousAddress },
          customerId: order.customerId,
        };
      });
    },
  });

  const cancelOrder = tool({
    name: 'cancel_order',
    description: 'Cancel one of the caller’s orders (not possible once delivered). Confirm with the caller before calling.',
    parameters: z.strictObject({ order_id: OrderId }),
    domain: 'orders',
    write: true,
    filler: 'One moment while I cancel that order.',
    run: async (args, ctx, caller) => {
      const orderId = parseNumericId(args.order_id, 6)!;
      return idempotentWrite(ctx, 'cancel_order', { order_id: orderId }, async (tx) => {
        const owner = await orderOwnerFor(tx, caller);
        const order = await store.cancelOrder(tx, orderId, owner);
        return { data: { order_id: order.orderId, status: statusWords(order.status) }, customerId: order.customerId };
      });
    },
  });

  /** Rule 4: staff may change any order (null), a customer only their own. */
  const orderOwnerFor = async (tx: Queryable, caller: Caller): Promise<number | null> => {
    if (caller.isStaff) return null;
    if (!caller.number) throw new CrmError('not_yours', `${WITHHELD} Orders can only be changed from the phone number on the account.`);
    const id = await store.customerIdByPhone(caller.number, tx);
    if (id === undefined) throw new CrmError('not_yours', `${NO_ACCOUNT} Orders can only be changed from the phone number on the account.`);
    return id;
  };

  const getAvailableSlots = tool({
    name: 'get_available_slots',
    description: 'Free appointment start times on a date for a service. Offer the caller two or three of them rather than reading the whole list.',
    parameters: z.strictObject({ date: DateArg, service: Service.optional() }),
    domain: 'bookings',
    write: false,
    filler: 'Let me look at the calendar.',
    run: async (args) => {
      const date = resolveDate(args.date);
      const day = await store.availableSlots(date, args.service);
      if (day.slots.length > 0) return { ok: true, data: presentSlots(day) };
      const next = await store.nextAvailable(date, args.service);
      return {
        ok: true,
        data: { ...presentSlots(day), fully_booked: true, next_available: next ? { ...presentSlots(next), free_start_times: next.slots.slice(0, 6) } : null },
      };
    },
  });

  const bookAppointment = tool({
    name: 'book_appointment',
    description:
      'Book a service appointment for the caller (the customer of the number they are calling from) at a free start time from get_available_slots. ' +
      'Confirm date, time and service with the caller before calling.',
    parameters: z.strictObject({
      date: DateArg,
      time: TimeArg,
      service: Service,
      vehicle: z
        .string()
        .min(1)
        .max(60)
        .refine(NoControlChars, 'contains control characters')
        .optional()
        .describe('Which of the caller’s vehicles: plate, model ("the Camry") or vehicle_id. Omit when they have only one.'),
    }),
    domain: 'bookings',
    write: true,
    filler: 'One moment while I book that for you.',
    run: async (args, ctx, caller) => {
      const date = resolveDate(args.date);
      const time = resolveTime(args.time);
      try {
        return await idempotentWrite(ctx, 'book_appointment', { date, time, service: args.service, vehicle: args.vehicle ?? null }, async (tx) => {
          const customerId = await callerCustomerIn(tx, caller);
          // Named: must be one of the caller's vehicles. Not named: their only vehicle, if they have one.
          const vehicleId = args.vehicle !== undefined ? (await store.resolveVehicle(customerId, args.vehicle, tx)).vehicleId : await store.soleVehicleId(customerId, tx);
          const a = await store.bookAppointment(tx, { customerId, date, time, service: args.service, vehicleId });
          return { data: { booked: true, ...presentAppointment(a) }, customerId };
        });
      } catch (err) {
        if (err instanceof CrmError && err.code === 'slot_taken') throw new CrmError('slot_taken', `${err.message} ${await alternatives(date, time, args.service)}`);
        throw err;
      }
    },
  });

  /** "The nearest free times that day are …" (best effort: never fails the refusal itself). */
  const alternatives = async (date: string, time: string, service: string | undefined): Promise<string> => {
    try {
      const near = await store.alternativesNear(date, time, service);
      if (near.length > 0) return `The nearest free times that day are ${near.join(', ')}.`;
      const next = await store.nextAvailable(date, service);
      return next ? `That day is fully booked; the next free day is ${next.weekday} ${next.date}, from ${next.slots[0]}.` : 'That day is fully booked.';
    } catch {
      return '';
    }
  };

  const getUpcoming = tool({
    name: 'get_upcoming_appointments',
    description: 'The caller’s upcoming appointments, soonest first, with appointment_id, date, time, service and vehicle.',
    parameters: z.strictObject({}),
    domain: 'bookings',
    write: false,
    filler: 'Let me check your appointments.',
    run: async (_args, _ctx, caller) => {
      if (!caller.number) return { ok: false, error: WITHHELD };
      const profile = await profileOf(caller.number);
      if (!profile) return { ok: false, error: NO_ACCOUNT };
      const list = await store.upcomingAppointments(profile.customerId);
      return { ok: true, data: { count: list.length, appointments: list.map(presentAppointment) } };
    },
  });

  const cancelAppointment = tool({
    name: 'cancel_appointment',
    description: 'Cancel one of the caller’s upcoming appointments by its appointment_id. Confirm with the caller before calling.',
    parameters: z.strictObject({
      appointment_id: AppointmentId,
      reason: z.string().max(500).refine(NoControlChars, 'contains control characters').optional().describe('Why, in the caller’s words, if they said.'),
    }),
    domain: 'bookings',
    write: true,
    filler: 'One moment while I cancel that.',
    run: async (args, ctx, caller) => {
      const appointmentId = parseNumericId(args.appointment_id, 9)!;
      const reason = args.reason?.trim() || null;
      return idempotentWrite(ctx, 'cancel_appointment', { appointment_id: appointmentId, reason }, async (tx) => {
        const customerId = await callerCustomerIn(tx, caller);
        const a = await store.cancelAppointment(tx, { appointmentId, customerId, reason });
        return { data: { cancelled: true, ...presentAppointment(a) }, customerId };
      });
    },
  });

  const rescheduleAppointment = tool({
    name: 'reschedule_appointment',
    description: 'Move one of the caller’s upcoming appointments to a new free date and time (check get_available_slots first). Confirm with the caller before calling.',
    parameters: z.strictObject({ appointment_id: AppointmentId, date: DateArg, time: TimeArg }),
    domain: 'bookings',
    write: true,
    filler: 'One moment while I move that appointment.',
    run: async (args, ctx, caller) => {
      const appointmentId = parseNumericId(args.appointment_id, 9)!;
      const date = resolveDate(args.date);
      const time = resolveTime(args.time);
      try {
        return await idempotentWrite(ctx, 'reschedule_appointment', { appointment_id: appointmentId, date, time }, async (tx) => {
          const customerId = await callerCustomerIn(tx, caller);
          const a = await store.rescheduleAppointment(tx, { appointmentId, customerId, date, time });
          return { data: { rescheduled: true, ...presentAppointment(a), previous_date: a.previous.date, previous_time: a.previous.time }, customerId };
        });
      } catch (err) {
        if (err instanceof CrmError && err.code === 'slot_taken') {
          const current = await store.appointment(appointmentId).catch(() => undefined);
          throw new CrmError('slot_taken', `${err.message} ${await alternatives(date, time, current?.service)}`);
        }
        throw err;
      }
    },
  });

  const createTicket = tool({
    name: 'create_ticket',
    description: 'Open a support ticket for a colleague to follow up (complaints, problems the other tools cannot solve). Summarise the issue in one or two sentences.',
    parameters: z.strictObject({
      summary: z.string().min(5, 'summary is too short').max(1000).describe('The problem in one or two sentences.'),
      category: z.enum(TICKET_CATEGORIES),
    }),
    domain: 'tickets',
    write: true,
    filler: 'One moment while I note that down.',
    run: async (args, ctx, caller) => {
      const summary = args.summary.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ').trim();
      return idempotentWrite(ctx, 'create_ticket', { summary, category: args.category }, async (tx) => {
        const customerId = caller.number ? ((await store.customerIdByPhone(caller.number, tx)) ?? null) : null;
        const t = await store.createTicket(tx, {
          customerId,
          // Unknown callers: keep the number so a colleague can call back.
          callerNumber: customerId === null ? (caller.number ?? null) : null,
          callId: ctx.callId,
          category: args.category,
          summary,
        });
        // Tickets are not part of the cached profile: nothing to invalidate.
        return { data: { ticket_id: t.ticketId, category: t.category, status: t.status, linked_to_account: customerId !== null }, customerId: null };
      });
    },
  });

  return [
    lookupCustomer,
    searchByName,
    getOrderStatus,
    changeAddress,
    cancelOrder,
    getAvailableSlots,
    bookAppointment,
    getUpcoming,
    cancelAppointment,
    rescheduleAppointment,
    createTicket,
  ];
}

const WITHHELD = 'Your number is withheld, so I can’t find your account.';
const NO_ACCOUNT = 'I couldn’t find an account for the number you are calling from.';

/** Turns any failure into words for the model; aborts propagate (the loop handles them). */
function failure(err: unknown, tool: string, domain: Domain, ctx: ToolContext): ToolResult {
  if (isAbortError(err) || (ctx.signal.aborted && err === ctx.signal.reason)) throw err;
  if (err instanceof CrmError) return { ok: false, error: err.message };
  if (isDbUnavailableError(err) || sqlState(err) === '57014') {
    ctx.log.warn({ tool, err: errText(err) }, 'database unavailable');
    return { ok: false, error: UNAVAILABLE[domain], retryable: true };
  }
  if (err instanceof IdempotencyConflictError) {
    ctx.log.error({ tool }, 'idempotency key reused with different arguments');
    return { ok: false, error: 'That request clashes with an earlier one in this call, so nothing was changed.' };
  }
  ctx.log.error({ tool, err: errText(err), sqlState: sqlState(err) }, 'tool failed');
  return { ok: false, error: INTERNAL_ERROR };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
