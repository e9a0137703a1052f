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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { carServiceScripts, type CarServiceScript } from '../../src/demo/scenario-scripts/car-service.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, type ScriptedCallResult, SummaryInbox } from '../../src/demo/scripted-call.js';
import { silentLogger } from '../../src/log.js';
import { startFromConfig, type RunningFromConfig } from '../../src/runtime.js';
import type { Db } from '../../src/storage/db.js';
import { openDb } from '../../src/storage/open.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { CrmConfigSchema } from '../../plugins/tools-crm/config.js';
import { useSandbox } from '../support/pbx.js';

const REPO = resolve(import.meta.dirname, '../..');
const sandbox = useSandbox('carservice');

describe('car-service pack: verify by number, book / move / cancel, confirm, hang up — through the sandbox PBX', () => {
  let sb: RunningFromConfig | undefined;
  let callerVoice: CallerVoice | undefined;
  let scratch: ScratchDatabase | undefined;
  let db: Db | undefined;
  let journalDir: string | undefined;
  let scripts: ReturnType<typeof carServiceScripts>;
  const recorder = new ConversationRecorder();
  const inbox = new SummaryInbox();

  beforeAll(async () => {
    try {
      scratch = await createScratchDatabase('sbcarsvc');
    } catch (err) {
      throw new Error(`this test needs PostgreSQL (127.0.0.1:5432 or TEST_DATABASE_URL) to read the CRM the agent writes: ${(err as Error).message}`);
    }
    journalDir = mkdtempSync(join(tmpdir(), 'sb-carservice-journal-'));
    const c = sandbox().connection;
    const loaded = await loadConfig(resolve(REPO, 'scenarios/car-service.switchboard.yaml'), {
      env: { ...process.env, SWITCHBOARD_HTTP_PORT: '0', DATABASE_URL: scratch.url, SEED_DEMO_DATA: 'true', SWITCHBOARD_JOURNAL_DIR: journalDir },
    });
    const crm = CrmConfigSchema.parse(loaded.config.plugins['tools-crm']!.config);
    expect(crm.databaseUrl).toBe(scratch.url);
    scripts = carServiceScripts({ timezone: crm.timezone, hours: crm.businessHours });
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

  async function run(script: CarServiceScript): Promise<ScriptedCallResult> {
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

  async function expectGoals(script: CarServiceScript, r: ScriptedCallResult): Promise<void> {
    const goal = script.goal(r);
    const inDb = await script.checkDb(db!, r);
    console.log(`    goal: ${goal.ok ? 'reached' : 'MISSED'}: ${goal.why}\n    database: ${inDb.ok ? 'ok' : 'WRONG'}: ${inDb.why}`);
    expect(goal).toEqual({ ok: true, why: expect.any(String) as string });
    expect(inDb).toEqual({ ok: true, why: expect.any(String) as string });
    // Identity came from the caller ID, never from anything the caller said.
    const lookup = r.tools.find((t) => t.call.name === 'lookup_customer');
    expect(lookup?.call.arguments).toEqual({});
    expect(r.summary?.info.caller.number).toBe(script.from);
  }

  test('a known caller books an oil change; the agent confirms it and hangs up', async () => {
    const r = await run(scripts.book);
    await expectGoals(scripts.book, r);
    expect(r.end.reason).toBe('remote-bye');
    // Nothing was booked before the caller's yes: one booking call, after the confirmation.
    expect(r.tools.filter((t) => t.call.name === 'book_appointment')).toHaveLength(1);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll book the oil change .* Shall I go ahead\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('a known caller moves an appointment to another day, picking a free time by its position', async () => {
    const r = await run(scripts.move);
    await expectGoals(scripts.move, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /I'll move your inspection from .* to .* Shall I go ahead\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('a known caller cancels an appointment after it is read back', async () => {
    const r = await run(scripts.cancel);
    await expectGoals(scripts.cancel, r);
    expect(r.transcript.some((e) => e.who === 'agent' && /Your next appointment is the .* Shall I cancel it\?/.test(e.text))).toBe(true);
  }, 300_000);

  test('an unknown number is never verified by a name: the caller is offered a colleague and transferred', async () => {
    const r = await run(scripts.stranger);
    await expectGoals(scripts.stranger, r);
    expect(r.tools.find((t) => t.call.name === 'transfer_call')?.call.arguments).toMatchObject({ destination: 'operator' });
  }, 300_000);

  test('nothing is left behind', async () => {
    await new Promise((r) => setTimeout(r, 500));
    expect(sb!.controller.activeCalls).toBe(0);
    expect(sb!.openEndpoints()).toBe(0);
    expect(await sb!.ari.listBridges()).toEqual([]);
  });
});
