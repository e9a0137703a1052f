/** Generated PBX credentials and how Switchboard reads its connection from them. */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildCredentials, ensureCredentials, generateSecret, parseCredentials, readCredentials, storedPorts } from '../../src/pbx/secrets.js';
import { combineConnection, loadPbxConnection, loadPbxConnectionSync } from '../../src/pbx/connection.js';
import type { PbxPorts } from '../../src/pbx/options.js';

const ports: PbxPorts = { sip: 25060, http: 28088, ami: 25038, rtpStart: 30000, rtpEnd: 30999 };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-pbx-secrets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('credentials', () => {
  test('secrets are random, long and config-safe', () => {
    const all = new Set(Array.from({ length: 200 }, () => generateSecret()));
    expect(all.size).toBe(200);
    for (const s of all) expect(s).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  test('first up generates every secret; later ups keep them and refresh the ports', () => {
    const first = buildCredentials('dev', '127.0.0.1', ports, undefined, new Date('2026-01-01T00:00:00Z'));
    const secrets = [first.ari_password, first.ami.secret, ...first.sip.accounts.map((a) => a.password)];
    expect(new Set(secrets).size).toBe(5);
    expect(first.sip.accounts.map((a) => a.username)).toEqual(['6001', '6002', '7000']);
    expect(first.sip.accounts.find((a) => a.username === '7000')?.role).toBe('operator');
    expect(first.ari_url).toBe('http://127.0.0.1:28088');
    const moved = { ...ports, http: 29088, sip: 26060 };
    const second = buildCredentials('dev', '127.0.0.1', moved, first, new Date('2026-02-01T00:00:00Z'));
    expect([second.ari_password, second.ami.secret, ...second.sip.accounts.map((a) => a.password)]).toEqual(secrets);
    expect(second.ari_url).toBe('http://127.0.0.1:29088');
    expect(second.sip.port).toBe(26060);
    expect(second.created_at).toBe(first.created_at);
    expect(second.updated_at).toBe('2026-02-01T00:00:00.000Z');
    expect(storedPorts(second)).toEqual(moved);
  });

  test('the file is written 0600 in a 0700 directory, and read back identical', async () => {
    const path = join(dir, 'state', 'pbx-dev.json');
    const creds = await ensureCredentials(path, 'dev', '127.0.0.1', ports);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    expect(await readCredentials(path)).toEqual(creds);
    const again = await ensureCredentials(path, 'dev', '127.0.0.1', ports);
    expect(again.ari_password).toBe(creds.ari_password);
    expect(await readCredentials(join(dir, 'missing.json'))).toBeUndefined();
  });

  test('a broken file is an error that names the file and the bad fields', () => {
    expect(() => parseCredentials('{', '/x.json')).toThrow(/\/x\.json: not valid JSON/);
    const good = buildCredentials('dev', '127.0.0.1', ports, undefined);
    const bad = JSON.stringify({ ...good, ari_password: 'short', ami: { ...good.ami, port: 'x' } });
    expect(() => parseCredentials(bad, '/x.json')).toThrow(/ari_password[\s\S]*ami\.port/);
  });
});

describe('loadPbxConnection', () => {
  test('reads the instance file; environment variables override field by field', async () => {
    const stateDir = join(dir, 'conn');
    const creds = await ensureCredentials(join(stateDir, 'pbx-default.json'), 'default', '127.0.0.1', ports);
    const fromFile = await loadPbxConnection(undefined, { stateDir, env: {} });
    expect(fromFile).toMatchObject({
      instance: 'default',
      ariUrl: 'http://127.0.0.1:28088',
      ariWsUrl: 'ws://127.0.0.1:28088/ari/events',
      ariUsername: 'switchboard',
      ariPassword: creds.ari_password,
      ariApp: 'switchboard',
      ami: { host: '127.0.0.1', port: 25038, username: 'switchboard', secret: creds.ami.secret },
      source: 'file',
    });
    expect(fromFile.sip?.accounts).toHaveLength(3);
    const overridden = loadPbxConnectionSync(undefined, {
      stateDir,
      env: { ARI_URL: 'https://pbx.example:8089/ari/', ARI_PASSWORD: 'p', AMI_PORT: '6038' },
    });
    expect(overridden.ariUrl).toBe('https://pbx.example:8089');
    expect(overridden.ariWsUrl).toBe('wss://pbx.example:8089/ari/events');
    expect(overridden.ariPassword).toBe('p');
    expect(overridden.ariUsername).toBe('switchboard');
    expect(overridden.ami?.port).toBe(6038);
    expect(overridden.source).toBe('file+env');
  });

  test('the instance comes from SWITCHBOARD_PBX_INSTANCE when not given', async () => {
    const stateDir = join(dir, 'inst');
    await ensureCredentials(join(stateDir, 'pbx-bench.json'), 'bench', '127.0.0.1', { ...ports, http: 28188 });
    const c = await loadPbxConnection(undefined, { stateDir, env: { SWITCHBOARD_PBX_INSTANCE: 'bench' } });
    expect(c.instance).toBe('bench');
    expect(c.ariUrl).toBe('http://127.0.0.1:28188');
  });

  test('without a file, the environment alone is enough (docker compose)', () => {
    const c = combineConnection('default', undefined, '/nope.json', {
      ARI_URL: 'http://127.0.0.1:8088',
      ARI_USERNAME: 'u',
      ARI_PASSWORD: 'p',
      AMI_HOST: '127.0.0.1',
      AMI_PORT: '5038',
      AMI_USERNAME: 'a',
      AMI_SECRET: 's',
    });
    expect(c).toMatchObject({ ariUrl: 'http://127.0.0.1:8088', ariUsername: 'u', source: 'env', ami: { port: 5038 } });
    expect(c.sip).toBeUndefined();
  });

  test('neither file nor environment: a clear error saying what to do', async () => {
    await expect(loadPbxConnection('ghost', { stateDir: join(dir, 'none'), env: { ARI_USERNAME: 'u' } })).rejects.toThrow(
      /no PBX connection for instance "ghost".*ARI_URL, ARI_PASSWORD are not set.*switchboard pbx up --instance ghost/s,
    );
    expect(() => combineConnection('default', undefined, '/f.json', { ARI_URL: 'http://h', ARI_USERNAME: 'u', ARI_PASSWORD: 'p', AMI_PORT: 'x' })).toThrow(
      /AMI_PORT="x"/,
    );
  });

  test('a corrupt credentials file fails loudly', async () => {
    const stateDir = join(dir, 'corrupt');
    await ensureCredentials(join(stateDir, 'pbx-default.json'), 'default', '127.0.0.1', ports);
    await writeFile(join(stateDir, 'pbx-default.json'), (await readFile(join(stateDir, 'pbx-default.json'), 'utf8')).replace('"version": 1', '"version": 2'));
    await expect(loadPbxConnection('default', { stateDir, env: {} })).rejects.toThrow(/invalid PBX credentials file[\s\S]*version/);
  });
});
