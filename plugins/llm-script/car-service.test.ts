/**
 * The car-service scenario pack (scenarios/car-service.yaml + car-service.switchboard.yaml)
 * against the real tools-crm tools on an embedded PostgreSQL with the demo data, driven the way
 * the conversation loop drives a model: the agent's greeting, then user message -> respond() ->
 * tool calls validated by their schemas and run -> role:'tool' results -> respond(). The clock
 * is frozen (Monday 23 November 2026, 9 AM in New York) for the script and the CRM alike.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { builtinTools, type CallAction } from '../../src/conversation/builtin-tools.js';
import { ToolRegistry } from '../../src/conversation/tool-runner.js';
import { silentLogger } from '../../src/log.js';
import type { ChatMessage, ToolCall, ToolResult } from '../../src/plugins/api.js';
import { seedDemoData } from '../../src/storage/seed.js';
import { createCrmToolkit, CrmConfigSchema, type CrmToolkit } from '../tools-crm/index.js';
import { carServiceScripts, sayableDays } from '../../src/demo/scenario-scripts/car-service.js';
import { calendarDateIn, parseSpokenDate } from './dates.js';
import { ScriptProvider } from './index.js';
import { loadScenarioFile, type Scenario } from './scenario.js';

const SCENARIOS = resolve(import.meta.dirname, '../../scenarios');
const PACK = parse(readFileSync(resolve(SCENARIOS, 'car-service.switchboard.yaml'), 'utf8')) as {
  plugins: Record<string, { config: Record<string, unknown> }>;
  agents: Record<string, { greeting: string; tools: string[]; transfer: Record<string, { context: string; extension: string }> }>;
};
const AGENT = PACK.agents.sophie!;

/** Monday 23 November 2026, 09:00 in New York. */
const MONDAY_9AM = new Date('2026-11-23T14:00:00Z');
let now = MONDAY_9AM;
const clock = (): Date => now;

const JAMES = '+12025550111'; // one car (Tesla), nothing booked
const SEAN = '+12025550178'; // one car (F-150), an inspection on Wednesday at 1 PM
const MARIA = '+12025550143'; // two cars, an oil change on Tuesday at 9 AM
const OLENA = '+380501234567'; // a tire rotation on Thursday at 10 AM
const STRANGER = '+12025550199';

let crm: CrmToolkit;
let scenario: Scenario;

beforeAll(async () => {
  const { databaseUrl: _url, seedDemoData: _seed, ...config } = PACK.plugins['tools-crm']!.config;
  crm = await createCrmToolkit(CrmConfigSchema.parse({ ...config, databaseUrl: 'pglite:memory', seedDemoData: true }), { log: silentLogger, clock });
  scenario = await loadScenarioFile(resolve(SCENARIOS, 'car-service.yaml'));
}, 180_000);

afterAll(async () => {
  await crm?.close();
});

// Every test starts from the demo data as seeded on Monday morning.
beforeEach(async () => {
  now = MONDAY_9AM;
  await crm.db.query('DELETE FROM appointments');
  await crm.db.query('DELETE FROM tool_idempotency');
  await seedDemoData(crm.db, { schedule: crm.store.schedule, now: MONDAY_9AM });
});

let calls = 0;

interface Turn {
  text: string;
  calls: ToolCall[];
  results: ToolResult[];
}

/** One call: the loop's history, the agent's tools (allowlist, schemas), the caller's number. */
class Call {
  readonly messages: ChatMessage[] = [];
  readonly log: { call: ToolCall; result: ToolResult }[] = [];
  action: CallAction | undefined;
  private readonly registry = new ToolRegistry();
  private readonly variables = new Map<string, string>();

  private readonly callId = `call-${++calls}`;

  private constructor(
    private readonly session: Awaited<ReturnType<ScriptProvider['session']>>,
    private readonly callerNumber: string,
  ) {
    for (const t of crm.tools) this.registry.add(t, 'tools-crm');
    for (const t of builtinTools(AGENT.transfer, (a) => (this.action = a))) this.registry.add(t, 'built-ins');
    this.messages.push({ role: 'assistant', content: AGENT.greeting });
  }

