/**
 * Runs the conformance kit of its kind against every plugin in plugins/. A plugin that needs
 * configuration to start (a scenario file, a model path) puts it in
 * plugins/<name>/conformance.json; relative paths there resolve against the repository root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { LlmProvider, SttProvider, ToolsProvider, TtsProvider } from '../../src/plugins/api.js';
import { DEFAULT_PLUGINS_DIR, availablePlugins, inspectPlugins, startPlugins, type LoadedPlugins } from '../../src/plugins/loader.js';
import { llmKit, sttKit, toolsKit, ttsKit } from './kits.js';

const REPO = resolve(import.meta.dirname, '../..');
const names = await availablePlugins(DEFAULT_PLUGINS_DIR);

function conformanceConfig(name: string): Record<string, unknown> {
  const file = join(DEFAULT_PLUGINS_DIR, name, 'conformance.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
}

describe.each(names)('plugin %s', (name) => {
  let loaded: LoadedPlugins;
  const shutdown = new AbortController();
  const cacheDir = mkdtempSync(join(tmpdir(), `sb-conf-${name}-`));
  const kind = (() => {
    const m = /^(stt|llm|tts|tools)-/.exec(name);
    return m?.[1];
  })();

  beforeAll(async () => {
    const [inspected] = await inspectPlugins({ [name]: conformanceConfig(name) });
    loaded = await startPlugins([inspected!], { log: silentLogger, signal: shutdown.signal, cacheDir, configDir: REPO });
  }, 120_000);

  afterAll(async () => {
    shutdown.abort();
    await loaded?.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  if (kind === 'stt') sttKit(() => loaded.stt.get(name) as SttProvider);
  else if (kind === 'tts') ttsKit(() => loaded.tts.get(name) as TtsProvider);
  else if (kind === 'llm') llmKit(() => loaded.llm.get(name) as LlmProvider);
  else if (kind === 'tools') toolsKit(() => loaded.tools.get(name) as ToolsProvider);
  else throw new Error(`plugin folder "${name}" must start with its kind: stt-, llm-, tts- or tools-`);
});
