/**
 * Scripted callers for the micromobility pack (scenarios/micromobility.switchboard.yaml): demo
 * riders calling from their own numbers (the caller ID the PBX passes on is how the agent finds
 * their trip), one per support scenario of seed 000. Each script has a goal on the call (the
 * tools used and their results, who ended the call) and one on the fleet database the running
 * Switchboard used (the trip row really is ended, the minutes really are waived, the ticket
 * really is there and linked to the trip).
 *
 * Every line is built from phrases the scenario lists (the problems, yes/no answers, "it is
 * still stuck", "goodbye"), so the recogniser's grammar covers it.
 */
import type { Queryable } from '../../storage/db.js';
import type { DemoScript, ScriptedCallResult } from '../scripted-call.js';

export type Verdict = { ok: boolean; why: string };

export interface MicromobilityScript extends DemoScript {
  /** The rider's number (src/storage/micromobility-seed.ts). */
  from: string;
  /** After the call: the fleet database agrees with what the agent said it did. */
  checkDb(db: Queryable, r: ScriptedCallResult): Promise<Verdict>;
}

/** Demo riders (src/storage/micromobility-seed.ts). */
export const RIDERS = {
  /** Scooter 4217, shown in a red zone while its Market Square fix is in transit. */
  anna: '+12025550201',
  /** Scooter 5308, lock not responding; a restart fixes it. */
  ben: '+12025550202',
  /** Bicycle 1190, lock not responding; a restart does not help. */
  chloe: '+12025550203',
  /** Bicycle 2264 at the University, app frozen. */
  dmytro: '+12025550204',
} as const;

const ok = (why: string): Verdict => ({ ok: true, why });
const fail = (why: string): Verdict => ({ ok: false, why });

type Data = Record<string, unknown>;

/** The first successful call of `tool` (arguments and result data). */
function succeeded(r: ScriptedCallResult, tool: string, where: (d: Data) => boolean = () => true): { args: Data; data: Data } | undefined {
  for (const t of r.tools) {
    if (t.call.name !== tool || !t.result.ok) continue;
    const data = (t.result.data ?? {}) as Data;
    if (where(data)) return { args: (t.call.arguments ?? {}) as Data, data };
  }
  return undefined;
}

function outcomeIs(r: ScriptedCallResult, outcome: string): Verdict | undefined {
  const got = r.summary?.outcome ?? 'unknown';
  return got === outcome ? undefined : fail(`the call ended as "${got}", not "${outcome}"`);
}

interface TripRow {
  status: string;
  minutes: number | null;
  waived_minutes: number;
  waive_reason: string | null;
  charge_cents: number | null;
  ended_by: string | null;
  end_call_id: string | null;
  lock_state: string;
  vehicle_status: string;
}

async function latestTrip(db: Queryable, code: string): Promise<TripRow | undefined> {
  const { rows } = await db.query<TripRow>(
    `SELECT t.status, t.minutes, t.waived_minutes, t.waive_reason, t.charge_cents, t.ended_by, t.end_call_id,
            v.lock_state, v.status AS vehicle_status
     FROM trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id WHERE v.code = $1 ORDER BY t.id DESC LIMIT 1`,
    [code],
  );
  return rows[0];
}

async function eventKinds(db: Queryable, code: string, callId: string | undefined): Promise<string[]> {
  const { rows } = await db.query<{ kind: string }>(
    'SELECT e.kind FROM fleet_events e JOIN fleet_vehicles v ON v.id = e.vehicle_id WHERE v.code = $1 AND e.call_id = $2 ORDER BY e.id',
    [code, callId ?? ''],
  );
  return rows.map((r) => r.kind);
}

