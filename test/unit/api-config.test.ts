/**
 * The config parts of the API and the call records: server.http.apiToken is a secret (only a
 * ${ENV} reference), records.* has defaults and clear errors, and the locations default to
 * $DATABASE_URL / the state directory, relative paths against the config's folder.
 */
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfigText } from '../../src/config/load.js';
import { RecordsConfigSchema } from '../../src/config/schema.js';
import { recordsLocations } from '../../src/records-runtime.js';

const BASE = `
agents:
  support: { stt: a, llm: b, tts: c }
defaultAgent: support
`;

async function load(yaml: string, env: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof loadConfigText>>> {
  return loadConfigText(yaml + BASE, { file: 'test.yaml', dir: '/etc/switchboard', env, pluginsDir: '/nonexistent' });
}

async function problems(yaml: string, env: Record<string, string> = {}): Promise<string> {
  try {
    await load(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('server.http.apiToken', () => {
  test('a literal token is refused, and not printed', async () => {
    const msg = await problems('server:\n  http:\n    apiToken: literal-token-value-0123456789\n');
    expect(msg).toContain('server.http.apiToken: is a secret and must not be written in the file');
    expect(msg).not.toContain('literal-token-value');
  });

  test('a reference with a written default is refused', async () => {
    const msg = await problems('server:\n  http:\n    apiToken: ${TOKEN:-fallback-token-0123456789}\n');
    expect(msg).toContain('server.http.apiToken: is a secret, and its default is written in the file');
  });

  test('an environment reference is taken; a too-short token is an error without the value', async () => {
    const msg = await problems('server:\n  http:\n    apiToken: ${API_TOKEN}\n', { API_TOKEN: 'tiny' });
    expect(msg).toContain('server.http.apiToken');
    expect(msg).toContain('at least 16 characters');
    expect(msg).not.toContain('tiny');
  });
});

describe('records', () => {
  test('defaults: on, locations left to the runtime, flushed every 2 s', () => {
    expect(RecordsConfigSchema.parse({})).toEqual({ enabled: true, flushIntervalMs: 2000 });
  });

  test('bad values are named, with the file position', async () => {
    // (The agents' plugins do not exist here: those errors are reported too, and ignored.)
    const msg = await problems('records: { flushIntervalMs: 50, databaseUrl: mysql://x, colour: red }\n');
    expect(msg).toContain('test.yaml:1:12: records.flushIntervalMs: Too small: expected number to be >=100');
    expect(msg).toContain('records.databaseUrl: must be postgres://…, postgresql://…, pglite:<directory> or pglite:memory');
    expect(msg).toContain('records.colour: unknown key "colour"');
  });

  test('locations: explicit, $DATABASE_URL, or the state directory', () => {
    const configDir = '/etc/switchboard';
    const stateDir = '/var/lib/sb';
    expect(recordsLocations({}, { configDir, env: {}, stateDir })).toEqual({ databaseUrl: 'pglite:/var/lib/sb/records', journalDir: '/var/lib/sb/journal' });
    expect(recordsLocations({}, { configDir, env: { DATABASE_URL: 'postgres://u:p@db/x' }, stateDir })).toEqual({
      databaseUrl: 'postgres://u:p@db/x',
      journalDir: '/var/lib/sb/journal',
    });
    expect(recordsLocations({ databaseUrl: 'pglite:data/records', journalDir: 'data/journal' }, { configDir, env: { DATABASE_URL: 'postgres://db/x' }, stateDir })).toEqual({
      databaseUrl: 'pglite:/etc/switchboard/data/records',
      journalDir: '/etc/switchboard/data/journal',
    });
    expect(recordsLocations({ databaseUrl: 'pglite:memory', journalDir: '/j' }, { configDir, env: {}, stateDir })).toEqual({ databaseUrl: 'pglite:memory', journalDir: '/j' });
    expect(recordsLocations({}, { configDir, env: { SWITCHBOARD_STATE_DIR: '/srv/state' } })).toEqual({ databaseUrl: 'pglite:/srv/state/records', journalDir: '/srv/state/journal' });
  });
});
