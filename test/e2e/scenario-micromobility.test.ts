/**
 * The micromobility pack end to end: the sandbox Asterisk (instance "micromobility"),
 * Switchboard started from scenarios/micromobility.switchboard.yaml with the offline plugins
 * (PocketSphinx in grammar mode, the micromobility scenario, Flite, the fleet tools on a scratch
 * PostgreSQL database seeded with the demo riders and the production 10 s geofence re-check),
 * and scripted SIP callers speaking with a Flite voice from demo riders' numbers. Each call must
 * reach its goal (the right tool calls with the right results, the agent closing or
 * transferring the call) and leave the fleet database as the agent said (trip rows ended,
 * minutes waived, tickets linked to the trip). The two-sided transcripts are printed.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (or TEST_DATABASE_URL): the test reads the same database
 * the running Switchboard writes.
 */
import { describe, expect, test } from 'vitest';
import { MicromobilityConfigSchema } from '../../plugins/tools-micromobility/config.js';
import {
  BICYCLE_LOCK_UNRESOLVED,
  FROZEN_APP,
  RED_ZONE_FALSE_TRIGGER,
  SCOOTER_LOCK_RESTART,
  type MicromobilityScript,
} from '../../src/demo/scenario-scripts/micromobility.js';
import type { ScriptedCallResult } from '../../src/demo/scripted-call.js';
import { usePackRun } from '../support/pack-run.js';

const pack = usePackRun({
  instance: 'micromobility',
  config: 'scenarios/micromobility.switchboard.yaml',
  dbPrefix: 'sbmicromob',
  dbHolds: 'fleet',
  onConfig: (loaded, databaseUrl) => {
    const fleet = MicromobilityConfigSchema.parse(loaded.config.plugins['tools-micromobility']!.config);
    expect(fleet.databaseUrl).toBe(databaseUrl);
    // The seed's value, not a test shortcut: the calls below wait the real 10 s.
    expect(fleet.geofenceRecheckMs).toBe(10_000);
  },
});

describe('micromobility pack: find the trip by number, four support flows, strict actions — through the sandbox PBX', () => {
  async function expectGoals(script: MicromobilityScript, r: ScriptedCallResult): Promise<void> {
    await pack.expectGoalReached(script, r);
    // The trip came from the caller ID, never from anything the caller said.
    expect(r.tools.find((t) => t.call.name === 'get_active_trip')?.call.arguments).toEqual({});
    // Only the seed's actions and look-ups were used.
    const allowed = ['get_active_trip', 'get_vehicle_status', 'end_trip', 'restart_transport', 'create_ticket', 'transfer_call', 'end_call', 'set_variable'];
    for (const t of r.tools) expect(allowed).toContain(t.call.name);
    expect(r.tools.filter((t) => t.failure === 'refused' || t.failure === 'invalid')).toEqual([]);
  }

  test('red zone false trigger: the 10 s re-check finds the scooter parked, ends the trip and waives the extra minutes', async () => {
    const r = await pack.run(RED_ZONE_FALSE_TRIGGER);
    await expectGoals(RED_ZONE_FALSE_TRIGGER, r);
    const end = r.tools.find((t) => t.call.name === 'end_trip')!;
    // The tool really waited for the re-check (and the caller heard speech meanwhile, not silence).
    expect(end.durationMs).toBeGreaterThanOrEqual(10_000);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll check again in about ten seconds/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /waived the \d+ extra minutes/.test(e.text))).toBe(true);
  }, 300_000);

  test('scooter lock: kickstand, the app, then restart_transport fixes the lock and the trip is ended', async () => {
    const r = await pack.run(SCOOTER_LOCK_RESTART);
    await expectGoals(SCOOTER_LOCK_RESTART, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /kickstand/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /tap End ride in the app/.test(e.text))).toBe(true);
  }, 300_000);

  test('bicycle lock not fixed by the steps: ticket opened, caller transferred to the operator with the context', async () => {
    const r = await pack.run(BICYCLE_LOCK_UNRESOLVED);
    await expectGoals(BICYCLE_LOCK_UNRESOLVED, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /push the lock lever/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /roll the bicycle/.test(e.text))).toBe(true);
    const vars = r.tools.filter((t) => t.call.name === 'set_variable').map((t) => (t.call.arguments as { name: string }).name);
    for (const v of ['trip_id', 'vehicle_code', 'steps_tried', 'transfer_reason', 'ticket_id']) expect(vars).toContain(v);
  }, 300_000);

  test('frozen app: the agent ends the trip on the rider’s behalf', async () => {
    const r = await pack.run(FROZEN_APP);
    await expectGoals(FROZEN_APP, r);
  }, 300_000);

  test('nothing is left behind', () => pack.expectNothingLeftBehind());
});
