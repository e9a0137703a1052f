/**
 * Call records end to end: the sandbox Asterisk, Switchboard started from the demo config
 * with records on a scratch PostgreSQL database and a temporary journal, and a scripted SIP
 * caller checking an order. After the call its record is served by GET /api/calls/{id} (the
 * caller's turns, the agent's played text, the get_order_status call, outcome resolved),
 * `switchboard calls show` (a child process talking to the running server) prints it, and
 * /metrics carries the business metrics. /metrics and /health need no token; /api/ does.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, SummaryInbox } from '../../src/demo/scripted-call.js';
import { ORDER_STATUS } from '../../src/demo/scripts.js';
import { silentLogger } from '../../src/log.js';
import type { CallListItem, CallRecord, CallStats } from '../../src/records/types.js';
import { startFromConfig, type RunningFromConfig } from '../../src/runtime.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { useSandbox } from '../support/pbx.js';

const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/switchboard.js');
const TOKEN = 'e2e-records-token-0123456789abcdefghij';
const sandbox = useSandbox('records');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('call records through the sandbox PBX', () => {
  let sb: RunningFromConfig;
  let db: ScratchDatabase;
  let journalDir: string;
  let callerVoice: CallerVoice;
  const recorder = new ConversationRecorder();
  const inbox = new SummaryInbox();
  let callId: string;

  beforeAll(async () => {
    const c = sandbox().connection;
    db = await createScratchDatabase('sbrecords');
    journalDir = await mkdtemp(join(tmpdir(), 'sb-e2e-journal-'));
    const loaded = await loadConfig(resolve(REPO, 'demo/switchboard.demo.yaml'), { env: { ...process.env, SWITCHBOARD_HTTP_PORT: '0' } });
    sb = await startFromConfig(loaded, {
      ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
      logger: silentLogger,
      httpPort: await freePort(),
      apiToken: TOKEN,
      records: { databaseUrl: db.url, journalDir },
      // The demo's own observer and end-of-call hook keep working beside the recorder's.
      observerFor: recorder.observerFor,
      onCallEnded: inbox.onCallEnded,
    });
    callerVoice = await createCallerVoice(silentLogger, REPO);
  }, 300_000);

  afterAll(async () => {
    await sb?.stop();
    await callerVoice?.close();
    await db?.drop();
    if (journalDir) await rm(journalDir, { recursive: true, force: true });
  }, 60_000);

  /** GET with the token (`null`: without any Authorization header). */
  async function api<T>(path: string, token: string | null = TOKEN): Promise<{ status: number; body: T }> {
    const res = await fetch(`${sb.httpUrl!}${path}`, { headers: token !== null ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as T };
  }

  test('an order-status call leaves a record with both sides, the tool call and the outcome', async () => {
    const r = await runScriptedCall(ORDER_STATUS, {
      sip: { host: '127.0.0.1', port: sandbox().ports.sip },
      recorder,
      voice: (text) => callerVoice.render(text),
      summaryFor: inbox.summaryFor,
    });
    console.log(`--- ${ORDER_STATUS.name}\n${formatTranscript(r)}`);
    expect(ORDER_STATUS.goal(r).ok).toBe(true);
    callId = r.summary!.info.callId;

    // Journalled at the end of the call; drained to PostgreSQL now.
    await sb.records!.flushNow();
    expect(sb.records!.backlog()).toBe(0);

    const list = await api<{ calls: CallListItem[] }>('/api/calls?outcome=resolved');
    expect(list.status).toBe(200);
    expect(list.body.calls.map((c) => c.callId)).toEqual([callId]);

    const { status, body: rec } = await api<CallRecord>(`/api/calls/${encodeURIComponent(callId)}`);
    expect(status).toBe(200);
    expect(rec).toMatchObject({ callId, agent: 'support', outcome: 'resolved', endReason: 'agent_hangup' });
    expect(rec.summary).toContain('get_order_status');
    // The caller's turns: what the recogniser heard, turn by turn.
    const callerTurns = rec.turns.filter((t) => t.callerText);
    expect(callerTurns.length).toBeGreaterThanOrEqual(3);
    const heard = r.transcript.filter((e) => e.who === 'caller').map((e) => (e as { heard: string }).heard);
    expect(callerTurns.map((t) => t.callerText)).toEqual(heard);
    // The agent's side: the greeting as played, and what was played each turn.
    expect(rec.turns[0]!.agentPlayed).toBe("Hello, you're through to Acme customer service. How can I help?");
    const played = r.transcript.filter((e) => e.who === 'agent').map((e) => (e as { played: string }).played);
    expect(rec.turns.map((t) => t.agentPlayed).filter(Boolean).join(' ')).toBe(played.filter(Boolean).join(' '));
    // The CRM lookup with its arguments and result, in the turn that made it.
    const lookup = rec.turns.flatMap((t) => t.toolCalls).find((t) => t.name === 'get_order_status')!;
    expect(lookup).toMatchObject({ ok: true });
    expect(JSON.stringify(lookup.arguments)).toContain('30552');
    expect(JSON.stringify(lookup.result)).toContain('30552');
    // Latency on the wire for the caller's turns.
    expect(callerTurns.every((t) => typeof t.latencyMs === 'number' && t.latencyMs > 0)).toBe(true);

    const stats = await api<CallStats>('/api/calls/stats');
    expect(stats.body).toMatchObject({ calls: 1, containmentRate: 1, byOutcome: { resolved: 1 } });
  }, 240_000);

  test('`switchboard calls show` prints the record from the running Switchboard', async () => {
    expect(callId).toBeDefined();
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done, fail) => {
      execFile(
        process.execPath,
        [BIN, 'calls', 'show', callId, '--url', sb.httpUrl!],
        { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SWITCHBOARD_API_TOKEN: TOKEN }, timeout: 60_000 },
        (err, stdout, stderr) => (err && typeof err.code !== 'number' ? fail(new Error(err.message, { cause: err })) : done({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr })),
      );
    });
    console.log(`--- switchboard calls show ${callId}\n${out.stdout}`);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')[0]).toBe(`Call ${callId}: RESOLVED`);
    expect(out.stdout).toContain("  agent:  Hello, you're through to Acme customer service. How can I help?");
    expect(out.stdout).toMatch(/ {2}tool: {3}get_order_status \{.*30552.*\} → /);
    expect(out.stdout).toMatch(/ {2}caller: .+/);
    expect(out.stdout).toMatch(/latency \d+ ms/);
  }, 60_000);

  test('/metrics has the business metrics without a token; /api/ needs one', async () => {
    const metrics = await (await fetch(`${sb.httpUrl!}/metrics`)).text();
    expect(metrics).toContain('switchboard_call_records_total{outcome="resolved"} 1');
    expect(metrics).toContain('switchboard_containment_ratio 1');
    expect(metrics).toMatch(/switchboard_handle_time_seconds_count 1\n/);
    expect(metrics).toContain('switchboard_records_journal_backlog 0');
    expect(metrics).toContain('# TYPE switchboard_tool_errors_total counter');
    expect((await fetch(`${sb.httpUrl!}/health`)).status).toBe(200);
    const denied = await api<{ error: string }>('/api/calls', null);
    expect(denied.status).toBe(401);
    expect((await api('/api/calls', 'not-the-token-0123456789')).status).toBe(401);
  });
});