  static async from(callerNumber: string): Promise<Call> {
    const provider = new ScriptProvider(scenario, silentLogger, { now: clock });
    const session = await provider.session({ callId: `call-${callerNumber}`, agent: 'sophie', language: 'en-US', variables: { caller_number: callerNumber } });
    return new Call(session, callerNumber);
  }

  get variable(): ReadonlyMap<string, string> {
    return this.variables;
  }

  /** The caller says `text`: every model round until it answers without tools (or hands off). */
  async say(text: string): Promise<Turn> {
    this.messages.push({ role: 'user', content: text });
    const turn: Turn = { text: '', calls: [], results: [] };
    const texts: string[] = [];
    for (let round = 0; round < 4; round++) {
      let said = '';
      const calls: ToolCall[] = [];
      for await (const ev of this.session.respond({ system: '', messages: [...this.messages], tools: this.registry.specs(AGENT.tools), signal: new AbortController().signal })) {
        if (ev.type === 'text') said += ev.delta;
        else if (ev.type === 'tool_call') calls.push(ev.call);
      }
      if (said.trim()) texts.push(said.trim());
      this.messages.push({ role: 'assistant', content: said, ...(calls.length ? { toolCalls: calls } : {}) });
      if (calls.length === 0) break;
      for (const call of calls) {
        const result = await this.run(call);
        turn.calls.push(call);
        turn.results.push(result);
        this.log.push({ call, result });
        this.messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: JSON.stringify(result) });
      }
      if (this.action) break;
    }
    turn.text = texts.join(' ');
    return turn;
  }

  /** As the loop runs a tool: allowlisted, arguments valid under its schema, the caller's number in the context. */
  private async run(call: ToolCall): Promise<ToolResult> {
    const def = this.registry.get(call.name);
    if (!def || !AGENT.tools.includes(call.name)) throw new Error(`the script called a tool the agent may not use: ${call.name}`);
    const parsed = def.parameters.safeParse(call.arguments);
    if (!parsed.success) throw new Error(`invalid arguments for ${call.name}: ${JSON.stringify(call.arguments)}: ${parsed.error.message}`);
    return def.execute(parsed.data, {
      callId: this.callId,
      turn: this.messages.length,
      idempotencyKey: `${this.callId}:${call.id}`,
      callerNumber: this.callerNumber,
      variables: this.variables,
      signal: new AbortController().signal,
      log: silentLogger,
    });
  }

  named(name: string): { call: ToolCall; result: ToolResult }[] {
    return this.log.filter((l) => l.call.name === name);
  }
}

const names = (t: Turn): string[] => t.calls.map((c) => c.name).filter((n) => n !== 'set_variable');
const argsOf = (t: Turn, tool: string): Record<string, unknown> => t.calls.find((c) => c.name === tool)!.arguments as Record<string, unknown>;
/** The data of a successful tool result in this turn. */
function dataOf<T>(t: Turn, tool: string): T {
  const r = t.results[t.calls.findIndex((c) => c.name === tool)];
  if (!r?.ok) throw new Error(`${tool} did not succeed: ${JSON.stringify(r)}`);
  return r.data as T;
}

async function appointmentsOf(phone: string): Promise<{ id: number; service: string; status: string; local: string; vehicle: string | null }[]> {
  const { rows } = await crm.db.query<{ id: number; service: string; status: string; local: string; vehicle: string | null }>(
    `SELECT a.id, a.service, a.status, to_char(a.starts_at AT TIME ZONE 'America/New_York', 'YYYY-MM-DD HH24:MI') AS local, v.model AS vehicle
     FROM appointments a JOIN customer_phones p ON p.customer_id = a.customer_id LEFT JOIN vehicles v ON v.id = a.vehicle_id
     WHERE p.phone = $1 ORDER BY a.id`,
    [phone],
  );
  return rows;
}

