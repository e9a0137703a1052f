/** `switchboard config check` through bin/switchboard.js: output and exit codes 0, 1 and 2. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/switchboard.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PLUGINS = 'test/fixtures/plugins';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Run> {
  // A clean environment: only what node needs, plus what the test gives.
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'config', ...args], { cwd, env: { ...base, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`could not run switchboard: ${err.message}`, { cause: err }));
        return;
      }
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

describe('switchboard config check', () => {
  test('a valid file: OK line on stdout, exit 0', async () => {
    const r = await run(['check', 'test/fixtures/config/good.yaml', '--plugins-dir', PLUGINS], { ARI_PASSWORD: 'x', CRM_API_KEY: 'y' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(
      'OK: test/fixtures/config/good.yaml: 2 agents (support, sales; default support), ' +
        'plugins: stt-fake (stt 1.0.0), llm-fake (llm 1.0.0), tts-fake (tts 1.0.0), tts-spare (tts 1.0.0), tools-fake (tools 1.0.0); disabled: llm-unused',
    );
    expect(r.code).toBe(0);
  });

  test('every error on stderr, exit 1', async () => {
    const r = await run(['check', 'test/fixtures/config/bad-many.yaml', '--plugins-dir', PLUGINS]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('test/fixtures/config/bad-many.yaml: 8 configuration errors:');
    expect(lines.filter((l) => l.startsWith('  - '))).toHaveLength(8);
    expect(r.stderr).toContain('  - test/fixtures/config/bad-many.yaml:4:3: ari.password: is a secret and must not be written in the file\n      hint: put the secret in an environment variable: password: ${ARI_PASSWORD}');
    expect(r.stderr).toContain('test/fixtures/config/bad-many.yaml:17:5: agents.support.greeting: environment variable UNSET_GREETING_VAR is not set');
    expect(r.stderr).not.toContain('secret-in-file');
  });

  test('a missing variable set in the environment makes the same file pass the env check', async () => {
    const r = await run(['check', 'test/fixtures/config/good.yaml', '--plugins-dir', PLUGINS], { ARI_PASSWORD: 'x' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('good.yaml:23:7: plugins.tools-fake.config.apiKey: environment variable CRM_API_KEY is not set');
    expect(r.stderr).not.toContain('ARI_PASSWORD is not set');
  });

  test('the file comes from --config, else SWITCHBOARD_CONFIG, else ./switchboard.yaml', async () => {
    const viaFlag = await run(['check', '--config', 'test/fixtures/config/bad-language.yaml', '--plugins-dir', PLUGINS]);
    expect(viaFlag.code).toBe(1);
    expect(viaFlag.stderr).toContain('bad-language.yaml:10:5: agents.support.language: must be a BCP-47 language tag');
    const viaEnv = await run(['check', '--plugins-dir', PLUGINS], { SWITCHBOARD_CONFIG: 'test/fixtures/config/bad-syntax.yaml' });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toMatch(/^test\/fixtures\/config\/bad-syntax\.yaml: 1 configuration error:\n {2}- test\/fixtures\/config\/bad-syntax\.yaml:5:5: YAML: /);
    const empty = await mkdtemp(join(tmpdir(), 'switchboard-cli-'));
    try {
      const byDefault = await run(['check', '--plugins-dir', join(ROOT, PLUGINS)], {}, empty);
      expect(byDefault.code).toBe(1);
      expect(byDefault.stderr).toMatch(/^\.\/switchboard\.yaml: 1 configuration error:\n {2}- \.\/switchboard\.yaml: no such file/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test('usage errors exit 2', async () => {
    for (const args of [[], ['lint'], ['check', 'a.yaml', 'b.yaml'], ['check', '--bogus'], ['check', 'a.yaml', '--config', 'b.yaml']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('Usage: switchboard config check');
    }
  });

  test('--help prints the usage, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: switchboard config check [FILE]');
  });
});
