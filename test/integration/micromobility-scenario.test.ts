/**
 * The micromobility scenario pack at the text level: scenarios/micromobility.yaml run by the
 * llm-script engine, its tool calls validated and executed the way the conversation loop does
 * (allowlist, zod schema, idempotency key per call/turn/tool call) against the real
 * tools-micromobility plugin on PGlite (demo fleet, 100 ms geofence re-check) and the real
 * built-in transfer_call / end_call / set_variable. Every flow of the seed, both vehicle types,
 * the database state each leaves behind. (The same conversations through the PBX, spoken and
 * recognised: test/e2e/scenario-micromobility.test.ts.)
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptProvider } from '../../plugins/llm-script/index.js';
import { createMicromobilityToolkit, MicromobilityConfigSchema, type MicromobilityToolkit } from '../../plugins/tools-micromobility/index.js';
import { builtinTools, type CallAction } from '../../src/conversation/builtin-tools.js';
import { ToolRegistry } from '../../src/conversation/tool-runner.js';
import { silentLogger } from '../../src/log.js';
import type { ChatMessage, LlmProvider, ToolCall, ToolResult } from '../../src/plugins/api.js';
import { createPgliteDb } from '../../src/storage/pglite.js';

const REPO = resolve(import.meta.dirname, '../..');
const TOOLS = ['get_active_trip', 'get_vehicle_status', 'end_trip', 'restart_transport', 'create_ticket', 'transfer_call', 'end_call', 'set_variable'];
const TRANSFER = { operator: { context: 'switchboard-handoff', extension: 'operator', description: 'a human operator' } };

interface Turn {
  said: string;
  calls: { name: string; args: unknown; result: ToolResult }[];
}

/** One call: the loop's job (history, tools, allowlist, validation) over a script session. */
class TextCall {
  readonly messages: ChatMessage[] = [];
  readonly variables = new Map<string, string>();
  readonly calls: Turn['calls'] = [];
  action: CallAction | undefined;
  private turn = 0;
  private readonly registry = new ToolRegistry();

  constructor(
    private readonly llm: Awaited<ReturnType<LlmProvider['session']>>,
    toolkit: MicromobilityToolkit,
    private readonly callerNumber: string,
    private readonly callId: string,
  ) {
    for (const t of toolkit.tools) this.registry.add(t, 'tools-micromobility');
    for (const t of builtinTools(TRANSFER, (a) => (this.action = a))) this.registry.add(t, 'built-ins');
  }

  get names(): string[] {
    return this.calls.map((c) => c.name).filter((n) => n !== 'set_variable');
  }

  async say(text: string): Promise<Turn> {
    this.turn++;
    this.messages.push({ role: 'user', content: text });
    const out: Turn = { said: '', calls: [] };
    for (let round = 0; round < 8; round++) {
      let said = '';
      const calls: ToolCall[] = [];
      for await (const ev of this.llm.respond({ system: '', messages: [...this.messages], tools: this.registry.specs(TOOLS), signal: new AbortController().signal })) {
        if (ev.type === 'text') said += ev.delta;
        if (ev.type === 'tool_call') calls.push(ev.call);
      }
      out.said += ` ${said}`;
      this.messages.push({ role: 'assistant', content: said, ...(calls.length ? { toolCalls: calls } : {}) });
      if (calls.length === 0) break;
      for (const call of calls) {
        const def = this.registry.get(call.name);
        if (!def || !TOOLS.includes(call.name)) throw new Error(`the script called a tool it was not offered: ${call.name}`);
        const parsed = def.parameters.safeParse(call.arguments ?? {});
        if (!parsed.success) throw new Error(`invalid arguments for ${call.name}: ${JSON.stringify(call.arguments)}`);
        const result = await def.execute(parsed.data, {
          callId: this.callId,
          turn: this.turn,
          idempotencyKey: `${this.callId}:${this.turn}:${call.id}`,
          callerNumber: this.callerNumber,
          variables: this.variables,
          signal: new AbortController().signal,
          log: silentLogger,
        });
        const c = { name: call.name, args: call.arguments, result };
        out.calls.push(c);
        this.calls.push(c);
        this.messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: JSON.stringify(result) });
      }
      if (this.action) break;
    }
    out.said = out.said.replace(/\s+/g, ' ').trim();
    return out;
  }
}

