/**
 * The micromobility support tools. Two read-only look-ups (get_active_trip, get_vehicle_status)
 * and the seed's strict action set (end_trip, restart_transport, create_ticket; the fourth,
 * transfer_to_operator, is the built-in transfer_call to the `operator` destination — see
 * README.md). The model can only pick from these: the conversation loop refuses any other
 * name and validates arguments with the zod schemas below (execute validates again).
 *
 * Who is who: the rider is the customer whose phone number the network presented
 * (ctx.callerNumber). No tool takes a phone number; a number the caller says proves nothing.
 * A vehicle number the caller reads out only selects among the caller's own trips, or, for a
 * remote restart, a free vehicle the caller is standing at (one in another rider's trip is
 * refused).
 *
 * Writes (end_trip, restart_transport, create_ticket) are not interruptible by barge-in and are
 * idempotent per ctx.idempotencyKey: the result is stored with the write in one transaction;
 * a retry gets it back without acting (or waiting) again.
 *
 * Errors are sentences the agent can say ("Vehicle 4 2 1 7 is not on your current trip.");
 * a database that cannot be reached gives "The trip system is not answering right now."
 * with retryable: true.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { isAbortError, type ToolContext, type ToolDefinition, type ToolResult } from '../../src/plugins/api.js';
import { isDbUnavailableError, sqlState, type Queryable } from '../../src/storage/db.js';
import { IdempotencyConflictError, requestHash, runIdempotent } from '../../src/storage/idempotency.js';
import {
  MicromobilityError,
  TICKET_TOPICS,
  spaced,
  tripBill,
  type FleetVehicle,
  type GeofenceReading,
  type MicromobilityStore,
  type Trip,
  type ZoneVerdict,
} from '../../src/storage/micromobility.js';
import { normalizePhone, type PhoneRules } from '../../src/storage/phone.js';
import type { MicromobilityConfig } from './config.js';

export interface MicromobilityToolDeps {
  store: MicromobilityStore;
  phone: PhoneRules;
  geofenceRecheckMs: number;
  restarts: MicromobilityConfig['restarts'];
}

export const UNAVAILABLE = 'The trip system is not answering right now.';
const INTERNAL_ERROR = 'Something went wrong on our side, so I could not do that. A colleague can help.';
const READ_TIMEOUT_MS = 5000;
const WRITE_TIMEOUT_MS = 10_000;
const WITHHELD = 'Your number is withheld, so I cannot find your trips.';
const NO_ACCOUNT = 'I could not find a rider account for the number you are calling from.';
const NO_TRIP = 'You have no active trip right now.';

// --- vehicle numbers ---------------------------------------------------------------------------

const DIGIT_WORDS: Readonly<Record<string, string>> = {
  zero: '0', oh: '0', o: '0', nought: '0', one: '1', two: '2', three: '3', four: '4', five: '5',
  six: '6', seven: '7', eight: '8', nine: '9',
};
const LEAD_WORDS = new Set(['vehicle', 'scooter', 'bicycle', 'bike', 'number', 'no', 'code', 'id', 'is', 'the', 'it', 'its', 'my']);

/**
 * The 4–6 digit vehicle number from what the model passes: 4217, "4217", "42-17", "4 2 1 7",
 * "four two one seven", "scooter 4217", "double four one seven". Undefined if it is not one.
 */
export function parseVehicleCode(v: number | string): string | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && /^\d{4,6}$/.test(String(v)) ? String(v) : undefined;
  const tokens = v.toLowerCase().replace(/[#:,.\-_/]+/g, ' ').split(/\s+/).filter(Boolean);
  let digits = '';
  let repeat = 1;
  let started = false;
  for (const t of tokens) {
    if (!started && LEAD_WORDS.has(t)) continue;
    started = true;
    if (t === 'double' || t === 'triple') {
      repeat = t === 'double' ? 2 : 3;
      continue;
    }
    const d = /^\d+$/.test(t) ? t : DIGIT_WORDS[t];
    if (d === undefined) return undefined;
    digits += repeat > 1 && d.length === 1 ? d.repeat(repeat) : d;
    repeat = 1;
    if (digits.length > 6) return undefined;
  }
  return /^\d{4,6}$/.test(digits) ? digits : undefined;
}

const VehicleCode = z
  .union([z.number().int(), z.string().max(60)])
  .refine((v) => parseVehicleCode(v) !== undefined, 'must be the 4 to 6 digit number printed on the vehicle, under the QR code')
  .describe('The vehicle number printed under the QR code, 4 to 6 digits (e.g. "4217"). Omit to use the vehicle of the caller’s active trip.');

const NoControlChars = (s: string): boolean => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s);

