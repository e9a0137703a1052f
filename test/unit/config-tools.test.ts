/**
 * checkToolAllowlists: after the tools plugins have started, every tool an agent allows must
 * be a built-in or come from exactly one of them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig, loadConfigText, type LoadedConfig } from '../../src/config/load.js';
import { BUILTIN_TOOLS, checkToolAllowlists, toolNamesOf } from '../../src/config/references.js';
import { BUILTIN_TOOL_NAMES } from '../../src/conversation/builtin-tools.js';
import { silentLogger } from '../../src/log.js';
import { startPlugins, type LoadedPlugins } from '../../src/plugins/loader.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));
const ENV = { ARI_PASSWORD: 'pw', CRM_API_KEY: 'k' };

function thrown(fn: () => void): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const agents = (tools: string[]) => ({ agents: { support: { tools } } }) as unknown as Parameters<typeof checkToolAllowlists>[0];

describe('checkToolAllowlists with given tool names', () => {
  const crm = new Map([['tools-crm', ['get_order_status', 'change_address', 'create_ticket']]]);

  test('built-ins and plugin tools pass', () => {
    expect(() => checkToolAllowlists(agents([...BUILTIN_TOOLS, 'get_order_status', 'create_ticket']), crm)).not.toThrow();
    expect(() => checkToolAllowlists(agents([]), new Map())).not.toThrow();
  });

  test('an unknown tool is named with its index, a suggestion and what is available', () => {
    const err = thrown(() => checkToolAllowlists(agents(['end_call', 'get_order_stats', 'refund']), crm));
    expect(err.problems).toEqual([
      {
        kind: 'reference',
        path: 'agents.support.tools[1]',
        message: 'no built-in or enabled tools plugin provides a tool named "get_order_stats"',
        hint: 'did you mean "get_order_status"? available tools: "transfer_call", "end_call", "set_variable", "get_variable", "get_order_status", "change_address", "create_ticket"',
      },
      expect.objectContaining({ path: 'agents.support.tools[2]', message: 'no built-in or enabled tools plugin provides a tool named "refund"' }),
    ]);
    expect(err.message).toMatch(/^config: 2 configuration errors:/);
  });

  test('a tool two plugins provide is ambiguous; a plugin tool named like a built-in is refused', () => {
    const both = new Map([
      ['tools-crm', ['create_ticket']],
      ['tools-helpdesk', ['create_ticket', 'end_call']],
    ]);
    const err = thrown(() => checkToolAllowlists(agents(['create_ticket', 'end_call']), both));
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'plugins.tools-helpdesk: provides a tool named "end_call", which is a built-in tool',
      'agents.support.tools[0]: tool "create_ticket" is provided by several plugins ("tools-crm", "tools-helpdesk")',
    ]);
  });

  test('a tool nobody allows may be ambiguous without harm', () => {
    const both = new Map([
      ['a', ['x']],
      ['b', ['x']],
    ]);
    expect(() => checkToolAllowlists(agents(['transfer_call']), both)).not.toThrow();
  });
});

describe('after startPlugins, with the line in the file', () => {
  let cacheDir: string;
  const started: LoadedPlugins[] = [];
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'switchboard-tools-'));
  });
  afterAll(async () => {
    await Promise.all(started.map((p) => p.close()));
    await rm(cacheDir, { recursive: true, force: true });
  });

  async function start(loaded: LoadedConfig): Promise<LoadedPlugins> {
    const plugins = await startPlugins(loaded.inspectedPlugins, { log: silentLogger, signal: new AbortController().signal, cacheDir, configDir: loaded.dir });
    started.push(plugins);
    return plugins;
  }

  test('the good fixture passes', async () => {
    const loaded = await loadConfig(join(FIXTURES, 'good.yaml'), { env: ENV, pluginsDir: PLUGINS });
    const plugins = await start(loaded);
    expect(toolNamesOf(plugins.tools)).toEqual(new Map([['tools-fake', ['get_order_status', 'change_address', 'create_ticket']]]));
    expect(() => checkToolAllowlists(loaded.config, toolNamesOf(plugins.tools), loaded.source)).not.toThrow();
  });

  test('a misspelt tool is reported at its line', async () => {
    const yaml = [
      'plugins: { stt-fake: {}, llm-fake: {}, tts-fake: {}, tools-fake: {}, tools-clash: {} }',
      'agents:',
      '  support:',
      '    stt: stt-fake',
      '    llm: llm-fake',
      '    tts: tts-fake',
      '    tools:',
      '      - end_call',
      '      - get_order_staus',
      '      - create_ticket',
      'defaultAgent: support',
    ].join('\n');
    // loadConfig cannot know tool names (no plugin has started), so this loads...
    const loaded = await loadConfigText(yaml, { file: 'tools.yaml', dir: FIXTURES, env: {}, pluginsDir: PLUGINS });
    const plugins = await start(loaded);
    // ...and the check after startPlugins finds every problem, placed in the file.
    const err = thrown(() => checkToolAllowlists(loaded.config, toolNamesOf(plugins.tools), loaded.source));
    expect(err.problems.map((p) => `${p.line ?? '-'}:${p.column ?? '-'} ${p.path}: ${p.message}`)).toEqual([
      '1:70 plugins.tools-clash: provides a tool named "end_call", which is a built-in tool',
      '9:9 agents.support.tools[1]: no built-in or enabled tools plugin provides a tool named "get_order_staus"',
      '10:9 agents.support.tools[2]: tool "create_ticket" is provided by several plugins ("tools-fake", "tools-clash")',
    ]);
    expect(err.message).toContain('tools.yaml:9:9: agents.support.tools[1]: no built-in or enabled tools plugin provides a tool named "get_order_staus"\n      hint: did you mean "get_order_status"?');
  });
});

test('the config layer and the conversation layer agree on the built-in tools', () => {
  expect([...BUILTIN_TOOLS].sort()).toEqual([...BUILTIN_TOOL_NAMES].sort());
});
