/**
 * The `sessions` section of switchboard.yaml: defaults (in-process, 30 min), the Redis URL from
 * the environment (empty = unset), and bad values reported with their path and line. Also: the
 * example and demo configs carry the section and load with and without a Redis URL.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfigText, type LoadConfigTextOptions } from '../../src/config/load.js';
import { readFile } from 'node:fs/promises';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));
const BASE = `
plugins: { stt-fake: {}, llm-fake: {}, tts-fake: {} }
agents:
  support: { stt: stt-fake, llm: llm-fake, tts: tts-fake }
defaultAgent: support
`;

const load = (yaml: string, env: Record<string, string> = {}, extra: Partial<LoadConfigTextOptions> = {}) =>
  loadConfigText(yaml, { file: 'inline.yaml', dir: FIXTURES, env, pluginsDir: PLUGINS, ...extra });

async function problems(yaml: string, env: Record<string, string> = {}): Promise<string[]> {
  const err = await load(yaml, env).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as ConfigError).problems.map((p) => `${p.line ?? '-'}:${p.path}: ${p.message}`);
}

describe('sessions config', () => {
  it('defaults: in-process only, a 30-minute TTL, the switchboard:session: prefix', async () => {
    const { config } = await load(BASE);
    expect(config.sessions).toEqual({
      redisUrl: undefined,
      ttlSeconds: 1800,
      keyPrefix: 'switchboard:session:',
      timeoutMs: 500,
      resumePhrase: "Sorry about that, I'm back. Where were we?",
    });
  });

  it('takes the Redis URL from the environment; an empty one means in-process', async () => {
    const yaml = `${BASE}sessions: { redisUrl: "\${SESSIONS_REDIS:-}", ttlSeconds: 3600 }\n`;
    expect((await load(yaml, { SESSIONS_REDIS: 'redis://:pw@10.0.0.5:6379/2' })).config.sessions).toMatchObject({ redisUrl: 'redis://:pw@10.0.0.5:6379/2', ttlSeconds: 3600 });
    expect((await load(yaml)).config.sessions.redisUrl).toBeUndefined();
  });

  it('reports bad values with their path and line, all at once', async () => {
    const yaml = `${BASE}sessions:\n  redisUrl: http://127.0.0.1:6379\n  ttlSeconds: 5\n  keyPrefix: ""\n  ttl: 60\n`;
    const found = await problems(yaml);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^7:sessions\.redisUrl: must be a redis:\/\/ or rediss:\/\/ URL/),
        expect.stringMatching(/^8:sessions\.ttlSeconds: /),
        expect.stringMatching(/^9:sessions\.keyPrefix: /),
        expect.stringMatching(/^10:sessions(\.ttl)?: .*ttl/),
      ]),
    );
    expect(found).toHaveLength(4);
  });

  it('the example and the demo configs carry a sessions section that reads SWITCHBOARD_REDIS_URL', async () => {
    for (const file of ['../../switchboard.example.yaml', '../../demo/switchboard.demo.yaml']) {
      const yaml = await readFile(fileURLToPath(new URL(file, import.meta.url)), 'utf8');
      const section = /^sessions:\n((?: .*\n|\n)*)/m.exec(yaml)?.[0];
      expect(section, file).toBeDefined();
      const withRedis = await load(`${BASE}${section!}`, { SWITCHBOARD_REDIS_URL: 'redis://127.0.0.1:6379' });
      expect(withRedis.config.sessions).toMatchObject({ redisUrl: 'redis://127.0.0.1:6379', ttlSeconds: 1800, keyPrefix: 'switchboard:session:' });
      expect((await load(`${BASE}${section!}`)).config.sessions.redisUrl).toBeUndefined();
    }
  });
});
