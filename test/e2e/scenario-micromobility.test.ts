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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MicromobilityConfigSchema } from '../../plugins/tools-micromobility/config.js';
import { loadConfig } from '../../src/config/load.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import {
  BICYCLE_LOCK_UNRESOLVED,
  FROZEN_APP,
  RED_ZONE_FALSE_TRIGGER,
  SCOOTER_LOCK_RESTART,
  type MicromobilityScript,
} from '../../src/demo/scenario-scripts/micromobility.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, type ScriptedCallResult, SummaryInbox } from '../../src/demo/scripted-call.js';
import { silentLogger } from '../../src/log.js';
import { startFromConfig, type RunningFromConfig } from '../../src/runtime.js';
import type { Db } from '../../src/storage/db.js';
import { openDb } from '../../src/storage/open.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { useSandbox } from '../support/pbx.js';

const REPO = resolve(import.meta.dirname, '../..');
const sandbox = useSandbox('micromobility');

describe('micromobility pack: find the trip by number, four support flows, strict actions — through the sandbox PBX', () => {
  let sb: RunningFromConfig | undefined;
  let callerVoice: CallerVoice | undefined;
  let scratch: ScratchDatabase | undefined;
  let db: Db | undefined;
  let journalDir: string | undefined;
  const recorder = new ConversationRecorder();
  const inbox = new SummaryInbox();

  beforeAll(async () => {
    try {
      scratch = await createScratchDatabase('sbmicromob');
    } catch (err) {
      throw new Error(`this test needs PostgreSQL (127.0.0.1:5432 or TEST_DATABASE_URL) to read the fleet the agent writes: ${(err as Error).message}`);
    }
    journalDir = mkdtempSync(join(tmpdir(), 'sb-micromobility-journal-'));
    const c = sandbox().connection;
    const loaded = await loadConfig(resolve(REPO, 'scenarios/micromobility.switchboard.yaml'), {
      env: { ...process.env, SWITCHBOARD_HTTP_PORT: '0', DATABASE_URL: scratch.url, SEED_DEMO_DATA: 'true', SWITCHBOARD_JOURNAL_DIR: journalDir },
    });
    const fleet = MicromobilityConfigSchema.parse(loaded.config.plugins['tools-micromobility']!.config);
    expect(fleet.databaseUrl).toBe(scratch.url);
    // The seed's value, not a test shortcut: the calls below wait the real 10 s.
    expect(fleet.geofenceRecheckMs).toBe(10_000);
    sb = await startFromConfig(loaded, {
      ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
      logger: silentLogger,
      observerFor: recorder.observerFor,
      onCallEnded: inbox.onCallEnded,
    });
    db = await openDb(scratch.url);
    callerVoice = await createCallerVoice(silentLogger, REPO);
  }, 300_000);

  afterAll(async () => {
    await sb?.stop();
    await callerVoice?.close();
    await db?.close();
    await scratch?.drop();
    if (journalDir) rmSync(journalDir, { recursive: true, force: true });
  }, 120_000);

  async function run(script: MicromobilityScript): Promise<ScriptedCallResult> {
    const result = await runScriptedCall(script, {
      sip: { host: '127.0.0.1', port: sandbox().ports.sip },
      recorder,
      voice: (text) => callerVoice!.render(text),
      turnTimeoutMs: 60_000,
      summaryFor: inbox.summaryFor,
    });
    console.log(`--- ${script.name} (caller ${script.from}): ${script.description}\n${formatTranscript(result)}`);
    return result;
  }

  async function expectGoals(script: MicromobilityScript, r: ScriptedCallResult): Promise<void> {
    const goal = script.goal(r);
    const inDb = await script.checkDb(db!, r);
    console.log(`    goal: ${goal.ok ? 'reached' : 'MISSED'}: ${goal.why}\n    database: ${inDb.ok ? 'ok' : 'WRONG'}: ${inDb.why}`);
    expect(goal).toEqual({ ok: true, why: expect.any(String) as string });
    expect(inDb).toEqual({ ok: true, why: expect.any(String) as string });
    // The trip came from the caller ID, never from anything the caller said.
    expect(r.summary?.info.caller.number).toBe(script.from);
    expect(r.tools.find((t) => t.call.name === 'get_active_trip')?.call.arguments).toEqual({});
    // Only the seed's actions and look-ups were used.
    const allowed = ['get_active_trip', 'get_vehicle_status', 'end_trip', 'restart_transport', 'create_ticket', 'transfer_call', 'end_call', 'set_variable'];
    for (const t of r.tools) expect(allowed).toContain(t.call.name);
    expect(r.tools.filter((t) => t.failure === 'refused' || t.failure === 'invalid')).toEqual([]);
  }

  test('red zone false trigger: the 10 s re-check finds the scooter parked, ends the trip and waives the extra minutes', async () => {
    const r = await run(RED_ZONE_FALSE_TRIGGER);
    await expectGoals(RED_ZONE_FALSE_TRIGGER, r);
    const end = r.tools.find((t) => t.call.name === 'end_trip')!;
    // The tool really waited for the re-check (and the caller heard speech meanwhile, not silence).
    expect(end.durationMs).toBeGreaterThanOrEqual(10_000);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll check again in about ten seconds/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /waived the \d+ extra minutes/.test(e.text))).toBe(true);
  }, 300_000);

  test('scooter lock: kickstand, the app, then restart_transport fixes the lock and the trip is ended', async () => {
    const r = await run(SCOOTER_LOCK_RESTART);
    await expectGoals(SCOOTER_LOCK_RESTART, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /kickstand/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /tap End ride in the app/.test(e.text))).toBe(true);
  }, 300_000);

  test('bicycle lock not fixed by the steps: ticket opened, caller transferred to the operator with the context', async () => {
    const r = await run(BICYCLE_LOCK_UNRESOLVED);
    await expectGoals(BICYCLE_LOCK_UNRESOLVED, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /push the lock lever/.test(e.text))).toBe(true);
    expect(r.transcript.some((e) => e.who === 'agent' && /roll the bicycle/.test(e.text))).toBe(true);
    const vars = r.tools.filter((t) => t.call.name === 'set_variable').map((t) => (t.call.arguments as { name: string }).name);
    for (const v of ['trip_id', 'vehicle_code', 'steps_tried', 'transfer_reason', 'ticket_id']) expect(vars).toContain(v);
  }, 300_000);

  test('frozen app: the agent ends the trip on the rider’s behalf', async () => {
    const r = await run(FROZEN_APP);
    await expectGoals(FROZEN_APP, r);
  }, 300_000);

  test('nothing is left behind', async () => {
    await new Promise((r) => setTimeout(r, 500));
    expect(sb!.controller.activeCalls).toBe(0);
    expect(sb!.openEndpoints()).toBe(0);
    expect(await sb!.ari.listBridges()).toEqual([]);
  });
});
