/**
 * The call-records HTTP API handler on a real HTTP server, over an in-memory reader: bearer
 * authentication, routes, query parameters (each bad one named), errors (404, 405, 503, 500)
 * and an access log without personal data.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createApiHandler } from '../../src/api/handler.js';
import { MAX_PAGE_SIZE } from '../../src/api/query.js';
import { createLogger } from '../../src/log.js';
import type { CallListItem, CallRecord } from '../../src/records/types.js';
import { orderStatusCall } from '../support/call-record-fixtures.js';
import { MemoryCallReader } from '../support/memory-call-reader.js';

const TOKEN = 'test-token-0123456789abcdefghijklmnop';

let server: Server;
let base: string;
const reader = new MemoryCallReader();
let logLines: string[] = [];
let readerEnabled = true;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const withReader = createApiHandler({ reader, token: TOKEN, log });
  const withoutReader = createApiHandler({ reader: undefined, token: TOKEN, log });
  server = createServer((req, res) => (readerEnabled ? withReader : withoutReader)(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  reader.records = [orderStatusCall('1700000000.1', { caller: '+12025550143' }).record, orderStatusCall('1700000000.2').record];
  reader.fail = undefined;
  readerEnabled = true;
  logLines = [];
});

async function get(path: string, init: RequestInit & { token?: string | null } = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  const res = await fetch(`${base}${path}`, { ...init, headers });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined, headers: res.headers };
}

const errorOf = (r: { body: unknown }): string => (r.body as { error: string }).error;

describe('authentication', () => {
  test('no Authorization header: 401 with a Bearer challenge, and the reader is never asked', async () => {
    reader.lastQuery = undefined;
    const r = await get('/api/calls', { token: null });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="switchboard"/);
    expect(errorOf(r)).toMatch(/missing Authorization: Bearer <token>/);
    expect(reader.lastQuery).toBeUndefined();
  });

  test('a wrong token: 401 invalid_token', async () => {
    const r = await get('/api/calls', { token: `${TOKEN}x` });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="switchboard", error="invalid_token"');
  });

  test('another scheme (Basic) is not a bearer token', async () => {
    const r = await get('/api/calls', { token: null, headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    expect(r.status).toBe(401);
    expect(errorOf(r)).toMatch(/not "Bearer <token>"/);
  });

  test('unauthenticated requests learn nothing about routes: an unknown path is 401 too', async () => {
    expect((await get('/api/nope', { token: null })).status).toBe(401);
    expect((await get('/api/calls/1700000000.1', { token: 'wrong-but-long-enough-token' })).status).toBe(401);
  });
});

describe('GET /api/calls', () => {
  test('lists calls with the default page size, newest first as the reader gives them', async () => {
    const r = await get('/api/calls');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const body = r.body as { calls: CallListItem[]; nextBefore: string | null };
    expect(body.calls.map((c) => c.callId)).toEqual(['1700000000.1', '1700000000.2']);
    expect(body.calls[0]).toMatchObject({ callerNumber: '+12025550143', agent: 'support', outcome: 'resolved', turns: 4 });
    expect(body.nextBefore).toBeNull();
    expect(reader.lastQuery).toEqual({ limit: 50 });
  });

  test('every filter reaches the reader, normalised', async () => {
    const r = await get('/api/calls?limit=1&outcome=resolved&agent=support&caller=%2B12025550143&since=2030-01-01&before=2030-02-01T10:00:00%2B02:00');
    expect(r.status).toBe(200);
    expect(reader.lastQuery).toEqual({
      limit: 1,
      outcome: 'resolved',
      agent: 'support',
      callerNumber: '+12025550143',
      since: '2030-01-01T00:00:00.000Z',
      before: '2030-02-01T08:00:00.000Z',
    });
    // A full page: the next page starts before its last row.
    const body = r.body as { calls: CallListItem[]; nextBefore: string | null };
    expect(body.nextBefore).toBe(body.calls[0]!.startedAt);
  });

  test.each([
    ['limit=0', /^limit must be a whole number from 1 to 500$/],
    [`limit=${MAX_PAGE_SIZE + 1}`, /^limit must be a whole number from 1 to 500$/],
    ['limit=ten', /^limit must be/],
    ['limit=1.5', /^limit must be/],
    ['outcome=happy', /^outcome must be one of resolved, transferred, abandoned, failed$/],
    ['since=yesterday', /^since must be an ISO 8601 date or time/],
    ['before=2030-13-45', /^before must be an ISO 8601 date or time/],
    ['agent=bad%20name', /^agent must be an agent name/],
    ['caller=%3Cscript%3E', /^caller must be a caller number/],
    ['colour=red', /^unknown query parameter "colour"; allowed: limit, before, before_call, since, outcome, agent, caller$/],
    ['before_call=1800000001.1', /^before_call needs before \(the same row's startedAt\)$/],
    ['limit=1&limit=2', /^query parameter "limit" given more than once$/],
    ['outcome=', /^query parameter "outcome" is empty$/],
    ['since=2030-02-01&before=2030-01-01', /^since must be earlier than before$/],
  ])('?%s is a 400 naming the parameter', async (qs, message) => {
    const r = await get(`/api/calls?${qs}`);
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(message);
  });

  test('a bad value is not echoed back (it may be a phone number)', async () => {
    const r = await get('/api/calls?caller=%2B1202555014%3B');
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).not.toContain('202555014');
  });

  test('a trailing slash is the same endpoint', async () => {
    expect((await get('/api/calls/')).status).toBe(200);
  });
});

describe('GET /api/calls/{id}', () => {
  test('the full record: turns with caller text, agent text, what was played, barge-in, tool calls, latency', async () => {
    const r = await get('/api/calls/1700000000.1');
    expect(r.status).toBe(200);
    const rec = r.body as CallRecord;
    expect(rec.callId).toBe('1700000000.1');
    expect(rec.outcome).toBe('resolved');
    const cut = rec.turns.find((t) => t.bargedIn)!;
    expect(cut).toMatchObject({ completed: false, agentPlayed: 'One moment please. Order 30552 is out…', latencyMs: 702.5 });
    expect(cut.toolCalls[0]).toMatchObject({ name: 'get_order_status', arguments: { order_id: 30552 }, ok: true });
  });

  test('percent-encoded ids are decoded', async () => {
    expect((await get('/api/calls/1700000000%2E2')).status).toBe(200);
  });

  test('an unknown id is 404; so is an id that cannot exist', async () => {
    const r = await get('/api/calls/1700000000.9');
    expect(r.status).toBe(404);
    expect(errorOf(r)).toBe('no call with this id');
    expect((await get('/api/calls/%20drop%20table')).status).toBe(404);
  });

  test('malformed percent-encoding is a 400; query parameters are refused', async () => {
    expect((await get('/api/calls/%E0%A4%A')).status).toBe(400);
    const r = await get('/api/calls/1700000000.1?verbose=1');
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/takes no query parameters/);
  });
});

describe('GET /api/calls/stats', () => {
  test('passes the range and returns the stats', async () => {
    const r = await get('/api/calls/stats?since=2030-01-01&until=2030-02-01');
    expect(r.status).toBe(200);
    expect(reader.lastRange).toEqual({ since: '2030-01-01T00:00:00.000Z', until: '2030-02-01T00:00:00.000Z' });
    expect(r.body).toMatchObject({ calls: 2, containmentRate: 1, averageHandleTimeMs: 41_000 });
  });

  test('bad ranges are 400s naming the parameter', async () => {
    expect(errorOf(await get('/api/calls/stats?until=soon'))).toMatch(/^until must be an ISO 8601/);
    expect(errorOf(await get('/api/calls/stats?since=2030-02-01&until=2030-01-01'))).toBe('since must be earlier than until');
    expect(errorOf(await get('/api/calls/stats?limit=5'))).toBe('unknown query parameter "limit"; allowed: since, until');
  });
});

describe('errors', () => {
  test('wrong method: 405 with Allow: GET', async () => {
    const r = await get('/api/calls', { method: 'POST', body: '{}' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
    expect((await get('/api/calls/1700000000.1', { method: 'DELETE' })).status).toBe(405);
  });

  test('an unknown endpoint: 404 listing the endpoints', async () => {
    const r = await get('/api/callz');
    expect(r.status).toBe(404);
    expect(errorOf(r)).toMatch(/GET \/api\/calls, GET \/api\/calls\/stats, GET \/api\/calls\/\{id\}/);
  });

  test('records disabled: 503', async () => {
    readerEnabled = false;
    const r = await get('/api/calls');
    expect(r.status).toBe(503);
    expect(errorOf(r)).toMatch(/records are disabled/);
  });

  test('database unreachable: 503 with Retry-After', async () => {
    reader.fail = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const r = await get('/api/calls/stats');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(errorOf(r)).toBe('the call-records database is unavailable; try again later');
  });

  test("the store's own query check is a 400", async () => {
    reader.fail = Object.assign(new Error('limit must be 1..500'), { name: 'CallQueryError' });
    const r = await get('/api/calls');
    expect(r.status).toBe(400);
    expect(errorOf(r)).toBe('limit must be 1..500');
  });

  test('any other failure: 500 without its details', async () => {
    reader.fail = new Error('relation "calls" does not exist at secret place');
    const r = await get('/api/calls');
    expect(r.status).toBe(500);
    expect(errorOf(r)).toBe('internal error (see the Switchboard log)');
  });
});

test('the access log has method, route template and status: no query string, call id, token or number', async () => {
  await get('/api/calls?caller=%2B12025550143');
  await get('/api/calls/1700000000.1');
  await get('/api/calls', { token: 'wrong-token-but-long-enough' });
  const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === 'api request');
  expect(entries.map((e) => [e.method, e.route, e.status])).toEqual([
    ['GET', '/api/calls', 200],
    ['GET', '/api/calls/{id}', 200],
    ['GET', 'unrouted', 401],
  ]);
  const all = logLines.join('\n');
  for (const secret of ['12025550143', '2025550143', '1700000000.1', TOKEN, 'wrong-token']) expect(all).not.toContain(secret);
});