describe('the micromobility scenario with the real tools', () => {
  let toolkit: MicromobilityToolkit;
  let llm: LlmProvider;
  let n = 0;

  beforeAll(async () => {
    toolkit = await createMicromobilityToolkit(MicromobilityConfigSchema.parse({ seedDemoData: true, geofenceRecheckMs: 100 }), { log: silentLogger, db: await createPgliteDb() });
    llm = await createScriptProvider({ scenario: 'scenarios/micromobility.yaml' }, { configDir: REPO, log: silentLogger });
  });
  afterAll(async () => {
    await toolkit?.close();
    await llm?.close();
  });

  async function dial(callerNumber: string): Promise<TextCall> {
    n++;
    const id = `mm-call-${n}`;
    const session = await llm.session({ callId: id, agent: 'rides', language: 'en-US', variables: { caller_number: callerNumber } });
    return new TextCall(session, toolkit, callerNumber, id);
  }

  const trip = async (code: string): Promise<{ status: string; waived_minutes: number; waive_reason: string | null; minutes: number | null; end_call_id: string | null }> =>
    (
      await toolkit.db.query<{ status: string; waived_minutes: number; waive_reason: string | null; minutes: number | null; end_call_id: string | null }>(
        'SELECT t.status, t.waived_minutes, t.waive_reason, t.minutes, t.end_call_id FROM trips t JOIN fleet_vehicles v ON v.id = t.vehicle_id WHERE v.code = $1 ORDER BY t.id DESC LIMIT 1',
        [code],
      )
    ).rows[0]!;

  it('the scenario only names tools the plugins and built-ins provide, and offers the expected phrases to the recogniser', () => {
    const phrases = llm.expectedPhrases?.() ?? [];
    for (const p of ['i can not end my trip', 'the app says i am in a red zone', 'my scooter will not lock', 'the app is frozen', 'it is still stuck', 'operator']) expect(phrases).toContain(p);
  });

  it('red zone, false trigger: re-checked, trip ended, extra minutes waived, then goodbye', async () => {
    const c = await dial('+12025550201');
    const t1 = await c.say('I can not end my trip. The app says I am in a red zone, but I parked correctly.');
    expect(c.names).toEqual(['get_active_trip', 'get_vehicle_status', 'end_trip']);
    expect(t1.said).toMatch(/^I can see your trip on scooter 4 2 1 7\. The map shows your scooter in Main Street pedestrian zone, where parking isn't allowed\. Position updates from the vehicle can arrive late/);
    expect(t1.said).toMatch(/I've ended your trip and waived the \d+ extra minutes\. You pay for 15 minutes, 4 dollars and 75 cents\. Is there anything else I can help you with\?$/);
    const row = await trip('4217');
    expect(row).toMatchObject({ status: 'ended', end_call_id: 'mm-call-1' });
    expect(row.waived_minutes).toBeGreaterThan(0);
    expect(c.variables.get('issue')).toBe('red_zone');
    const t2 = await c.say('No, that is all. Thank you, goodbye.');
    expect(t2.said).toBe('Thank you for riding with us. Goodbye!');
    expect(c.action).toMatchObject({ kind: 'hangup' });
  });

  it('scooter lock: kickstand, End ride, remote restart fixes it, trip ended from the call', async () => {
    const c = await dial('+12025550202');
    expect((await c.say('My scooter will not lock.')).said).toMatch(/^I can see your trip on scooter 5 3 0 8\. Let's sort out your scooter\..*Is it standing on its kickstand now\?$/);
    expect((await c.say('Yes, it is standing.')).said).toMatch(/tap End ride in the app once more.*Did it lock\?$/);
    const t3 = await c.say('No, it did not lock.');
    expect(t3.calls.map((x) => x.name).filter((x) => x !== 'set_variable')).toEqual(['restart_transport']);
    expect(t3.said).toMatch(/^Let me restart the scooter remotely\. The scooter has restarted and its lock is responding again\..*Shall I do that now\?$/);
    const t4 = await c.say('Yes please.');
    expect(t4.calls.map((x) => x.name).filter((x) => x !== 'set_variable')).toEqual(['get_vehicle_status', 'end_trip']);
    expect(t4.said).toMatch(/^Your scooter is in a parking area\. I'm ending your trip now\. Done\. Your trip has ended: \d+ minutes, .* Is there anything else/);
    expect(await trip('5308')).toMatchObject({ status: 'ended', waived_minutes: 0 });
    await c.say('No, that is all. Goodbye.');
    expect(c.action).toMatchObject({ kind: 'hangup' });
  });

  it('bicycle lock that cannot be fixed: lever, wheel, restart, then a ticket and the operator with the context', async () => {
    const c = await dial('+12025550203');
    expect((await c.say('The lock on my bike will not close.')).said).toMatch(/^I can see your trip on bicycle 1 1 9 0\. Let's sort out the lock of your bicycle\..*Did that work\?$/);
    expect((await c.say('No, it is still stuck.')).said).toMatch(/^Please roll the bicycle .*Did it work this time\?$/);
    const t3 = await c.say('No, it still does not work.');
    expect(c.names).toEqual(['get_active_trip', 'get_vehicle_status', 'restart_transport', 'create_ticket', 'transfer_call']);
    expect(t3.said).toMatch(/^Let me restart the lock remotely\. I've restarted the lock, but it still doesn't respond\. I'm sorry, .* Your ticket number is \d( \d)*\. Please hold\.$/);
    expect(c.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
    expect(c.variables.get('steps_tried')).toBe('lock lever, rolled the wheel, remote restart');
    expect(c.variables.get('transfer_reason')).toBe('lock not fixed by the phone steps');
    expect(c.variables.get('ticket_id')).toMatch(/^\d+$/);
    const ticket = (
      await toolkit.db.query<{ summary: string; topic: string; code: string }>(
        'SELECT t.summary, tt.topic, v.code FROM tickets t JOIN trip_tickets tt ON tt.ticket_id = t.id JOIN fleet_vehicles v ON v.id = tt.vehicle_id WHERE t.id = $1',
        [Number(c.variables.get('ticket_id'))],
      )
    ).rows[0]!;
    expect(ticket).toEqual({ summary: 'Lock of bicycle 1190 not fixed by phone. Tried: lock lever, rolled the wheel, remote restart.', topic: 'lock', code: '1190' });
    expect((await trip('1190')).status).toBe('active');
  });

  it('frozen app: restart it, then the trip is ended on the caller’s behalf', async () => {
    const c = await dial('+12025550204');
    expect((await c.say('The app is frozen.')).said).toMatch(/^I can see your trip on bicycle 2 2 6 4\. Sorry about that\. Please close the app completely.*Does it work now\?$/);
    expect((await c.say('No, it is still frozen.')).said).toMatch(/I can end your trip from here.*Shall I end it now\?$/);
    const t3 = await c.say('Yes please end it.');
    expect(t3.said).toMatch(/^Your bicycle is in a parking area\. I'm ending your trip now\. Done\. Your trip has ended/);
    expect(await trip('2264')).toMatchObject({ status: 'ended', waived_minutes: 0 });
  });

  it('a real red zone: the trip stays active and the caller hears where to move the scooter', async () => {
    const c = await dial('+12025550205');
    const t1 = await c.say('Please end my trip.');
    expect(t1.said).toMatch(/in Central Station entrance, where parking isn't allowed\..*Your scooter is still in the Central Station entrance no-parking zone, so the trip cannot end there\. Please move it out of that zone, about 10 meters, still within Central Station\..*Say yes when it's there\.$/);
    expect((await trip('6031')).status).toBe('active');
    // Not moved: the second attempt is refused the same way; then the caller gives up.
    const t2 = await c.say('No.');
    expect(t2.said).toBe('Is there anything else I can help you with?');
  });

  it('no active trip: a lock problem at a free bicycle asks for its number and runs the bicycle flow', async () => {
    const c = await dial('+12025550206');
    const t1 = await c.say('I can not unlock the bike.');
    expect(t1.said).toMatch(/^I can't see an active trip on the number you're calling from\. Which vehicle is it\?/);
    const t2 = await c.say('Seven one zero zero.');
    expect(t2.calls.map((x) => x.name).filter((x) => x !== 'set_variable')).toEqual(['get_vehicle_status']);
    expect(t2.said).toMatch(/^Let's sort out the lock of your bicycle\./);
    const t3 = await c.say('Yes, it worked.');
    expect(t3.said).toBe('Great, the lock is working. Enjoy your ride. Is there anything else I can help you with?');
  });

  it('what the recogniser really made of "I am in a red zone" is not a request for a human', async () => {
    const c = await dial('+12025550205');
    // PocketSphinx (grammar mode, Flite rms over G.711) heard this in an end-to-end run.
    const t = await c.say('i can not end my trip yep says am human red zone');
    expect(c.action).toBeUndefined();
    expect(c.names).toEqual(['get_active_trip', 'get_vehicle_status', 'end_trip']);
    expect(t.said).toMatch(/Say yes when it's there\.$/);
  });

  it('asking for a person transfers at once, with the trip in the call variables', async () => {
    const c = await dial('+12025550205');
    await c.say('I want to talk to a human.');
    expect(c.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
    expect(c.variables.get('transfer_reason')).toBe('caller asked for a person');
    expect(c.variables.get('vehicle_code')).toBe('6031');
  });

  it('an unknown caller with an app problem is offered a colleague', async () => {
    const c = await dial('+12025550299');
    const t1 = await c.say('The app is frozen.');
    expect(t1.said).toMatch(/^I can't see an active trip .* Would you like to speak to a colleague\?$/);
    await c.say('Yes please.');
    expect(c.action).toMatchObject({ kind: 'transfer', destination: 'operator' });
  });
});
