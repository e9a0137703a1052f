/**
 * Call records end to end below the telephone: the runtime's records wiring (startRecords:
 * migrations, the journal, the flusher, business metrics, the API token) on a real PostgreSQL
 * scratch database, calls played through the recorder hooks, then read back through the real
 * HTTP API handler and `switchboard calls --database` (a child process). Also: the database
 * going away gives 503s, and an embedded PGlite directory is held by one process at a time.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CallInfo } from '../../src/agents/agent.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { startRecords, type RecordsRuntime } from '../../src/records-runtime.js';
import type { CallListItem, CallRecord, CallStats } from '../../src/records/types.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { bargeIn, callInfo, latency, summaryOf, tool } from '../support/call-record-fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));
const TOKEN = 'integration-token-0123456789abcdef';
const CONFIG = { enabled: true, flushIntervalMs: 200 };

/** An order-status call through the records service's hooks, as the conversation reports it. */
function playOrderCall(rt: RecordsRuntime, info: CallInfo): void {
  const o = rt.observerFor!(info)!;
  o.agentSaid(1, 'Hello, how can I help?', 'Hello, how can I help?', true);
  o.callerSaid(2, 'where is my order');
  o.agentSaid(2, 'What is the order number?', 'What is the order number?', true);
  o.callerSaid(3, 'three zero five five two');
  o.toolCalled(3, tool('c1', 'get_order_status', { order_id: 30552 }, { ok: true, data: { order_id: 30552, status: 'out for delivery' } }));
  o.agentSaid(3, 'Order 30552 is out for delivery. It should arrive today.', 'Order 30552 is out', false);
  o.callerSaid(4, "thanks that's all");
  o.toolCalled(4, tool('e1', 'end_call', { reason: 'completed' }, { ok: true, data: { ending: true } }));
  o.agentSaid(4, 'Thank you for calling. Goodbye.', 'Thank you for calling. Goodbye.', true);
  rt.onCallEnded!(summaryOf(info, { outcome: 'agent_hangup', durationMs: 41_000, turns: [latency(2, 640), latency(3, 702), latency(4, 655)], bargeIns: [bargeIn(3)] }));
}

/** A complaint escalated to the operator, with a failed tool call. */
function playComplaintCall(rt: RecordsRuntime, info: CallInfo): void {
  const o = rt.observerFor!(info)!;
  o.agentSaid(1, 'Hello, how can I help?', 'Hello, how can I help?', true);
  o.callerSaid(2, 'I want to make a complaint');
  o.toolCalled(2, tool('t1', 'create_ticket', { topic: 'complaint' }, { ok: false, error: 'CRM timed out' }, { failure: 'timeout' }));
  o.toolCalled(2, tool('t2', 'transfer_call', { destination: 'operator', reason: 'complaint' }, { ok: true, data: { transferring: true } }));
  o.agentSaid(2, 'Let me put you through to a colleague.', 'Let me put you through to a colleague.', true);
  rt.onCallEnded!(summaryOf(info, { outcome: 'transferred', durationMs: 20_000, turns: [latency(2, 700)] }));
}

interface Http {
  url: string;
  server: Server;
}

