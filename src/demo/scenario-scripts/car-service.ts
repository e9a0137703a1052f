/**
 * Scripted callers for the car-service pack (scenarios/car-service.switchboard.yaml): demo
 * customers of Otto's Auto calling from their own numbers (the caller ID the PBX passes on is
 * what verifies them) to book, move and cancel service appointments, and a stranger who is
 * offered a colleague. Each script has a goal on the call (tool calls, who ended it) and one on
 * the CRM database the running Switchboard used (the appointment row really is there).
 *
 * Days are chosen when the scripts are built, relative to today in the business's time zone:
 * a weekday two to six days ahead that the business is open, so the caller can say just
 * "Thursday" and mean exactly one date, whatever day the test runs.
 *
 * Every line is built from phrases the scenario lists (intents, days, times, "the second one",
 * yes/no), so the recogniser's grammar covers it; only the stranger's name is off the grammar
 * and goes to the open language model. Measured with this voice over G.711 (PocketSphinx,
 * grammar mode), three phrasings are avoided: a bare "Hi" (heard as "eight", once as "July
 * eight", a date), a bare "Ten thirty" ("am thirty", "two thirty"; "at ten thirty in the
 * morning" is heard right), and "Thursday" ("first", "first day": TH/F and Z/S are alike at
 * 8 kHz), so Thursday is only chosen when no other day fits.
 */
import type { Queryable } from '../../storage/db.js';
import { addDays, isOpenOn, localDate, weekdayOf, type BusinessHours } from '../../storage/schedule.js';
import type { DemoScript, ScriptedCallResult } from '../scripted-call.js';

export type Verdict = { ok: boolean; why: string };

export interface CarServiceScript extends DemoScript {
  /** The caller's number (a demo customer's, or one the CRM does not know). */
  from: string;
  /** After the call: the CRM database agrees with what the agent said it did. */
  checkDb(db: Queryable, r: ScriptedCallResult): Promise<Verdict>;
}

/** Demo customers (src/storage/seed.ts). */
export const CALLERS = {
  /** James Smith: one car (2020 Tesla Model 3), nothing booked. */
  james: '+12025550111',
  /** Sean O'Brien: one car, an inspection on the second open day after the seeding. */
  sean: '+12025550178',
  /** Maria Garcia: two cars, an oil change on the first open day after the seeding. */
  maria: '+12025550143',
  /** Not a customer. */
  stranger: '+12025550199',
} as const;

export interface CarServiceCalendar {
  /** The business's IANA zone (tools-crm `timezone`, the scenario's settings.timeZone). */
  timezone: string;
  hours: Pick<BusinessHours, 'days' | 'closedDates'>;
  now?: Date;
}