// --- money and presenters ----------------------------------------------------------------------

const CURRENCY_WORDS: Readonly<Record<string, [string, string, string, string]>> = {
  USD: ['dollar', 'dollars', 'cent', 'cents'],
  EUR: ['euro', 'euros', 'cent', 'cents'],
  GBP: ['pound', 'pounds', 'penny', 'pence'],
  UAH: ['hryvnia', 'hryvnias', 'kopiyka', 'kopiykas'],
  PLN: ['zloty', 'zlotys', 'grosz', 'groszy'],
};

/** 475 USD -> "4 dollars and 75 cents": said, not read. */
export function moneyWords(cents: number, currency: string): string {
  const words = CURRENCY_WORDS[currency];
  const major = Math.floor(cents / 100);
  const minor = cents % 100;
  if (!words) return `${(cents / 100).toFixed(2)} ${currency}`;
  const [one, many, oneMinor, manyMinor] = words;
  const majorText = `${major} ${major === 1 ? one : many}`;
  if (minor === 0) return majorText;
  const minorText = `${minor} ${minor === 1 ? oneMinor : manyMinor}`;
  return major === 0 ? minorText : `${majorText} and ${minorText}`;
}

function presentVehicle(v: FleetVehicle): Record<string, unknown> {
  return {
    vehicle_code: v.code,
    vehicle_type: v.type,
    status: v.status,
    lock_state: v.lockState,
    ...(v.batteryPercent !== null ? { battery_percent: v.batteryPercent } : {}),
  };
}

function presentTrip(t: Trip, now: Date, otherActive: number): Record<string, unknown> {
  const bill = tripBill(t, now);
  return {
    found: true,
    trip_id: t.tripId,
    vehicle_code: t.vehicle.code,
    vehicle_type: t.vehicle.type,
    started_at: t.startedAt.toISOString(),
    minutes_so_far: bill.minutes,
    charge_so_far: moneyWords(bill.chargeCents, t.currency),
    lock_state: t.vehicle.lockState,
    other_active_trips: otherActive,
  };
}

/** Zone fields: verdict, zone name, and where to move the vehicle when it may not be left here. */
function presentZone(r: GeofenceReading, now: Date): Record<string, unknown> {
  const v = r.verdict;
  return {
    zone: v.verdict,
    ...(v.zone ? { zone_name: v.zone.name } : {}),
    ...(v.nearestAllowed ? { move_to: v.nearestAllowed.zone.name, move_distance_m: roundDistance(v.nearestAllowed.distanceM) } : {}),
    ...(r.position ? { position_age_seconds: Math.max(0, Math.round((now.getTime() - r.position.recordedAt.getTime()) / 1000)) } : { position_known: false }),
  };
}

function roundDistance(m: number): number {
  if (m < 10) return 10;
  return m < 200 ? Math.round(m / 10) * 10 : Math.round(m / 50) * 50;
}

/** What to tell a caller whose vehicle may not be left where it is. */
function moveAdvice(type: string, v: ZoneVerdict): string {
  const where = v.verdict === 'red' && v.zone ? `in the ${v.zone.name} no-parking zone` : 'outside every parking area';
  const to = v.nearestAllowed
    ? v.nearestAllowed.within
      ? ` Please move it out of that zone, about ${roundDistance(v.nearestAllowed.distanceM)} meters, still within ${v.nearestAllowed.zone.name}.`
      : ` Please move it to ${v.nearestAllowed.zone.name}, about ${roundDistance(v.nearestAllowed.distanceM)} meters away.`
    : ' Please move it to a parking area shown in the app.';
  return `Your ${type} is still ${where}, so the trip cannot end there.${to} Then end the trip in the app, or call us back.`;
}

// --- the tools -----------------------------------------------------------------------------------

