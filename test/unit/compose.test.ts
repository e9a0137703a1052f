/**
 * docker-compose.yml: valid for `docker-compose config` (no engine needed) when every required
 * secret is set, and refused when any one of them is missing: no service has a default password.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../src/pbx/paths.js';

const execFileP = promisify(execFile);

const REQUIRED = {
  ARI_PASSWORD: 'ari-Secret-0123456789',
  AMI_SECRET: 'ami-Secret-0123456789',
  SIP_6001_PASSWORD: 'sip6001-Secret-012345',
  SIP_6002_PASSWORD: 'sip6002-Secret-012345',
  SIP_7000_PASSWORD: 'sip7000-Secret-012345',
  POSTGRES_PASSWORD: 'pg-Secret-0123456789',
  REDIS_PASSWORD: 'redis-Secret-0123456789',
};

let emptyEnvFile: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-compose-'));
  emptyEnvFile = join(dir, 'empty.env');
  await writeFile(emptyEnvFile, '');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** docker-compose config with exactly `env` (plus PATH/HOME), ignoring any .env in the repo. */
async function composeConfig(env: Record<string, string>, quiet: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['--env-file', emptyEnvFile, '-f', join(REPO_ROOT, 'docker-compose.yml'), 'config', ...(quiet ? ['-q'] : [])];
  try {
    const { stdout, stderr } = await execFileP('docker-compose', args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('docker-compose is not installed (apt-get install docker-compose)');
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('docker-compose.yml', () => {
  test('`docker-compose config -q` succeeds with every required secret set', async () => {
    const r = await composeConfig(REQUIRED, true);
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);

  test('the resolved stack: four services, secrets passed through, ARI/AMI/databases on loopback only', async () => {
    const r = await composeConfig(REQUIRED, false);
    expect(r.code, r.stderr).toBe(0);
    type Service = {
      environment?: Record<string, string>;
      ports?: (string | { host_ip?: string })[];
      network_mode?: string;
      build?: { dockerfile?: string };
      volumes?: (string | { source?: string; target?: string })[];
      depends_on?: Record<string, { condition: string }>;
    };
    const cfg = parse(r.stdout) as { services: Record<string, Service> };
    expect(Object.keys(cfg.services).sort()).toEqual(['asterisk', 'postgres', 'redis', 'switchboard']);
    const { asterisk, switchboard, postgres, redis } = cfg.services;
    expect(asterisk!.build?.dockerfile).toBe('docker/asterisk/Dockerfile');
    expect(switchboard!.build?.dockerfile).toBe('docker/switchboard/Dockerfile');
    expect(asterisk!.environment).toMatchObject({
      ARI_PASSWORD: REQUIRED.ARI_PASSWORD,
      AMI_SECRET: REQUIRED.AMI_SECRET,
      SIP_6001_PASSWORD: REQUIRED.SIP_6001_PASSWORD,
      HTTP_BIND: '127.0.0.1',
      AMI_BIND: '127.0.0.1',
    });
    expect(switchboard!.environment).toMatchObject({
      ARI_URL: 'http://127.0.0.1:8088',
      ARI_PASSWORD: REQUIRED.ARI_PASSWORD,
      PGPASSWORD: REQUIRED.POSTGRES_PASSWORD,
      REDIS_PASSWORD: REQUIRED.REDIS_PASSWORD,
    });
    expect(postgres!.environment?.POSTGRES_PASSWORD).toBe(REQUIRED.POSTGRES_PASSWORD);
    for (const svc of [postgres!, redis!]) {
      for (const p of svc.ports ?? []) expect(typeof p === 'string' ? p : p.host_ip).toMatch(/^127\.0\.0\.1/);
    }
    expect(Object.keys(switchboard!.depends_on ?? {}).sort()).toEqual(['asterisk', 'postgres', 'redis']);
    const mounts = (asterisk!.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    expect(mounts.some((m) => m.includes('asterisk-config:/etc/asterisk-src'))).toBe(true);
  }, 60_000);

  for (const missing of Object.keys(REQUIRED)) {
    test(`refuses to render without ${missing}`, async () => {
      const env: Record<string, string> = { ...REQUIRED };
      delete env[missing];
      const r = await composeConfig(env, true);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(missing);
    }, 60_000);
  }

  test('an empty secret counts as missing', async () => {
    const r = await composeConfig({ ...REQUIRED, ARI_PASSWORD: '' }, true);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ARI_PASSWORD');
  }, 60_000);

  test('no password or secret in the file has a default value', async () => {
    const text = await readFile(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    const refs = [...text.matchAll(/\$\{([A-Z0-9_]*(?:PASSWORD|SECRET)[A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)];
    expect(refs.length).toBeGreaterThan(5);
    for (const [, name, op, rest] of refs) {
      if (name === 'TRUNK_PASSWORD') {
        // Optional (no trunk configured): empty, never a default value.
        expect([op, rest]).toEqual([':-', '']);
      } else {
        expect(op, `${name} must use :? (required)`).toBe(':?');
      }
    }
  });
});
