/**
 * switchboard.example.yaml is a known-good reference config: it must load. Against stand-in
 * plugins with the real plugins' names (always), and against the real plugins once they are
 * all in plugins/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { checkToolAllowlists, loadConfig, toolNamesOf } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_PLUGINS_DIR, startPlugins } from '../../src/plugins/loader.js';

const EXAMPLE = fileURLToPath(new URL('../../switchboard.example.yaml', import.meta.url));
const FIXTURE_PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));
const STAND_INS = { 'stt-pocketsphinx': 'stt-fake', 'llm-script': 'llm-fake', 'tts-flite': 'tts-fake', 'tools-crm': 'tools-fake' };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-example-plugins-'));
  for (const [name, fixture] of Object.entries(STAND_INS)) {
    await mkdir(join(dir, name));
    const source = JSON.stringify(join(FIXTURE_PLUGINS, fixture, 'index.ts'));
    await writeFile(
      join(dir, name, 'index.ts'),
      `import base from ${source};\nexport default { ...base, manifest: { ...base.manifest, name: ${JSON.stringify(name)} } };\n`,
    );
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the example loads against stand-ins for its plugins, and its tool allowlist is satisfied', async () => {
  const loaded = await loadConfig(EXAMPLE, { env: {}, pluginsDir: dir });
  const { config } = loaded;
  expect(config.defaultAgent).toBe('support');
  expect(Object.keys(config.agents)).toEqual(['support']);
  const support = config.agents.support!;
  expect(support).toMatchObject({ stt: 'stt-pocketsphinx', llm: 'llm-script', tts: 'tts-flite', language: 'en-US' });
  expect(support.tools).toEqual(expect.arrayContaining(['transfer_call', 'end_call', 'get_order_status', 'change_address', 'create_ticket']));
  expect(support.transfer).toEqual({
    operator: expect.objectContaining({ context: 'switchboard-handoff', extension: 'operator' }) as unknown,
    queue: expect.objectContaining({ context: 'switchboard-handoff', extension: 'queue' }) as unknown,
  });
  expect(support.fallback.transferTo).toBe('operator');
  expect(config.server.http.port).toBe(9464);
  expect(loaded.inspectedPlugins.map((p) => p.kind).sort()).toEqual(['llm', 'stt', 'tools', 'tts']);

  const plugins = await startPlugins(loaded.inspectedPlugins, { log: silentLogger, signal: new AbortController().signal, cacheDir: dir, configDir: loaded.dir });
  try {
    expect(() => checkToolAllowlists(config, toolNamesOf(plugins.tools), loaded.source)).not.toThrow();
  } finally {
    await plugins.close();
  }
});

test('the example takes the HTTP port from the environment', async () => {
  const loaded = await loadConfig(EXAMPLE, { env: { SWITCHBOARD_HTTP_PORT: '9999' }, pluginsDir: dir });
  expect(loaded.config.server.http.port).toBe(9999);
});

const realPluginsPresent = Object.keys(STAND_INS).every((name) => existsSync(join(DEFAULT_PLUGINS_DIR, name, 'index.ts')));

test.skipIf(!realPluginsPresent)('the example loads against the real plugins (inspection only: nothing is started)', async () => {
  const loaded = await loadConfig(EXAMPLE, { env: {} });
  expect(loaded.inspectedPlugins.map((p) => `${p.name}:${p.kind}`).sort()).toEqual(['llm-script:llm', 'stt-pocketsphinx:stt', 'tools-crm:tools', 'tts-flite:tts']);
});