/** (a) The seed's false geofence trigger: the 10 s re-check ends the trip and waives the extra minutes. */
export const RED_ZONE_FALSE_TRIGGER: MicromobilityScript = {
  name: 'red-zone-false-trigger',
  description: 'Anna cannot end her trip: the app says red zone, but she parked correctly; the re-check confirms it, the trip ends and the extra minutes are waived.',
  extension: '100',
  from: RIDERS.anna,
  steps: [{ say: 'I can not end my trip, the app says I am in a red zone.' }, { say: 'No, that is all, thank you, goodbye.' }],
  goal(r) {
    const trip = succeeded(r, 'get_active_trip', (d) => d.found === true);
    if (!trip) return fail('the agent never found the caller’s trip (get_active_trip)');
    const seen = succeeded(r, 'get_vehicle_status', (d) => d.zone === 'red');
    if (!seen) return fail('the agent never saw the vehicle in the red zone (get_vehicle_status)');
    const ended = succeeded(r, 'end_trip', (d) => d.ended === true);
    if (!ended) return fail('end_trip did not end the trip');
    if (ended.data.rechecked !== true || ended.data.false_red_zone !== true) return fail('the trip ended without the geofence re-check');
    if (!(Number(ended.data.waived_minutes) > 0)) return fail('no extra minutes were waived');
    return (
      outcomeIs(r, 'agent_hangup') ??
      ok(`re-checked after the red zone, trip ended at ${String(ended.data.zone_name)}, ${String(ended.data.waived_minutes)} extra minutes waived, call closed by the agent`)
    );
  },
  async checkDb(db, r) {
    const t = await latestTrip(db, '4217');
    if (!t) return fail('no trip of scooter 4217');
    if (t.status !== 'ended') return fail(`the trip of scooter 4217 is ${t.status}`);
    if (t.waived_minutes <= 0 || !t.waive_reason) return fail('the trip row has no waived minutes');
    if (t.ended_by !== 'agent' || t.end_call_id !== r.summary?.info.callId) return fail('the trip was not ended by this call');
    const events = await eventKinds(db, '4217', r.summary?.info.callId);
    const want = ['geofence_check', 'locate_requested', 'geofence_check', 'trip_ended', 'minutes_waived'];
    if (events.join() !== want.join()) return fail(`events of the call: ${events.join(', ')} (expected ${want.join(', ')})`);
    return ok(`trip ended by the agent, ${t.minutes} minutes, ${t.waived_minutes} waived (${t.waive_reason}); events ${events.join(', ')}`);
  },
};

/** (b) A scooter whose lock does not respond: kickstand, End ride in the app, remote restart, trip ended. */
export const SCOOTER_LOCK_RESTART: MicromobilityScript = {
  name: 'scooter-lock-restart',
  description: 'Ben’s scooter will not lock; the kickstand and the app do not help, a remote restart does, and the agent ends the trip.',
  extension: '100',
  from: RIDERS.ben,
  steps: [
    { say: 'My scooter will not lock.' },
    { say: 'Yes, it is standing.' },
    { say: 'No, it did not lock.' },
    { say: 'Yes please.' },
    { say: 'No, that is all, goodbye.' },
  ],
  goal(r) {
    const restart = succeeded(r, 'restart_transport', (d) => d.lock_responding === true);
    if (!restart) return fail('no remote restart brought the lock back (restart_transport)');
    const ended = succeeded(r, 'end_trip', (d) => d.ended === true);
    if (!ended) return fail('the trip was not ended (end_trip)');
    const order = r.tools.map((t) => t.call.name).filter((n) => n === 'restart_transport' || n === 'end_trip');
    if (order.join() !== 'restart_transport,end_trip') return fail(`actions in the wrong order: ${order.join(', ')}`);
    return outcomeIs(r, 'agent_hangup') ?? ok(`lock restarted remotely, trip ended (${String(ended.data.minutes)} minutes, ${String(ended.data.charge)}), call closed by the agent`);
  },
  async checkDb(db, r) {
    const t = await latestTrip(db, '5308');
    if (!t) return fail('no trip of scooter 5308');
    if (t.status !== 'ended' || t.ended_by !== 'agent' || t.end_call_id !== r.summary?.info.callId) return fail(`the trip of scooter 5308 is ${t.status} (ended by ${t.ended_by ?? 'nobody'})`);
    if (t.lock_state !== 'locked' || t.vehicle_status !== 'available') return fail(`scooter 5308 is ${t.vehicle_status} with its lock ${t.lock_state}`);
    const events = await eventKinds(db, '5308', r.summary?.info.callId);
    if (!events.includes('restart') || !events.includes('trip_ended')) return fail(`events of the call: ${events.join(', ')}`);
    return ok(`scooter 5308 restarted and available, locked; trip ended (${t.minutes} minutes, no waiver: ${t.waived_minutes === 0})`);
  },
};

