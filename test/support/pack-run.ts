/**
 * A scenario pack end to end, for the e2e pack tests: the sandbox Asterisk, a scratch
 * PostgreSQL database for the pack's tools (seeded with the demo data), a scratch records
 * journal, Switchboard started from the pack's config, and scripted SIP callers speaking with the
 * Flite caller voice. `usePackRun()` wires that into vitest's beforeAll/afterAll (call it at the
 * top of the file, as useSandbox); `run()` places one scripted call and prints its two-sided
 * transcript, `expectGoalReached()` checks what every pack call must end with,
 * `expectNothingLeftBehind()` what the last test checks.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (or TEST_DATABASE_URL): the tests read the same database
 * the running Switchboard writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadConfig, type LoadedConfig } from '../../src/config/load.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, type DemoScript, type ScriptedCallResult, SummaryInbox } from '../../src/demo/scripted-call.js';
import { silentLogger } from '../../src/log.js';
import { startFromConfig, type RunningFromConfig } from '../../src/runtime.js';
import type { Db, Queryable } from '../../src/storage/db.js';
import { openDb } from '../../src/storage/open.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { useSandbox } from './pbx.js';

const REPO = resolve(import.meta.dirname, '../..');

/** A pack's scripted call (CarServiceScript, MicromobilityScript): a caller's number and a database check. */
export interface PackScript extends DemoScript {
  from: string;
  checkDb(db: Queryable, r: ScriptedCallResult): Promise<{ ok: boolean; why: string }>;
}

export interface PackRunOptions {
  /** The sandbox PBX instance (also names the scratch journal directory). */
  instance: string;
  /** The pack's config file, relative to the repository root. */
  config: string;
  /** Name prefix of the scratch database. */
  dbPrefix: string;
  /** What the database holds, for the error when PostgreSQL is missing ("CRM", "fleet"). */
  dbHolds: string;
  /** Checks on (and reads from) the loaded config before Switchboard starts. */
  onConfig?: (loaded: LoadedConfig, databaseUrl: string) => void;
}

export interface PackRun {
  /** Places the scripted call through the sandbox PBX and prints the two-sided transcript. */
  run(script: PackScript): Promise<ScriptedCallResult>;
  /** The script's goal was reached, the database agrees, and the engine saw the script's caller ID. */
  expectGoalReached(script: PackScript, r: ScriptedCallResult): Promise<void>;
  /** After the calls: no call, RTP endpoint or bridge is left. */
  expectNothingLeftBehind(): Promise<void>;
}

export function usePackRun(opts: PackRunOptions): PackRun {
  const sandbox = useSandbox(opts.instance);
  const recorder = new ConversationRecorder();
  const inbox = new SummaryInbox();
  let sb: RunningFromConfig | undefined;
  let callerVoice: CallerVoice | undefined;
  let scratch: ScratchDatabase | undefined;
  let db: Db | undefined;
  let journalDir: string | undefined;

  beforeAll(async () => {
    try {
      scratch = await createScratchDatabase(opts.dbPrefix);
    } catch (err) {
      throw new Error(`this test needs PostgreSQL (127.0.0.1:5432 or TEST_DATABASE_URL) to read the ${opts.dbHolds} the agent writes: ${(err as Error).message}`);
    }
    journalDir = mkdtempSync(join(tmpdir(), `sb-${opts.instance}-journal-`));
    const c = sandbox().connection;
    const loaded = await loadConfig(resolve(REPO, opts.config), {
      env: { ...process.env, SWITCHBOARD_HTTP_PORT: '0', DATABASE_URL: scratch.url, SEED_DEMO_DATA: 'true', SWITCHBOARD_JOURNAL_DIR: journalDir },
    });
    opts.onConfig?.(loaded, scratch.url);
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

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the pack's ${what} is not up yet (use it inside tests or hooks)`);
    return value;
  };

  return {
    async run(script) {
      const voice = started(callerVoice, 'caller voice');
      const result = await runScriptedCall(script, {
        sip: { host: '127.0.0.1', port: sandbox().ports.sip },
        recorder,
        voice: (text) => voice.render(text),
        turnTimeoutMs: 60_000,
        summaryFor: inbox.summaryFor,
      });
      console.log(`--- ${script.name} (caller ${script.from}): ${script.description}\n${formatTranscript(result)}`);
      return result;
    },
    async expectGoalReached(script, r) {
      const goal = script.goal(r);
      const inDb = await script.checkDb(started(db, 'database'), r);
      console.log(`    goal: ${goal.ok ? 'reached' : 'MISSED'}: ${goal.why}\n    database: ${inDb.ok ? 'ok' : 'WRONG'}: ${inDb.why}`);
      expect(goal).toEqual({ ok: true, why: expect.any(String) as string });
      expect(inDb).toEqual({ ok: true, why: expect.any(String) as string });
      expect(r.summary?.info.caller.number).toBe(script.from);
    },
    async expectNothingLeftBehind() {
      await new Promise((r) => setTimeout(r, 500));
      const running = started(sb, 'Switchboard');
      expect(running.controller.activeCalls).toBe(0);
      expect(running.openEndpoints()).toBe(0);
      expect(await running.ari.listBridges()).toEqual([]);
    },
  };
}