export function buildMicromobilityTools(deps: MicromobilityToolDeps): ToolDefinition<any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { store } = deps;

  /** The caller's number in E.164 (undefined: withheld or not a phone number). */
  const callerNumber = (ctx: ToolContext): string | undefined => normalizePhone(ctx.callerNumber, deps.phone);

  const riderOf = async (ctx: ToolContext, q: Queryable = store.db): Promise<number> => {
    const number = callerNumber(ctx);
    if (!number) throw new MicromobilityError('not_found', WITHHELD);
    const id = await store.riderIdByPhone(number, q);
    if (id === undefined) throw new MicromobilityError('not_found', NO_ACCOUNT);
    return id;
  };

  /** The caller's active trip: on `code` if given (must be theirs), else their only one. */
  const tripOf = async (customerId: number, code: string | undefined, q: Queryable = store.db): Promise<Trip> => {
    const trips = await store.activeTrips(customerId, q);
    if (code !== undefined) {
      const t = trips.find((x) => x.vehicle.code === code);
      if (t) return t;
      const v = await store.vehicleByCode(code, q);
      if (!v) throw new MicromobilityError('not_found', `I could not find a vehicle with the number ${spaced(code)}. The number is printed under the QR code.`);
      throw new MicromobilityError('not_yours', `Vehicle ${spaced(code)} is not on your current trip.${trips.length > 0 ? ` Your trip is on ${trips.map((x) => `${x.vehicle.type} ${spaced(x.vehicle.code)}`).join(' and ')}.` : ''}`);
    }
    if (trips.length === 0) throw new MicromobilityError('no_trip', NO_TRIP);
    if (trips.length > 1) {
      throw new MicromobilityError('ambiguous', `You have ${trips.length} active trips, on ${trips.map((x) => `${x.vehicle.type} ${spaced(x.vehicle.code)}`).join(' and ')}. Which vehicle is it about?`);
    }
    return trips[0]!;
  };

  const tool = <S extends z.ZodType>(def: {
    name: string;
    description: string;
    parameters: S;
    write: boolean;
    filler: string;
    timeoutMs?: number;
    run: (args: z.output<S>, ctx: ToolContext) => Promise<ToolResult>;
  }): ToolDefinition<z.output<S>> => ({
    name: def.name,
    description: def.description,
    parameters: def.parameters as unknown as z.ZodType<z.output<S>>,
    timeoutMs: def.timeoutMs ?? (def.write ? WRITE_TIMEOUT_MS : READ_TIMEOUT_MS),
    interruptible: !def.write,
    filler: def.filler,
    execute: async (args, ctx) => {
      ctx.signal.throwIfAborted();
      const parsed = def.parameters.safeParse(args);
      if (!parsed.success) {
        return { ok: false, error: `I could not use those details: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'} ${i.message}`).join('; ')}.` };
      }
      try {
        return await def.run(parsed.data, ctx);
      } catch (err) {
        return failure(err, def.name, ctx);
      }
    },
  });

  /** Runs a write once per idempotency key; a retry returns the stored result. */
  const once = async (ctx: ToolContext, name: string, args: unknown, fn: (tx: Queryable) => Promise<unknown>): Promise<ToolResult> => {
    const { result, replayed } = await runIdempotent(store.db, { key: ctx.idempotencyKey, tool: name, args }, fn);
    if (replayed) ctx.log.info({ tool: name }, 'retried tool call: returning the stored result');
    return { ok: true, data: result };
  };

  const getActiveTrip = tool({
    name: 'get_active_trip',
    description:
      "The caller's active trip, found from the number they are calling from: trip id, vehicle number and type (bicycle or scooter), minutes so far, charge so far, lock state. " +
      'Call it first. `found: false` means no active trip (or no account for this number).',
    parameters: z.strictObject({}),
    write: false,
    filler: 'Let me find your trip.',
    run: async (_args, ctx) => {
      const number = callerNumber(ctx);
      if (!number) return { ok: true, data: { found: false, reason: WITHHELD } };
      const rider = await store.riderIdByPhone(number);
      if (rider === undefined) return { ok: true, data: { found: false, reason: NO_ACCOUNT } };
      const trips = await store.activeTrips(rider);
      if (trips.length === 0) {
        const last = (await store.recentTrips(rider, 1))[0];
        return {
          ok: true,
          data: {
            found: false,
            reason: NO_TRIP,
            ...(last?.endedAt ? { last_trip: { trip_id: last.tripId, vehicle_code: last.vehicle.code, ended_at: last.endedAt.toISOString(), charge: moneyWords(last.chargeCents ?? 0, last.currency) } } : {}),
          },
        };
      }
      return { ok: true, data: presentTrip(trips[0]!, store.now(), trips.length - 1) };
    },
  });

  const getVehicleStatus = tool({
    name: 'get_vehicle_status',
    description:
      'Status of a vehicle: type, in a trip or free, lock state (locked, unlocked, not_responding), battery. For the vehicle of the caller’s own trip also where the CRM sees it: ' +
      'zone (allowed = a parking area where the trip may end, red = a no-parking zone, outside = no parking area), zone_name, and move_to / move_distance_m when it may not be left there.',
    parameters: z.strictObject({ vehicle: VehicleCode.optional() }),
    write: false,
    filler: 'Let me check the vehicle.',
    run: async (args, ctx) => {
      const code = args.vehicle === undefined ? undefined : parseVehicleCode(args.vehicle)!;
      let rider: number | undefined;
      try {
        rider = await riderOf(ctx);
      } catch (err) {
        if (!(err instanceof MicromobilityError) || code === undefined) throw err;
      }
      let vehicle: FleetVehicle | undefined;
      let trip: Trip | undefined;
      if (rider !== undefined) {
        const mine = await store.activeTrips(rider);
        trip = code === undefined ? (mine.length === 1 ? mine[0] : undefined) : mine.find((t) => t.vehicle.code === code);
        if (code === undefined && !trip) throw new MicromobilityError(mine.length === 0 ? 'no_trip' : 'ambiguous', mine.length === 0 ? `${NO_TRIP} Which vehicle is it? Please read me its number.` : `You have ${mine.length} active trips. Which vehicle is it about?`);
        vehicle = trip?.vehicle;
      }
      if (!vehicle) {
        vehicle = await store.vehicleByCode(code!);
        if (!vehicle) throw new MicromobilityError('not_found', `I could not find a vehicle with the number ${spaced(code!)}. The number is printed under the QR code.`);
      }
      const data: Record<string, unknown> = { ...presentVehicle(vehicle), on_your_trip: trip !== undefined };
      if (trip) Object.assign(data, { trip_id: trip.tripId }, presentZone(await store.geofence(vehicle.vehicleId), store.now()));
      return { ok: true, data };
    },
  });

  const endTrip = tool({
    name: 'end_trip',
    description:
      "End the caller's active trip on their behalf. Checks the vehicle's position first: in a parking area the trip ends at once. If the CRM shows it in a red zone or outside " +
      `every parking area, the vehicle is asked for a fresh position and checked again after ${Math.round(deps.geofenceRecheckMs / 1000)} seconds (positions can arrive late): ` +
      'if it is then in a parking area, the trip ends and the extra minutes are waived; if not, the trip stays active and `advice` says where to move it. ' +
      'Also refused while the lock is not responding (restart_transport first). Returns ended (true/false), minutes, billed_minutes, waived_minutes, charge.',
    parameters: z.strictObject({ vehicle: VehicleCode.optional() }),
    write: true,
    filler: "I'm checking where the vehicle is.",
    timeoutMs: deps.geofenceRecheckMs + WRITE_TIMEOUT_MS,
    run: async (args, ctx) => {
      const code = args.vehicle === undefined ? undefined : parseVehicleCode(args.vehicle)!;
      const reqArgs = { vehicle: code ?? null };
      // A retried call gets its stored answer without waiting for the re-check again.
      const prior = await store.storedToolResult(ctx.idempotencyKey);
      if (prior) {
        if (prior.tool !== 'end_trip' || prior.requestHash !== requestHash('end_trip', reqArgs)) throw new IdempotencyConflictError(ctx.idempotencyKey);
        ctx.log.info({ tool: 'end_trip' }, 'retried tool call: returning the stored result');
        return { ok: true, data: prior.result };
      }
      const rider = await riderOf(ctx);
      const trip = await tripOf(rider, code);
      const vehicleId = trip.vehicle.vehicleId;
      const lockOk = trip.vehicle.lockState !== 'not_responding';
      const first = await store.geofence(vehicleId);
      let reading = first;
      let rechecked = false;
      if (lockOk && first.verdict.verdict !== 'allowed') {
        // The CRM's geodata may lag behind the vehicle: ask it where it is, wait, look again.
        await store.recordEvent(store.db, {
          vehicleId,
          tripId: trip.tripId,
          kind: 'geofence_check',
          detail: { verdict: first.verdict.verdict, zone: first.verdict.zone?.name ?? null, recheck_in_ms: deps.geofenceRecheckMs, ...positionDetail(first) },
          callId: ctx.callId,
        });
        await store.requestLocate(store.db, { vehicleId, tripId: trip.tripId, callId: ctx.callId });
        ctx.log.info({ tool: 'end_trip', verdict: first.verdict.verdict, recheckMs: deps.geofenceRecheckMs }, 'vehicle not in a parking area: re-checking its position');
        await sleep(deps.geofenceRecheckMs, undefined, { signal: ctx.signal });
        reading = await store.geofence(vehicleId);
        rechecked = true;
        await store.recordEvent(store.db, {
          vehicleId,
          tripId: trip.tripId,
          kind: 'geofence_check',
          detail: { verdict: reading.verdict.verdict, zone: reading.verdict.zone?.name ?? null, recheck: true, ...positionDetail(reading) },
          callId: ctx.callId,
        });
      }
      return once(ctx, 'end_trip', reqArgs, async (tx) => {
        const current = await store.trip(trip.tripId, tx, true);
        if (!current || current.status !== 'active') throw new MicromobilityError('invalid_state', 'That trip has already ended.');
        const base = { trip_id: current.tripId, vehicle_code: current.vehicle.code, vehicle_type: current.vehicle.type, rechecked };
        if (current.vehicle.lockState === 'not_responding') {
          await store.recordEvent(tx, { vehicleId, tripId: current.tripId, kind: 'end_refused', detail: { reason: 'lock_not_responding' }, callId: ctx.callId });
          return {
            ...base,
            ended: false,
            reason: 'lock_not_responding',
            advice: `The lock of your ${current.vehicle.type} is not responding, so the trip cannot end yet. A remote restart of the vehicle may fix it.`,
          };
        }
        if (reading.verdict.verdict !== 'allowed') {
          await store.recordEvent(tx, {
            vehicleId,
            tripId: current.tripId,
            kind: 'end_refused',
            detail: { reason: reading.verdict.verdict === 'red' ? 'red_zone' : 'outside_parking', zone: reading.verdict.zone?.name ?? null },
            callId: ctx.callId,
          });
          return {
            ...base,
            ended: false,
            reason: reading.verdict.verdict === 'red' ? 'red_zone' : 'outside_parking',
            ...presentZone(reading, store.now()),
            advice: moveAdvice(current.vehicle.type, reading.verdict),
          };
        }
        // A false trigger: the fresh position shows the vehicle parked correctly since it was
        // recorded, so the minutes after that are not the rider's to pay.
        const falseTrigger = rechecked && first.verdict.verdict !== 'allowed';
        const ended = await store.endTrip(tx, {
          tripId: current.tripId,
          endedBy: 'agent',
          callId: ctx.callId,
          ...(falseTrigger && reading.position ? { billableUntil: reading.position.recordedAt, waiveReason: 'geofence data delayed: the vehicle was already parked in an allowed zone' } : {}),
        });
        return {
          ...base,
          ended: true,
          zone_name: reading.verdict.zone?.name ?? null,
          minutes: ended.minutes,
          billed_minutes: ended.minutes! - ended.waivedMinutes,
          waived_minutes: ended.waivedMinutes,
          charge: moneyWords(ended.chargeCents!, ended.currency),
          false_red_zone: falseTrigger,
        };
      });
    },
  });

  const restartTransport = tool({
    name: 'restart_transport',
    description:
      'Remote restart of a vehicle’s electronics and lock (for a lock that will not open or close). Works on the vehicle of the caller’s active trip, or a free vehicle the caller is standing at. ' +
      'Returns lock_responding (true: the lock answers again; false: it still does not) and lock_state.',
    parameters: z.strictObject({ vehicle: VehicleCode.optional() }),
    write: true,
    filler: "I'm restarting the vehicle remotely.",
    run: async (args, ctx) => {
      const code = args.vehicle === undefined ? undefined : parseVehicleCode(args.vehicle)!;
      const rider = await riderOf(ctx);
      let vehicle: FleetVehicle;
      let tripId: number | null = null;
      const mine = await store.activeTrips(rider);
      const onTrip = code === undefined ? (mine.length === 1 ? mine[0] : undefined) : mine.find((t) => t.vehicle.code === code);
      if (onTrip) {
        vehicle = onTrip.vehicle;
        tripId = onTrip.tripId;
      } else if (code === undefined) {
        throw new MicromobilityError(mine.length === 0 ? 'no_trip' : 'ambiguous', mine.length === 0 ? `${NO_TRIP} Which vehicle should I restart? Please read me its number.` : `You have ${mine.length} active trips. Which vehicle should I restart?`);
      } else {
        const v = await store.vehicleByCode(code);
        if (!v) throw new MicromobilityError('not_found', `I could not find a vehicle with the number ${spaced(code)}. The number is printed under the QR code.`);
        if (v.status === 'in_trip') throw new MicromobilityError('not_yours', `Vehicle ${spaced(code)} is in someone else's trip, so I cannot restart it.`);
        vehicle = v;
      }
      return once(ctx, 'restart_transport', { vehicle: vehicle.code }, async (tx) => {
        const r = await store.restartVehicle(tx, {
          vehicleId: vehicle.vehicleId,
          tripId,
          callId: ctx.callId,
          maxRestarts: deps.restarts.max,
          windowMs: deps.restarts.windowMinutes * 60_000,
        });
        return {
          vehicle_code: r.vehicle.code,
          vehicle_type: r.vehicle.type,
          restarted: true,
          lock_responding: r.lockResponding,
          lock_state: r.vehicle.lockState,
          on_your_trip: tripId !== null,
          advice: r.lockResponding ? `The ${r.vehicle.type} restarted and its lock is responding again.` : `The ${r.vehicle.type} restarted, but its lock still does not respond.`,
        };
      });
    },
  });

  const createTicket = tool({
    name: 'create_ticket',
    description:
      'Open a support ticket for a colleague (a problem the steps did not solve, a charge to check). Linked to the caller’s trip and vehicle. Summarise the problem and the steps already tried in one or two sentences.',
    parameters: z.strictObject({
      summary: z.string().trim().min(5, 'summary is too short').max(1000).refine(NoControlChars, 'contains control characters').describe('The problem and what was tried, in one or two sentences.'),
      topic: z.enum(TICKET_TOPICS as [string, ...string[]]).describe('lock, trip_end, red_zone, app or other.'),
      vehicle: VehicleCode.optional(),
    }),
    write: true,
    filler: 'One moment while I note that down.',
    run: async (args, ctx) => {
      const code = args.vehicle === undefined ? undefined : parseVehicleCode(args.vehicle)!;
      const summary = args.summary.replace(/\s+/g, ' ');
      return once(ctx, 'create_ticket', { summary, topic: args.topic, vehicle: code ?? null }, async (tx) => {
        const number = callerNumber(ctx);
        const rider = number ? await store.riderIdByPhone(number, tx) : undefined;
        let trip: Trip | undefined;
        if (rider !== undefined) {
          const mine = await store.activeTrips(rider, tx);
          trip = code === undefined ? mine[0] : mine.find((t) => t.vehicle.code === code);
          // A trip that has just ended (a charge to check) is still the one the ticket is about.
          if (!trip && code === undefined) trip = (await store.recentTrips(rider, 1, tx))[0];
        }
        const vehicle = trip?.vehicle ?? (code !== undefined ? await store.vehicleByCode(code, tx) : undefined);
        const t = await store.createTicket(tx, {
          customerId: rider ?? null,
          // Unknown callers: keep the number so a colleague can call back.
          callerNumber: rider === undefined ? (number ?? null) : null,
          callId: ctx.callId,
          topic: args.topic as (typeof TICKET_TOPICS)[number],
          summary,
          tripId: trip?.tripId ?? null,
          vehicleId: vehicle?.vehicleId ?? null,
        });
        return { ticket_id: t.ticketId, topic: t.topic, status: t.status, linked_trip_id: t.tripId, vehicle_code: vehicle?.code ?? null };
      });
    },
  });

  return [getActiveTrip, getVehicleStatus, endTrip, restartTransport, createTicket];
}

function positionDetail(r: GeofenceReading): Record<string, unknown> {
  return r.position ? { lat: r.position.lat, lon: r.position.lon, recorded_at: r.position.recordedAt.toISOString() } : { position: null };
}

/** Turns any failure into words for the model; aborts propagate (the loop handles them). */
function failure(err: unknown, tool: string, ctx: ToolContext): ToolResult {
  if (isAbortError(err) || (ctx.signal.aborted && err === ctx.signal.reason)) throw err;
  if (err instanceof MicromobilityError) return { ok: false, error: err.message };
  if (isDbUnavailableError(err) || sqlState(err) === '57014') {
    ctx.log.warn({ tool, err: errText(err) }, 'database unavailable');
    return { ok: false, error: UNAVAILABLE, retryable: true };
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