async function serve(rt: RecordsRuntime, registry: MetricsRegistry): Promise<Http> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/api/')) rt.api!(req, res);
    else if (req.url === '/metrics') res.end(registry.render());
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function api<T>(http: Http, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${http.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as T };
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'calls', ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(err.message, { cause: err }));
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-api-records-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('on PostgreSQL', () => {
  let db: ScratchDatabase;
  let rt: RecordsRuntime;
  let http: Http;
  let registry: MetricsRegistry;
  const logLines: string[] = [];

  beforeAll(async () => {
    db = await createScratchDatabase('sbapi');
    registry = new MetricsRegistry();
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        logLines.push(chunk.toString('utf8'));
        cb();
      },
    });
    rt = await startRecords({
      config: CONFIG,
      configDir: dir,
      log: createLogger({ level: 'info', destination: sink }),
      registry,
      http: true,
      // No token given: one is generated into the state directory.
      stateDir: join(dir, 'state'),
      override: { databaseUrl: db.url, journalDir: join(dir, 'journal-pg') },
    });
    http = await serve(rt, registry);
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((r) => http?.server.close(() => r()));
    await rt?.close();
    await db?.drop();
  }, 60_000);

  test('the API token is generated into the state directory (0600) and only its path is logged', async () => {
    const path = join(dir, 'state', 'api-token');
    const token = (await readFile(path, 'utf8')).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const log = logLines.join('');
    expect(log).toContain(path);
    expect(log).not.toContain(token);
    // The generated token is the one the API wants.
    const res = await fetch(`${http.url}/api/calls`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  });

  test('calls played through the hooks are journalled, flushed and served by the API', async () => {
    // The API was opened with the generated token: use it from here on.
    const token = (await readFile(join(dir, 'state', 'api-token'), 'utf8')).trim();
    const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
      const res = await fetch(`${http.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as T };
    };
    playOrderCall(rt, callInfo('1800000000.1'));
    playComplaintCall(rt, callInfo('1800000000.2', { caller: { number: '+442071838750', name: '' } }));
    await rt.records!.flushNow();
    expect(rt.records!.backlog()).toBe(0);

    const list = await get<{ calls: CallListItem[]; nextBefore: string | null }>('/api/calls');
    expect(list.status).toBe(200);
    expect(list.body.calls.map((c) => [c.callId, c.outcome]).sort()).toEqual([
      ['1800000000.1', 'resolved'],
      ['1800000000.2', 'transferred'],
    ]);
    const filtered = await get<{ calls: CallListItem[] }>('/api/calls?outcome=transferred&caller=%2B442071838750&limit=1');
    expect(filtered.body.calls.map((c) => c.callId)).toEqual(['1800000000.2']);
    const byNanp = await get<{ calls: CallListItem[] }>('/api/calls?caller=%2B12025550143');
    expect(byNanp.body.calls.map((c) => c.callId)).toEqual(['1800000000.1']);

    const one = await get<CallRecord>('/api/calls/1800000000.1');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ callId: '1800000000.1', callerNumber: '+12025550143', agent: 'support', outcome: 'resolved', durationMs: 41_000, bargeIns: 1 });
    const t3 = one.body.turns.find((t) => t.turn === 3)!;
    expect(t3).toMatchObject({ callerText: 'three zero five five two', agentPlayed: 'Order 30552 is out', completed: false, bargedIn: true, latencyMs: 702 });
    expect(t3.agentText).toBe('Order 30552 is out for delivery. It should arrive today.');
    expect(t3.toolCalls).toEqual([expect.objectContaining({ name: 'get_order_status', arguments: { order_id: 30552 }, ok: true, result: { order_id: 30552, status: 'out for delivery' } })]);
    expect(one.body.summary).toMatch(/get_order_status/);

    expect((await get('/api/calls/1800000000.404')).status).toBe(404);

    const stats = await get<CallStats>('/api/calls/stats');
    expect(stats.body).toMatchObject({
      calls: 2,
      byOutcome: { resolved: 1, transferred: 1, abandoned: 0, failed: 0 },
      containmentRate: 0.5,
      transfersByReason: { complaint: 1 },
      toolErrors: 1,
      toolErrorsByTool: { create_ticket: 1 },
      averageHandleTimeMs: 30_500,
    });
    const future = await get<CallStats>('/api/calls/stats?since=2100-01-01');
    expect(future.body.calls).toBe(0);

    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(metrics).toContain('switchboard_call_records_total{outcome="resolved"} 1');
    expect(metrics).toContain('switchboard_call_records_total{outcome="transferred"} 1');
    expect(metrics).toContain('switchboard_containment_ratio 0.5');
    expect(metrics).toContain('switchboard_transfers_total{reason="complaint"} 1');
    expect(metrics).toContain('switchboard_tool_errors_total{failure="timeout",tool="create_ticket"} 1');
    expect(metrics).toContain('switchboard_handle_time_seconds_count 2');
    expect(metrics).toContain('switchboard_records_journal_backlog 0');
  }, 60_000);

  test('`switchboard calls --database` reads the same records straight from PostgreSQL', async () => {
    const show = await cli(['show', '1800000000.1', '--database', db.url]);
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^Call 1800000000\.1: RESOLVED\n/);
    // (jsonb orders an object's keys its own way.)
    expect(show.stdout).toMatch(/ {2}tool: {3}get_order_status \{"order_id":30552\} → \{"(status|order_id)":.*"out for delivery"/);
    expect(show.stdout).toContain('[cut off after: "Order 30552 is out"]');
    const stats = await cli(['stats', '--database', db.url]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('Containment rate    50.0% (1 resolved without a human)');
    const unknown = await cli(['show', 'nope', '--database', db.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no call with id "nope"');
  }, 120_000);
});

/**
 * Records on a scratch PostgreSQL reached through a relay the test can cut (connections dropped,
 * new ones refused) and restore, served over HTTP; `dbUp` says whether the relay passes traffic
 * when records start.
 */
async function behindRelay(
  name: string,
  dbUp: boolean,
  body: (t: { rt: RecordsRuntime; http: Awaited<ReturnType<typeof serve>>; relay: TcpProxy; registry: MetricsRegistry }) => Promise<void>,
): Promise<void> {
  const db = await createScratchDatabase(name);
  const target = new URL(db.url);
  const relay = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  const viaRelay = new URL(db.url);
  viaRelay.port = String(relay.port);
  if (!dbUp) await relay.cut();
  const registry = new MetricsRegistry();
  const rt = await startRecords({
    config: CONFIG,
    configDir: dir,
    log: silentLogger,
    registry,
    http: true,
    apiToken: TOKEN,
    override: { databaseUrl: viaRelay.toString(), journalDir: join(dir, `journal-${name}`) },
  });
  const http = await serve(rt, registry);
  try {
    await body({ rt, http, relay, registry });
  } finally {
    await new Promise<void>((r) => http.server.close(() => r()));
    await rt.close();
    await relay.close();
    await db.drop();
  }
}

test('the records database going away: the API answers 503, and the records wait in the journal', async () => {
  await behindRelay('sbapi', true, async ({ rt, http, relay, registry }) => {
    await relay.cut();
    playOrderCall(rt, callInfo('1800000001.1'));
    const r = await api<{ error: string }>(http, '/api/calls');
    expect(r.status).toBe(503);
    expect(r.body.error).toBe('the call-records database is unavailable; try again later');
    await rt.records!.flushNow();
    expect(rt.records!.backlog()).toBe(1);
    expect(registry.render()).toContain('switchboard_records_journal_backlog 1');

    await relay.restore();
    await rt.records!.flushNow();
    expect(rt.records!.backlog()).toBe(0);
    const back = await api<CallRecord>(http, '/api/calls/1800000001.1');
    expect(back.status).toBe(200);
    expect(back.body.outcome).toBe('resolved');
  });
}, 120_000);

// Found in review: records used to need the database at start-up, so a restart during an
// outage refused to start (and callers left in Stasis were never adopted).
test('records start while the database is down: calls are journalled, the migrations run when it returns', async () => {
  await behindRelay('sbapidown', false, async ({ rt, http, relay }) => {
    playOrderCall(rt, callInfo('1800000002.1'));
    expect((await api(http, '/api/calls')).status).toBe(503);
    await rt.records!.flushNow();
    expect(rt.records!.backlog()).toBe(1);

    await relay.restore();
    await rt.records!.flushNow();
    expect(rt.records!.backlog()).toBe(0);
    const back = await api<CallRecord>(http, '/api/calls/1800000002.1');
    expect(back.status).toBe(200);
    expect(back.body.outcome).toBe('resolved');
  });
}, 120_000);

test('an embedded PGlite directory is held by one process: a second opener and the CLI are told who holds it', async () => {
  const dataDir = join(dir, 'embedded', 'records');
  const opts = { config: CONFIG, configDir: dir, log: silentLogger, http: false };
  const rt = await startRecords({ ...opts, registry: new MetricsRegistry(), override: { databaseUrl: `pglite:${dataDir}`, journalDir: join(dir, 'journal-embedded') } });
  try {
    playOrderCall(rt, callInfo('1800000002.1'));
    await rt.records!.flushNow();
    expect(rt.api).toBeUndefined();

    await expect(
      startRecords({ ...opts, registry: new MetricsRegistry(), override: { databaseUrl: `pglite:${dataDir}`, journalDir: join(dir, 'journal-embedded-2') } }),
    ).rejects.toThrow(`the embedded records database ${dataDir} is in use by process ${process.pid} (another Switchboard?): an embedded PGlite directory can be opened by one process at a time`);

    const busy = await cli(['list', '--database', `pglite:${dataDir}`]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`the embedded records database ${dataDir} is open in a running Switchboard (process ${process.pid})`);
    expect(busy.stderr).toContain('one process at a time');
  } finally {
    await rt.close();
  }
  // Let go: now the CLI can read it.
  const list = await cli(['list', '--json', '--database', `pglite:${dataDir}`]);
  expect(list.stderr).toBe('');
  expect((JSON.parse(list.stdout) as CallListItem[]).map((c) => c.callId)).toEqual(['1800000002.1']);
}, 180_000);
