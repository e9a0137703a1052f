/**
 * `switchboard calls` as a user runs it (bin/switchboard.js in a child process) against a real
 * HTTP server running the real API handler over an in-memory reader: the URL and token from
 * flags, the environment, a config file or the generated token file; and the errors a person
 * meets — server not running, token refused, unknown id, no token — with exit codes 1 and 2.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApiHandler } from '../../src/api/handler.js';
import { silentLogger } from '../../src/log.js';
import { orderStatusCall } from '../support/call-record-fixtures.js';
import { MemoryCallReader } from '../support/memory-call-reader.js';

const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));
const TOKEN = 'cli-test-token-abcdefghijklmnopqrstuvwxyz';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: Server;
let url: string;
let dir: string;
let closedUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-cli-calls-'));
  const reader = new MemoryCallReader([orderStatusCall('1700000000.1', { caller: '+12025550143' }).record]);
  const api = createApiHandler({ reader, token: TOKEN, log: silentLogger });
  server = createServer((req, res) => api(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nothing listens on: bound, then released.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI with a clean environment (no token, an empty state dir unless given) in `dir`. */
function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SWITCHBOARD_STATE_DIR: join(dir, 'empty-state') };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'calls', ...args], { cwd: dir, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`could not run switchboard: ${err.message}`, { cause: err }));
        return;
      }
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

describe('against a running API', () => {
  test('show: the transcript of one call', async () => {
    const r = await run(['show', '1700000000.1', '--url', url], { SWITCHBOARD_API_TOKEN: TOKEN });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Call 1700000000\.1: RESOLVED\n {2}summary {3}Caller asked about order status/);
    expect(r.stdout).toContain('  tool:   get_order_status {"order_id":30552} → ');
    expect(r.stdout).toContain('[cut off after: "One moment please. Order 30552 is out…"]');
  }, 60_000);

  test('list --json and stats, with the URL from $SWITCHBOARD_URL', async () => {
    const env = { SWITCHBOARD_API_TOKEN: TOKEN, SWITCHBOARD_URL: url };
    const list = await run(['list', '--json', '--outcome', 'resolved'], env);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { callId: string }[]).map((c) => c.callId)).toEqual(['1700000000.1']);
    const stats = await run(['stats'], env);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('Containment rate    100.0% (1 resolved without a human)');
  }, 60_000);

  test('URL and token from the config file (server.http.port and apiToken from its environment)', async () => {
    const config = join(dir, 'switchboard.yaml');
    await writeFile(config, 'server:\n  http:\n    host: 127.0.0.1\n    port: ${SB_PORT}\n    apiToken: ${SB_TOKEN}\nagents: {}\n');
    const r = await run(['list', '--config', config], { SB_PORT: new URL(url).port, SB_TOKEN: TOKEN });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^STARTED \(UTC\)\s+CALL ID/);
    expect(r.stdout).toContain('1700000000.1');
  }, 60_000);

  test('the token from the generated token file in the state directory', async () => {
    const state = join(dir, 'state');
    const { ensureApiToken } = await import('../../src/api/token.js');
    await ensureApiToken(undefined, join(state, 'api-token'));
    // That file holds a fresh token: the server refuses it, and the message says where it came from.
    const r = await run(['list', '--url', url], { SWITCHBOARD_STATE_DIR: state });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refused the API token from ${join(state, 'api-token')}`);
    await writeFile(join(state, 'api-token'), `${TOKEN}\n`, { mode: 0o600 });
    expect((await run(['list', '--url', url], { SWITCHBOARD_STATE_DIR: state })).code).toBe(0);
  }, 60_000);
});

describe('errors a person can act on', () => {
  test('unknown call id: exit 1', async () => {
    const r = await run(['show', '1700000000.99', '--url', url], { SWITCHBOARD_API_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('switchboard calls: no call with id "1700000000.99" (see `switchboard calls list`)');
  }, 60_000);

  test('a wrong token: exit 1, the token not printed', async () => {
    const r = await run(['list', '--url', url], { SWITCHBOARD_API_TOKEN: 'wrong-token-0123456789' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the Switchboard at ${url} refused the API token from $SWITCHBOARD_API_TOKEN (the bearer token is not valid)`);
    expect(r.stderr).not.toContain('wrong-token-0123456789');
  }, 60_000);

  test('Switchboard not running: exit 1, says so and what to do', async () => {
    const r = await run(['stats', '--url', closedUrl], { SWITCHBOARD_API_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no Switchboard answered at ${closedUrl} (ECONNREFUSED). Is it running (switchboard start)?`);
    expect(r.stderr).toContain('--database URL');
  }, 60_000);

  test('no token anywhere: exit 1 naming the file it looked for', async () => {
    const r = await run(['list', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no API token: set SWITCHBOARD_API_TOKEN, or run this where Switchboard generated its token (${join(dir, 'empty-state', 'api-token')} does not exist)`);
  }, 60_000);

  test('a config with the HTTP server off: exit 1', async () => {
    const config = join(dir, 'off.yaml');
    await writeFile(config, 'server:\n  http:\n    port: 0\n');
    const r = await run(['list', '--config', config], { SWITCHBOARD_API_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('turns the HTTP server off (server.http.port: 0): pass --url, or read the database with --database');
  }, 60_000);

  test('usage errors: exit 2 with the usage', async () => {
    const r = await run(['list', '--limit', '1000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^switchboard calls: --limit must be a whole number from 1 to 500\n\nUsage: switchboard calls list/);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('switchboard calls show ID [--json]');
  }, 60_000);
});
