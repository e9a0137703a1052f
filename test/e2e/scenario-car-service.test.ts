/**
 * The car-service scenario pack end to end: the sandbox Asterisk (instance "carservice"),
 * Switchboard started from scenarios/car-service.switchboard.yaml with the offline plugins
 * (PocketSphinx in grammar mode, the car-service scenario, Flite, the CRM on a scratch
 * PostgreSQL database seeded with the demo customers), and scripted SIP callers speaking with a
 * Flite voice from demo customers' numbers. Each call must reach its goal (the right tool calls,
 * the agent closing or transferring the call) and leave the CRM database as the agent said
 * (the booking, the move, the cancellation are rows in `appointments`). The two-sided
 * transcripts are printed.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (or TEST_DATABASE_URL), as the storage tests do: the test
 * reads the same database the running Switchboard writes.
 */
import { describe, expect, test } from 'vitest';
import { carServiceScripts, type CarServiceScript } from '../../src/demo/scenario-scripts/car-service.js';
import type { ScriptedCallResult } from '../../src/demo/scripted-call.js';
import { CrmConfigSchema } from '../../plugins/tools-crm/config.js';
import { usePackRun } from '../support/pack-run.js';

let scripts: ReturnType<typeof carServiceScripts>;
const pack = usePackRun({
  instance: 'carservice',
  config: 'scenarios/car-service.switchboard.yaml',
  dbPrefix: 'sbcarsvc',
  dbHolds: 'CRM',
  onConfig: (loaded, databaseUrl) => {
    const crm = CrmConfigSchema.parse(loaded.config.plugins['tools-crm']!.config);
    expect(crm.databaseUrl).toBe(databaseUrl);
    scripts = carServiceScripts({ timezone: crm.timezone, hours: crm.businessHours });
  },
});

describe('car-service pack: verify by number, book / move / cancel, confirm, hang up — through the sandbox PBX', () => {
  async function expectGoals(script: CarServiceScript, r: ScriptedCallResult): Promise<void> {
    await pack.expectGoalReached(script, r);
    // Identity came from the caller ID, never from anything the caller said.
    const lookup = r.tools.find((t) => t.call.name === 'lookup_customer');
    expect(lookup?.call.arguments).toEqual({});
  }

  test('a known caller books an oil change; the agent confirms it and hangs up', async () => {
    const r = await pack.run(scripts.book);
    await expectGoals(scripts.book, r);
    expect(r.end.reason).toBe('remote-bye');
    // Nothing was booked before the caller's yes: one booking call, after the confirmation.
    expect(r.tools.filter((t) => t.call.name === 'book_appointment')).toHaveLength(1);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll book the oil change .* Shall I go ahead\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('a known caller moves an appointment to another day, picking a free time by its position', async () => {
    const r = await pack.run(scripts.move);
    await expectGoals(scripts.move, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll move your inspection from .* to .* Shall I go ahead\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('a known caller cancels an appointment after it is read back', async () => {
    const r = await pack.run(scripts.cancel);
    await expectGoals(scripts.cancel, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /Your next appointment is the .* Shall I cancel it\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('an unknown number is never verified by a name: the caller is offered a colleague and transferred', async () => {
    const r = await pack.run(scripts.stranger);
    await expectGoals(scripts.stranger, r);
    expect(r.tools.find((t) => t.call.name === 'transfer_call')?.call.arguments).toMatchObject({ destination: 'operator' });
  }, 300_000);

  test('nothing is left behind', () => pack.expectNothingLeftBehind());
});