describe('car-service pack: booking', () => {
  it('verifies the caller by number, offers free times, confirms, books, and closes the call', async () => {
    const call = await Call.from(JAMES);
    const first = await call.say('Hi, I would like to book an oil change.');
    expect(names(first)).toEqual(['lookup_customer']);
    expect(first.calls[0]!.arguments).toEqual({});
    expect(first.text).toBe('Hello James, I have your account here. Which day would you like to bring it in for the oil change?');

    const day = await call.say('On Thursday, please.');
    expect(names(day)).toEqual(['get_available_slots']);
    expect(day.calls.find((c) => c.name === 'get_available_slots')!.arguments).toEqual({ date: '2026-11-26', service: 'oil change' });
    expect(day.text).toBe('On Thursday the 26th of November I can do 8 AM, 8:30 AM or 9 AM. Which time would you like?');

    const time = await call.say('Ten thirty, please.');
    expect(time.calls).toEqual([]);
    expect(time.text).toBe("I'll book the oil change for your 2020 Tesla Model 3, plate EV3SMTH, on Thursday the 26th of November at 10:30 AM. Shall I go ahead?");

    expect(await appointmentsOf(JAMES)).toEqual([]); // nothing is booked before the yes
    const yes = await call.say('Yes, please.');
    expect(names(yes)).toEqual(['book_appointment']);
    expect(yes.calls.find((c) => c.name === 'book_appointment')!.arguments).toMatchObject({ date: '2026-11-26', time: '10:30', service: 'oil change' });
    expect(yes.text).toBe("Done. Your oil change is booked for Thursday the 26th of November at 10:30 AM. We'll see you then. Is there anything else I can help you with?");
    expect(await appointmentsOf(JAMES)).toEqual([{ id: expect.any(Number) as number, service: 'oil change', status: 'booked', local: '2026-11-26 10:30', vehicle: 'Model 3' }]);
    // Context for a colleague, should the caller be transferred later.
    expect(call.variable.get('customer_name')).toBe('James Smith');
    expect(call.variable.get('intent')).toBe('book_service');

    const bye = await call.say('No, that is all. Thank you, goodbye.');
    expect(bye.text).toBe("Thank you for calling Otto's Auto. Goodbye!");
    expect(names(bye)).toEqual(['end_call']);
    expect(call.action).toEqual({ kind: 'hangup', reason: 'completed' });
  });

  it('asks which car when the caller has two, and picks a time by its position', async () => {
    const call = await Call.from(MARIA);
    const first = await call.say('I need a tire rotation please');
    expect(first.text).toBe(
      'Hello Maria, I have your account here. Which car is it for: your 2019 Toyota Camry, plate 7ABC123 or 2022 Honda CR-V, plate 8XYZ789?',
    );
    expect((await call.say('the Camry')).text).toBe('Which day would you like to bring it in for the tire rotation?');
    const day = await call.say('tomorrow');
    expect(day.calls.find((c) => c.name === 'get_available_slots')!.arguments).toEqual({ date: '2026-11-24', service: 'tire rotation' });
    expect(dataOf<{ free_start_times: string[] }>(day, 'get_available_slots').free_start_times.slice(0, 3)).toEqual(['08:00', '08:30', '09:00']);
    const pick = await call.say('the second one');
    expect(pick.text).toBe("I'll book the tire rotation for your camry, on Tuesday the 24th of November at 8:30 AM. Shall I go ahead?");
    const yes = await call.say('yes');
    expect(yes.calls.find((c) => c.name === 'book_appointment')!.arguments).toMatchObject({ date: '2026-11-24', time: '08:30', service: 'tire rotation', vehicle: 'camry' });
    expect((await appointmentsOf(MARIA)).find((a) => a.service === 'tire rotation')).toMatchObject({ local: '2026-11-24 08:30', vehicle: 'Camry', status: 'booked' });
  });

  it('offers the free times again when the chosen one was taken meanwhile', async () => {
    const call = await Call.from(JAMES);
    await call.say('I want to book an appointment');
    expect((await call.say('an inspection')).text).toBe('Which day would you like to bring it in for the inspection?');
    await call.say('friday');
    const confirm = await call.say('at two');
    expect(confirm.text).toContain('on Friday the 27th of November at 2 PM. Shall I go ahead?');
    // Both bays are taken at 2 PM before the caller says yes.
    await crm.db.query(
      `INSERT INTO appointments (customer_id, service, bay, starts_at, ends_at)
       SELECT c.id, 'inspection', b, '2026-11-27 14:00'::timestamp AT TIME ZONE 'America/New_York', '2026-11-27 15:00'::timestamp AT TIME ZONE 'America/New_York'
       FROM customers c, generate_series(1, 2) AS b WHERE c.first_name = 'Jamie'`,
    );
    const taken = await call.say('yes');
    expect(names(taken)).toEqual(['book_appointment', 'get_available_slots']);
    expect(taken.results[taken.calls.findIndex((c) => c.name === 'book_appointment')]).toMatchObject({ ok: false });
    expect(taken.text).toMatch(/^I'm sorry, 2 PM has just been taken\. On Friday the 27th of November I can do 8 AM, 8:30 AM or 9 AM. Which time would you like\?$/);
    expect((await call.say('two')).text).toMatch(/^Sorry, that time isn't free, or I didn't catch it\./);
    const confirm2 = await call.say('the earliest');
    expect(confirm2.text).toContain('at 8 AM. Shall I go ahead?');
    const booked = await call.say('yes please');
    expect(booked.text).toMatch(/^Done\. Your inspection is booked for Friday the 27th of November at 8 AM/);
  });

  it('takes a new day said where a time is expected, and a day and time said with the request', async () => {
    const call = await Call.from(JAMES);
    await call.say('I would like to book an oil change on Thursday at ten');
    // Both said at once: straight to the confirmation (the calendar checks the time when booking).
    expect(call.named('get_available_slots').map((l) => l.call.arguments)).toEqual([{ date: '2026-11-26', service: 'oil change' }]);
    expect(call.messages.at(-1)!.content).toBe("I'll book the oil change for your 2020 Tesla Model 3, plate EV3SMTH, on Thursday the 26th of November at 10 AM. Shall I go ahead?");
    expect((await call.say('no')).text).toBe('No problem. Would you like a different day or time?');
    expect((await call.say('yes')).text).toBe('Which other day would suit you?');
    expect((await call.say('wednesday')).text).toBe('On Wednesday the 25th of November I can do 8 AM, 8:30 AM or 9 AM. Which time would you like?');
    const moved = await call.say('can we do friday instead');
    expect(argsOf(moved, 'get_available_slots')).toEqual({ date: '2026-11-27', service: 'oil change' });
    expect(moved.text).toBe('On Friday the 27th of November I can do 8 AM, 8:30 AM or 9 AM. Which time would you like?');
    expect((await call.say('a different day')).text).toBe('Which other day would suit you?');
  });

  it('refuses a closed day and a day that is fully past, and moves on to the next free day', async () => {
    const call = await Call.from(JAMES);
    await call.say('book an oil change');
    const saturday = await call.say('on saturday');
    expect(saturday.text).toBe("We don't take appointments on Saturdays. We are open Monday to Friday. Which other day would suit you?");
    // Late on Monday: nothing left today, so the next open day is offered.
    now = new Date('2026-11-23T22:45:00Z'); // 17:45 in New York
    const today = await call.say('today');
    expect(today.calls.find((c) => c.name === 'get_available_slots')!.arguments).toEqual({ date: '2026-11-23', service: 'oil change' });
    expect(today.text).toBe(
      "I'm sorry, Monday the 23rd of November is fully booked. The next free day is Tuesday the 24th of November, and I can do 8 AM, 8:30 AM or 9 AM. Which time would you like?",
    );
    expect((await call.say('nine oh five')).text).toMatch(/^Sorry, which time\?/); // not a slot on the grid
    expect((await call.say('the first one')).text).toBe("I'll book the oil change for your 2020 Tesla Model 3, plate EV3SMTH, on Tuesday the 24th of November at 8 AM. Shall I go ahead?");
    expect((await call.say('no')).text).toBe('No problem. Would you like a different day or time?');
    expect((await call.say('no thanks')).text).toBe('Is there anything else I can help you with?');
  });
});

describe('car-service pack: moving and cancelling', () => {
  it('moves the only appointment to a new day and time', async () => {
    const call = await Call.from(SEAN);
    const first = await call.say('Hello, I need to move my appointment.');
    expect(names(first)).toEqual(['lookup_customer', 'get_upcoming_appointments']);
    expect(first.text).toBe(
      'Hello Sean, I have your account here. I can see your inspection on Wednesday the 25th of November at 1 PM. Which day would you like to move it to?',
    );
    const day = await call.say('Friday, please.');
    expect(day.calls.find((c) => c.name === 'get_available_slots')!.arguments).toEqual({ date: '2026-11-27', service: 'inspection' });
    const offered = dataOf<{ free_start_times: string[] }>(day, 'get_available_slots').free_start_times;
    const pick = await call.say('The second one.');
    expect(pick.text).toBe(`I'll move your inspection from Wednesday the 25th of November at 1 PM to Friday the 27th of November at 8:30 AM. Shall I go ahead?`);
    expect(offered[1]).toBe('08:30');
    const [before] = await appointmentsOf(SEAN);
    const yes = await call.say('Yes.');
    expect(names(yes)).toEqual(['reschedule_appointment']);
    expect(argsOf(yes, 'reschedule_appointment')).toEqual({ appointment_id: before!.id, date: '2026-11-27', time: '08:30' });
    expect(yes.text).toBe('Done. Your inspection is now on Friday the 27th of November at 8:30 AM. Is there anything else I can help you with?');
    expect(await appointmentsOf(SEAN)).toEqual([{ ...before, local: '2026-11-27 08:30' }]);
    expect(names(await call.say('no thank you goodbye'))).toEqual(['end_call']);
  });

  it('cancels the next appointment after a yes, and keeps it after a no', async () => {
    // A second appointment, after the seeded oil change on Tuesday at 9.
    await crm.db.query(
      `INSERT INTO appointments (customer_id, service, bay, starts_at, ends_at)
       SELECT customer_id, 'diagnostics', 1, '2026-11-30 15:00'::timestamp AT TIME ZONE 'America/New_York', '2026-11-30 16:00'::timestamp AT TIME ZONE 'America/New_York'
       FROM customer_phones WHERE phone = $1`,
      [MARIA],
    );
    const keep = await Call.from(MARIA);
    const ask = await keep.say('I want to cancel my appointment');
    expect(names(ask)).toEqual(['lookup_customer', 'get_upcoming_appointments']);
    expect(ask.text).toBe('Hello Maria, I have your account here. Your next appointment is the oil change on Tuesday the 24th of November at 9 AM. Shall I cancel it?');
    expect((await keep.say('no')).text).toBe('The one after that is the diagnostics on Monday the 30th of November at 3 PM. Shall I cancel that one?');
    expect((await keep.say('no, keep it')).text).toBe("All right, I won't cancel anything. Is there anything else I can help you with?");
    expect(keep.named('cancel_appointment')).toEqual([]);

    const call = await Call.from(MARIA);
    await call.say('I would like to cancel my appointment');
    await call.say('no');
    const yes = await call.say('Yes, please.');
    expect(names(yes)).toEqual(['cancel_appointment']);
    expect(yes.text).toBe('Done. Your diagnostics on Monday the 30th of November at 3 PM is cancelled. Is there anything else I can help you with?');
    expect(await appointmentsOf(MARIA)).toEqual([
      expect.objectContaining({ service: 'oil change', status: 'booked', local: '2026-11-24 09:00' }),
      expect.objectContaining({ service: 'diagnostics', status: 'cancelled', local: '2026-11-30 15:00' }),
    ]);

    const first = await Call.from(MARIA);
    await first.say('cancel my booking');
    const done = await first.say('yes');
    expect(argsOf(done, 'cancel_appointment')).toEqual({ appointment_id: (await appointmentsOf(MARIA))[0]!.id, reason: 'cancelled by the customer on the phone' });
    expect(done.text).toBe('Done. Your oil change on Tuesday the 24th of November at 9 AM is cancelled. Is there anything else I can help you with?');
    expect((await appointmentsOf(MARIA)).map((a) => a.status)).toEqual(['cancelled', 'cancelled']);
  });

  it('tells a caller what is booked', async () => {
    const call = await Call.from(OLENA);
    const t = await call.say('what appointments do i have');
    expect(t.text).toBe(
      'Hello Olena, I have your account here. You have one appointment: the tire rotation on Thursday the 26th of November at 10 AM. Is there anything else I can help you with?',
    );
  });
});

describe('car-service pack: unknown callers and people', () => {
  it('asks an unknown caller for a name, never acts on it, and offers a colleague', async () => {
    const call = await Call.from(STRANGER);
    const first = await call.say('I would like to book an inspection.');
    expect(first.text).toBe(
      "I'm sorry, I couldn't find an account for the number you're calling from. To book or change an appointment I need to find your account. Could you tell me your first and last name, please?",
    );
    const named = await call.say('My name is Jamie Smithers.');
    expect(names(named)).toEqual(['search_customers_by_name']);
    expect(named.calls.find((c) => c.name === 'search_customers_by_name')!.arguments).toEqual({ first: 'Jamie', last: 'Smithers' });
    expect(named.text).toBe(
      'Thank you. I found an account for Jamie Smithers, with a phone number ending in 12. For your security, I can only book or change appointments when you call from the number on the account. Would you like me to put you through to a colleague who can help?',
    );
    const yes = await call.say('yes please');
    expect(yes.text).toBe('Putting you through now. Please hold.');
    expect(names(yes)).toEqual(['transfer_call']);
    expect(call.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
    expect(call.named('book_appointment')).toEqual([]);
  });

  it('hands an unknown caller whose name it cannot catch to a colleague', async () => {
    const call = await Call.from(STRANGER);
    await call.say('I need to move my appointment');
    expect((await call.say('mind am is strange the first')).text).toBe("Sorry, I didn't get your name. Please say your first name and your last name.");
    const t = await call.say('yes please');
    expect(t.text).toBe("I'm sorry, I didn't catch your name. Let me put you through to a colleague who can help. Please hold.");
    expect(call.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
    expect(call.named('search_customers_by_name')).toEqual([]);
  });

  it('hands the caller to a person on request, and after two misunderstandings', async () => {
    const asked = await Call.from(JAMES);
    const t = await asked.say('Can I talk to a real person please');
    expect(t.text).toBe("Hello James, I have your account here. Of course. I'm putting you through to a colleague now. Please hold.");
    expect(asked.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
    expect(asked.variable.get('transfer_reason')).toBe('caller asked for a person');

    const lost = await Call.from(JAMES);
    expect((await lost.say('purple monkey dishwasher')).text).toMatch(/Sorry, I didn't catch that\. You can say, for example, book an oil change/);
    const second = await lost.say('banana');
    expect(second.text).toBe("I'm sorry, I'm having trouble understanding. Let me put you through to a colleague.");
    expect(lost.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
  });

  it('answers questions about the business in between', async () => {
    const call = await Call.from(JAMES);
    const t = await call.say('what are your opening hours');
    expect(t.text).toContain('Our service department is open Monday to Friday, from 8 AM to 6 PM');
    expect(t.text).toMatch(/Is there anything else I can help you with\?$/);
  });
});

describe('car-service pack: the scripted callers of the end-to-end test', () => {
  it('say a day that the scenario reads as the date the goals expect, whatever day it is', () => {
    const hours = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, closedDates: ['2026-12-25'] };
    for (let d = 0; d < 14; d++) {
      const now = new Date(Date.UTC(2026, 11, 14 + d, 3, 30)); // 14..27 December, 22:30 the evening before in New York
      const today = calendarDateIn(now, 'America/New_York');
      const days = sayableDays({ timezone: 'America/New_York', hours: { ...hours, days: [...hours.days] }, now });
      expect(days.length).toBeGreaterThan(0);
      for (const day of days) {
        expect(day.date).not.toBe('2026-12-25');
        expect(parseSpokenDate(`On ${day.weekday}, please.`, today, 'future')).toBe(day.date);
      }
      const { book, move } = carServiceScripts({ timezone: 'America/New_York', hours: { ...hours, days: [...hours.days] }, now });
      expect(book.steps[1]!.say).toBe(`On ${days[0]!.weekday}, please.`);
      expect(move.steps[1]!.say).toBe(`On ${days.at(-1)!.weekday}, please.`);
    }
  });
});