const WEEKDAY_NAMES: Record<string, string> = { sun: 'Sunday', mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday' };

/**
 * Open days 2..6 days ahead (a weekday name alone means exactly one of them), Thursday last
 * resort (see above).
 */
export function sayableDays(cal: CarServiceCalendar): { date: string; weekday: string }[] {
  const today = localDate(cal.now ?? new Date(), cal.timezone);
  const out: { date: string; weekday: string }[] = [];
  for (let ahead = 2; ahead <= 6; ahead++) {
    const date = addDays(today, ahead);
    if (isOpenOn({ open: '00:00', close: '23:59', slotMinutes: 30, bays: 1, ...cal.hours }, date)) out.push({ date, weekday: WEEKDAY_NAMES[weekdayOf(date)]! });
  }
  if (out.length === 0) throw new Error('the business is not open on any day two to six days from now: no day to say');
  const clear = out.filter((d) => d.weekday !== 'Thursday');
  return clear.length > 0 ? clear : out;
}

const ok = (why: string): Verdict => ({ ok: true, why });
const fail = (why: string): Verdict => ({ ok: false, why });

function succeeded(r: ScriptedCallResult, tool: string): { args: Record<string, unknown>; data: Record<string, unknown> } | undefined {
  const o = r.tools.find((t) => t.call.name === tool && t.result.ok);
  if (!o || !o.result.ok) return undefined;
  return { args: o.call.arguments as Record<string, unknown>, data: (o.result.data ?? {}) as Record<string, unknown> };
}

function endedBy(r: ScriptedCallResult, outcome: string): Verdict | undefined {
  const got = r.summary?.outcome ?? 'unknown';
  return got === outcome ? undefined : fail(`the call ended as "${got}", not "${outcome}"`);
}

interface AppointmentRow {
  id: number;
  service: string;
  status: string;
  local: string;
}

async function appointmentsOf(db: Queryable, phone: string, timezone: string): Promise<AppointmentRow[]> {
  const { rows } = await db.query<AppointmentRow>(
    `SELECT a.id, a.service, a.status, to_char(a.starts_at AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI') AS local
     FROM appointments a JOIN customer_phones p ON p.customer_id = a.customer_id
     WHERE p.phone = $1 ORDER BY a.starts_at`,
    [phone, timezone],
  );
  return rows;
}

/** The four car-service callers, with days chosen for `cal` (today, by default). */
export function carServiceScripts(cal: CarServiceCalendar): { book: CarServiceScript; move: CarServiceScript; cancel: CarServiceScript; stranger: CarServiceScript } {
  const days = sayableDays(cal);
  const bookDay = days[0]!;
  const moveDay = days.at(-1)!;
  const tz = cal.timezone;

  const book: CarServiceScript = {
    name: 'car-service-book',
    description: `A known caller books an oil change for ${bookDay.weekday} (${bookDay.date}) at 10:30; the agent confirms and hangs up.`,
    extension: '100',
    from: CALLERS.james,
    steps: [
      { say: 'Hello, I would like to book an oil change.' },
      { say: `On ${bookDay.weekday}, please.` },
      { say: 'At ten thirty in the morning, please.' },
      { say: 'Yes, please.' },
      { say: 'No, that is all. Thank you, goodbye.' },
    ],
    goal(r) {
      if (!succeeded(r, 'lookup_customer')) return fail('the caller was never looked up by their number (lookup_customer)');
      const b = succeeded(r, 'book_appointment');
      if (!b) return fail('no appointment was booked (book_appointment)');
      if (b.args.date !== bookDay.date || b.args.time !== '10:30' || b.args.service !== 'oil change') {
        return fail(`booked ${JSON.stringify(b.args)}, not an oil change on ${bookDay.date} at 10:30`);
      }
      return endedBy(r, 'agent_hangup') ?? ok(`oil change booked for ${bookDay.date} 10:30, call closed by the agent`);
    },
    async checkDb(db, r) {
      const b = succeeded(r, 'book_appointment');
      const rows = await appointmentsOf(db, CALLERS.james, tz);
      const row = rows.find((a) => a.id === Number(b?.data.appointment_id));
      if (!row) return fail(`no appointment ${String(b?.data.appointment_id)} for James Smith in the database (has ${JSON.stringify(rows)})`);
      if (row.status !== 'booked' || row.service !== 'oil change' || row.local !== `${bookDay.date} 10:30`) return fail(`the database has ${JSON.stringify(row)}`);
      return ok(`appointment ${row.id}: ${row.service}, ${row.local}, ${row.status}`);
    },
  };

  const move: CarServiceScript = {
    name: 'car-service-move',
    description: `A known caller moves their inspection to ${moveDay.weekday} (${moveDay.date}), picking the second free time offered.`,
    extension: '100',
    from: CALLERS.sean,
    steps: [
      { say: 'Hello, I need to move my appointment.' },
      { say: `On ${moveDay.weekday}, please.` },
      { say: 'The second one, please.' },
      { say: 'Yes.' },
      { say: 'No, thank you. Goodbye.' },
    ],
    goal(r) {
      if (!succeeded(r, 'get_upcoming_appointments')) return fail('the agent never looked at the caller\'s appointments');
      const slots = r.tools.filter((t) => t.call.name === 'get_available_slots' && t.result.ok).at(-1);
      const offered = slots?.result.ok ? ((slots.result.data as { free_start_times?: string[] }).free_start_times ?? []) : [];
      const m = succeeded(r, 'reschedule_appointment');
      if (!m) return fail('the appointment was not moved (reschedule_appointment)');
      if (m.args.date !== moveDay.date) return fail(`moved to ${String(m.args.date)}, not ${moveDay.date}`);
      if (offered.length < 2 || m.args.time !== offered[1]) return fail(`moved to ${String(m.args.time)}, not the second free time offered (${offered.slice(0, 3).join(', ')})`);
      return endedBy(r, 'agent_hangup') ?? ok(`inspection moved to ${moveDay.date} ${String(m.args.time)}, call closed by the agent`);
    },
    async checkDb(db, r) {
      const m = succeeded(r, 'reschedule_appointment');
      const rows = await appointmentsOf(db, CALLERS.sean, tz);
      const row = rows.find((a) => a.id === Number(m?.args.appointment_id));
      if (!row) return fail(`appointment ${String(m?.args.appointment_id)} is not Sean O'Brien's (has ${JSON.stringify(rows)})`);
      const want = `${moveDay.date} ${String(m?.args.time)}`;
      if (row.status !== 'booked' || row.local !== want) return fail(`the database has ${JSON.stringify(row)}, not booked at ${want}`);
      if (rows.filter((a) => a.status === 'booked').length !== 1) return fail(`moving made a second booking: ${JSON.stringify(rows)}`);
      return ok(`appointment ${row.id}: ${row.service}, now ${row.local}`);
    },
  };

  const cancel: CarServiceScript = {
    name: 'car-service-cancel',
    description: 'A known caller cancels their next appointment after hearing it read back.',
    extension: '100',
    from: CALLERS.maria,
    steps: [
      { say: 'Hello, I want to cancel my appointment.' },
      { say: 'Yes, please.' },
      { say: 'No, that is all. Goodbye.' },
    ],
    goal(r) {
      if (!succeeded(r, 'get_upcoming_appointments')) return fail('the agent never looked at the caller\'s appointments');
      if (!succeeded(r, 'cancel_appointment')) return fail('nothing was cancelled (cancel_appointment)');
      return endedBy(r, 'agent_hangup') ?? ok('appointment cancelled, call closed by the agent');
    },
    async checkDb(db, r) {
      const c = succeeded(r, 'cancel_appointment');
      const rows = await appointmentsOf(db, CALLERS.maria, tz);
      const row = rows.find((a) => a.id === Number(c?.args.appointment_id));
      if (!row) return fail(`appointment ${String(c?.args.appointment_id)} is not Maria Garcia's`);
      if (row.status !== 'cancelled') return fail(`appointment ${row.id} is ${row.status}, not cancelled`);
      return ok(`appointment ${row.id} (${row.service}, ${row.local}) is cancelled`);
    },
  };

  const stranger: CarServiceScript = {
    name: 'car-service-stranger',
    description: 'An unknown number wants a booking; a name proves nothing, so the agent offers a colleague and transfers.',
    extension: '100',
    from: CALLERS.stranger,
    steps: [
      { say: 'Hello, I would like to book an inspection.' },
      { say: 'My name is Jamie Smithers.' },
      { say: 'Yes, please.' },
    ],
    goal(r) {
      const lookup = succeeded(r, 'lookup_customer');
      if (!lookup || lookup.data.found !== false) return fail('the unknown number was not looked up, or was found');
      const asked = r.transcript.some((e) => e.who === 'agent' && /first and last name/.test(e.text));
      if (!asked) return fail('the agent never asked for the caller\'s name');
      const writes = r.tools.filter((t) => ['book_appointment', 'reschedule_appointment', 'cancel_appointment'].includes(t.call.name));
      if (writes.length > 0) return fail(`an unverified caller changed appointments: ${writes.map((w) => w.call.name).join(', ')}`);
      // A name is off the recogniser's grammar: heard, it is searched (and verifies nobody); not
      // heard twice, a colleague takes over. Either way the caller ends with a person.
      const search = r.tools.find((t) => t.call.name === 'search_customers_by_name');
      const how = search ? `name searched (${JSON.stringify(search.call.arguments)})` : 'name not caught';
      return endedBy(r, 'transferred') ?? ok(`${how}, nothing changed, caller transferred to a colleague`);
    },
    async checkDb(db) {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM appointments a JOIN customers c ON c.id = a.customer_id WHERE c.first_name = 'Jamie' AND c.last_name = 'Smithers'`,
      );
      return rows[0]!.n === 0 ? ok('no appointment for the name the caller gave') : fail(`the named customer now has ${rows[0]!.n} appointment(s)`);
    },
  };

  return { book, move, cancel, stranger };
}