/** (c) A bicycle lock no step fixes: lever, wheel, remote restart, then a ticket and the operator. */
export const BICYCLE_LOCK_UNRESOLVED: MicromobilityScript = {
  name: 'bicycle-lock-unresolved',
  description: 'Chloe’s bicycle lock will not close; the lever, the wheel and a remote restart fail, so a ticket is opened and she is transferred to an operator.',
  extension: '100',
  from: RIDERS.chloe,
  steps: [{ say: 'The lock on my bike will not close.' }, { say: 'No, it is still stuck.' }, { say: 'No, it still does not work.' }],
  goal(r) {
    const restart = succeeded(r, 'restart_transport');
    if (!restart) return fail('the remote restart was never tried (restart_transport)');
    if (restart.data.lock_responding !== false) return fail('the restart was reported to fix a persistent fault');
    const ticket = succeeded(r, 'create_ticket', (d) => d.topic === 'lock');
    if (!ticket) return fail('no lock ticket was opened (create_ticket)');
    const transfer = succeeded(r, 'transfer_call');
    if (transfer?.args.destination !== 'operator') return fail('the caller was not transferred to the operator');
    if (succeeded(r, 'end_trip')) return fail('the trip was ended although the lock never closed');
    return outcomeIs(r, 'transferred') ?? ok(`lever, wheel and restart tried; ticket ${String(ticket.data.ticket_id)} opened, caller transferred to the operator`);
  },
  async checkDb(db, r) {
    const t = await latestTrip(db, '1190');
    if (t?.status !== 'active') return fail(`the trip of bicycle 1190 is ${t?.status ?? 'missing'}: it must stay active for the operator`);
    const { rows } = await db.query<{ topic: string; summary: string; linked: boolean }>(
      `SELECT tt.topic, tk.summary, tt.trip_id = (SELECT t.id FROM trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id WHERE v.code = '1190' AND t.status = 'active') AS linked
       FROM tickets tk JOIN trip_tickets tt ON tt.ticket_id = tk.id WHERE tk.call_id = $1`,
      [r.summary?.info.callId ?? ''],
    );
    const ticket = rows[0];
    if (!ticket) return fail('no ticket was stored for this call');
    if (ticket.topic !== 'lock' || !ticket.linked) return fail(`the ticket is about ${ticket.topic}, linked to the trip: ${ticket.linked}`);
    return ok(`ticket linked to the active trip of bicycle 1190: "${ticket.summary}"`);
  },
};

/** (d) A frozen app: restart it, then the trip is ended on the rider's behalf. */
export const FROZEN_APP: MicromobilityScript = {
  name: 'frozen-app',
  description: 'Dmytro’s app is frozen; restarting it does not help, so the agent ends the trip for him.',
  extension: '100',
  from: RIDERS.dmytro,
  steps: [{ say: 'The app is frozen.' }, { say: 'No, it is still frozen.' }, { say: 'Yes please end it.' }, { say: 'No, that is all, goodbye.' }],
  goal(r) {
    const ended = succeeded(r, 'end_trip', (d) => d.ended === true);
    if (!ended) return fail('the trip was not ended (end_trip)');
    return outcomeIs(r, 'agent_hangup') ?? ok(`trip ended on the rider's behalf at ${String(ended.data.zone_name)}, call closed by the agent`);
  },
  async checkDb(db, r) {
    const t = await latestTrip(db, '2264');
    if (t?.status !== 'ended' || t.end_call_id !== r.summary?.info.callId) return fail(`the trip of bicycle 2264 is ${t?.status ?? 'missing'}`);
    return ok(`trip of bicycle 2264 ended by the agent: ${t.minutes} minutes, ${t.charge_cents} cents`);
  },
};

export const MICROMOBILITY_SCRIPTS: readonly MicromobilityScript[] = [RED_ZONE_FALSE_TRIGGER, SCOOTER_LOCK_RESTART, BICYCLE_LOCK_UNRESOLVED, FROZEN_APP];
