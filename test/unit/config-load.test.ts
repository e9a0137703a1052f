/**
 * loadConfig: the good fixture loads, is defaulted and deep-frozen; each bad fixture yields
 * exactly the problems it contains, each with its dotted path and line in the file, all at once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, type ConfigProblem } from '../../src/config/errors.js';
import { deepFreeze, loadConfig, loadConfigText, resolveConfigPath, type LoadConfigTextOptions } from '../../src/config/load.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const PLUGINS = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url));
const ENV = { ARI_PASSWORD: 'not-a-real-password', CRM_API_KEY: 'crm-key' };

async function rejection(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

async function problemsOf(fixture: string, env: Record<string, string> = ENV): Promise<readonly ConfigProblem[]> {
  return (await rejection(loadConfig(join(FIXTURES, fixture), { env, pluginsDir: PLUGINS }))).problems;
}

/** path, line and kind of each problem: the part of a report that must be exact. */
function where(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${p.line ?? '-'}:${p.path}:${p.kind}`);
}

const text = (yaml: string, env: Record<string, string> = ENV, extra: Partial<LoadConfigTextOptions> = {}) =>
  loadConfigText(yaml, { file: 'inline.yaml', dir: FIXTURES, env, pluginsDir: PLUGINS, ...extra });

const MINIMAL = `
plugins: { stt-fake: {}, llm-fake: {}, tts-fake: {} }
agents:
  support: { stt: stt-fake, llm: llm-fake, tts: tts-fake }
defaultAgent: support
`;

describe('the good fixture', () => {
  test('loads, expands references, applies defaults and inspects the enabled plugins', async () => {
    const loaded = await loadConfig(join(FIXTURES, 'good.yaml'), { env: { ...ENV, HTTP_PORT: '9100', COMPANY: 'Globex' }, pluginsDir: PLUGINS });
    const { config } = loaded;
    expect(loaded.path).toBe(join(FIXTURES, 'good.yaml'));
    expect(loaded.dir).toBe(FIXTURES.replace(/\/$/, ''));
    expect(config.ari?.password).toBe('not-a-real-password');
    expect(config.server.http.port).toBe(9100); // plain ${HTTP_PORT} is read as a number
    expect(config.server.maxCalls).toBe(40); // from the default in ${MAX_CALLS:-40}
    expect(config.server.mediaFormat).toBe('ulaw'); // schema default
    const support = config.agents.support!;
    expect(support.greeting).toBe("Hello, you're through to Globex support. Templates look like ${name}.");
    expect(support.vad).toEqual({ threshold: 0.6, minSpeechMs: 96, endOfTurnSilenceMs: 600, minUtteranceMs: 150 });
    expect(support.fallback.transferTo).toBe('operator');
    // `sales` merges `support` (<<: *support) and overrides two keys.
    expect(config.agents.sales).toMatchObject({ stt: 'stt-fake', tools: support.tools, language: 'uk-UA', greeting: 'Добрий день!' });
    // A disabled plugin is not inspected and its unset variables are not errors.
    expect(loaded.inspectedPlugins.map((p) => `${p.name}:${p.kind}`)).toEqual(['stt-fake:stt', 'llm-fake:llm', 'tts-fake:tts', 'tts-spare:tts', 'tools-fake:tools']);
    expect(config.plugins['llm-unused']?.enabled).toBe(false);
    // Each plugin's config went through its own schema (defaults applied).
    expect(loaded.inspectedPlugins.find((p) => p.name === 'stt-fake')?.config).toEqual({ model: 'en-us', beam: 5 });
    expect(loaded.inspectedPlugins.find((p) => p.name === 'tts-fake')?.config).toEqual({ voice: 'kal' });
  });

  test('is deep-frozen: every write throws', async () => {
    const loaded = await loadConfig(join(FIXTURES, 'good.yaml'), { env: ENV, pluginsDir: PLUGINS });
    const support = loaded.config.agents.support!;
    expect(Object.isFrozen(loaded)).toBe(true);
    expect(() => {
      support.language = 'fr-FR';
    }).toThrow(TypeError);
    expect(() => {
      support.vad.threshold = 0.9;
    }).toThrow(TypeError);
    expect(() => support.tools.push('x')).toThrow(TypeError);
    expect(() => {
      loaded.config.agents.intruder = support;
    }).toThrow(TypeError);
    expect(() => {
      (loaded.inspectedPlugins[0]!.config as { model: string }).model = 'x';
    }).toThrow(TypeError);
    expect(() => (loaded.inspectedPlugins as unknown[]).pop()).toThrow(TypeError);
    expect(support.language).toBe('en-US');
  });

  test('source.locate maps config paths to lines, and missing paths to their parent', async () => {
    const { source } = await loadConfig(join(FIXTURES, 'good.yaml'), { env: ENV, pluginsDir: PLUGINS });
    expect(source.locate(['agents', 'support', 'vad', 'threshold'])).toEqual({ line: 44, column: 7, exact: true });
    expect(source.locate(['agents', 'support', 'tools', 2])).toEqual({ line: 37, column: 38, exact: true });
    expect(source.locate(['agents', 'support', 'silence', 'reprompt'])).toEqual({ line: 30, column: 3, exact: false });
    // `sales` merges `support`: its stt is written in support; its own language is in sales.
    expect(source.locate(['agents', 'sales', 'stt'])).toEqual({ line: 31, column: 5, exact: true });
    expect(source.locate(['agents', 'sales', 'language'])).toEqual({ line: 47, column: 5, exact: true });
  });
});

describe('bad fixtures: every problem, with its path and line', () => {
  test('unknown keys, at top level and inside an agent, with did-you-mean', async () => {
    const problems = await problemsOf('bad-unknown-keys.yaml');
    expect(where(problems)).toEqual(['6:agents.support.greetting:schema', '8:agents.support.vad.treshold:schema', '14:agent:schema']);
    expect(problems[0]).toMatchObject({ column: 5, message: 'unknown key "greetting"' });
    expect(problems[0]?.hint).toMatch(/^did you mean "greeting"\? allowed here: stt, llm, tts,/);
    expect(problems[1]?.hint).toMatch(/did you mean "threshold"/);
    expect(problems[2]?.hint).toMatch(/did you mean "agents"\? allowed here: ari, server, records, sessions, plugins, agents, defaultAgent/);
  });

  test('wrong types and out-of-range values name what was found', async () => {
    const problems = await problemsOf('bad-types.yaml');
    expect(where(problems)).toEqual([
      '2:server.maxCalls:schema',
      '3:server.mediaFormat:schema',
      '5:server.http.port:schema',
      '15:agents.support.bargeIn:schema',
      '16:agents.support.tools:schema',
      '18:agents.support.vad.threshold:schema',
    ]);
    expect(problems[0]?.message).toBe('expected number, got the text "lots"');
    expect(problems[1]?.hint).toBe('allowed: "ulaw", "alaw", "slin16"');
    expect(problems[2]?.message).toMatch(/65535/);
    expect(problems[3]?.message).toBe('expected boolean, got the text "yes"');
    expect(problems[4]?.message).toBe('expected array, got the text "end_call"');
    expect(problems[5]?.message).toMatch(/0\.95/);
  });

  test('a missing variable is named with the path that refers to it; a malformed reference too', async () => {
    const problems = await problemsOf('bad-env.yaml', { HTTP_PORT: '9000' });
    expect(where(problems)).toEqual(['13:agents.support.greeting:env', '14:agents.support.systemPrompt:env']);
    expect(problems[0]).toMatchObject({ message: 'environment variable COMPANY_NAME is not set', hint: 'set COMPANY_NAME, or give a default: ${COMPANY_NAME:-value}' });
    expect(problems[1]?.message).toMatch(/^malformed reference \$\{BAD NAME\}/);
  });

  test('a reference that does not give the type the field needs', async () => {
    const problems = await problemsOf('bad-env.yaml', { HTTP_PORT: 'http', COMPANY_NAME: 'Acme' });
    expect(where(problems)).toEqual(['3:server.http.port:schema', '14:agents.support.systemPrompt:env']);
    expect(problems[0]?.message).toBe('expected number, got the text "http"');
  });

  test('a variable missing in several places is reported at each', async () => {
    const problems = await problemsOf('bad-env.yaml', {});
    expect(where(problems)).toEqual(['3:server.http.port:env', '13:agents.support.greeting:env', '14:agents.support.systemPrompt:env']);
    expect(problems[0]?.message).toBe('environment variable HTTP_PORT is not set');
  });

  test('literal secrets are refused, and their values never appear in the report', async () => {
    const err = await rejection(loadConfig(join(FIXTURES, 'bad-secret.yaml'), { env: ENV, pluginsDir: PLUGINS }));
    expect(where(err.problems)).toEqual(['4:ari.password:secret', '10:plugins.tts-fake.config.apiKey:secret', '13:plugins.tools-fake.config.apiKey:secret']);
    expect(err.problems[0]).toMatchObject({
      message: 'is a secret and must not be written in the file',
      hint: 'put the secret in an environment variable: password: ${ARI_PASSWORD}',
    });
    expect(err.problems[1]?.message).toMatch(/its default is written in the file/);
    expect(err.problems[2]?.hint).toBe('put the secret in an environment variable: apiKey: ${TOOLS_FAKE_API_KEY}');
    for (const secret of ['hunter2', 'sk-live-123', 'sk-live-456']) expect(err.message).not.toContain(secret);
  });

  test('a literal numeric secret is one problem, not also a type error showing the number', async () => {
    const err = await rejection(text(`ari: { url: "http://127.0.0.1:8088", username: u, password: 987654 }\n${MINIMAL}`));
    expect(where(err.problems)).toEqual(['1:ari.password:secret']);
    expect(err.message).not.toContain('987654');
  });

  test('a language that is not BCP-47', async () => {
    const problems = await problemsOf('bad-language.yaml');
    expect(where(problems)).toEqual(['10:agents.support.language:schema']);
    expect(problems[0]?.message).toBe('must be a BCP-47 language tag such as "en-US"');
  });

  test('names that refer to nothing: plugins (unknown, disabled, wrong kind), transfer, tools, defaultAgent', async () => {
    const problems = await problemsOf('bad-references.yaml');
    expect(where(problems)).toEqual([
      '10:agents.support.llm:reference',
      '12:agents.support.ttsFallback:reference',
      '16:agents.support.fallback.transferTo:reference',
      '18:agents.sales.stt:reference',
      '20:agents.sales.tts:reference',
      '21:agents.sales.tools[1]:reference',
      '22:defaultAgent:reference',
    ]);
    const [llm, fallbackTts, transferTo, stt, tts, tool, defaultAgent] = problems;
    expect(llm).toMatchObject({ message: 'plugin "llm-fack" is not configured under "plugins"', hint: 'did you mean "llm-fake"? enabled llm plugins: "llm-fake"' });
    expect(fallbackTts?.message).toBe('plugin "tts-spare" is disabled (plugins.tts-spare.enabled is false)');
    expect(transferTo).toMatchObject({ message: `"operater" is not one of this agent's transfer destinations`, hint: 'did you mean "operator"? destinations: "operator"' });
    expect(stt?.message).toBe('plugin "tts-fake" is a tts plugin, but stt needs an stt plugin');
    expect(tts?.message).toBe('plugin "stt-fake" is an stt plugin, but tts needs a tts plugin');
    expect(tool?.message).toBe('"get_order_status" is not a built-in tool and no tools plugin is enabled');
    expect(defaultAgent).toMatchObject({ message: 'no agent named "suport"', hint: 'did you mean "support"? agents: "support", "sales"' });
  });

  test('plugin problems from inspection: invalid plugin config, API mismatch, unknown plugin', async () => {
    const problems = await problemsOf('bad-plugins.yaml');
    expect(where(problems)).toEqual([
      '4:plugins.stt-fake.config.beam:plugin',
      '5:plugins.stt-fake.config.lanugage:plugin',
      '6:plugins.stt-oldapi:plugin',
      '9:plugins.tts-nonexistent:plugin',
    ]);
    expect(problems[1]?.message).toBe('unknown key "lanugage"');
    expect(problems[2]?.message).toBe('written for plugin API ^0.1.0, this Switchboard provides 1.1.0');
    expect(problems[3]?.message).toMatch(/^no plugin named "tts-nonexistent"/);
    expect(problems[3]?.hint).toMatch(/available plugins: .*stt-fake/);
  });

  test('several kinds of error in one file are all reported at once, in file order', async () => {
    const err = await rejection(loadConfig(join(FIXTURES, 'bad-many.yaml'), { env: {}, pluginsDir: PLUGINS }));
    expect(where(err.problems)).toEqual([
      '2:ari.url:schema',
      '4:ari.password:secret',
      '5:serverr:schema',
      '15:agents.support.tts:reference',
      '16:agents.support.language:schema',
      '17:agents.support.greeting:env',
      '19:agents.support.fallback.transferTo:reference',
      '20:defaultAgent:reference',
    ]);
    const lines = err.message.split('\n');
    expect(lines[0]).toMatch(/bad-many\.yaml: 8 configuration errors:$/);
    expect(lines[1]).toMatch(/^ {2}- .*bad-many\.yaml:2:3: ari\.url: Invalid URL$/);
    expect(err.message).toContain('bad-many.yaml:5:1: serverr: unknown key "serverr"\n      hint: did you mean "server"?');
    expect(err.message).toContain('bad-many.yaml:17:5: agents.support.greeting: environment variable UNSET_GREETING_VAR is not set');
  });

  test('a YAML syntax error is reported with line:column (and nothing after it)', async () => {
    const problems = await problemsOf('bad-syntax.yaml');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: 'yaml', line: 5, column: 5 });
    expect(problems[0]?.message).toMatch(/^YAML: Flow sequence .* end with a \]$/);
  });

  test('a duplicate key is a YAML error at the second occurrence', async () => {
    const problems = await problemsOf('bad-duplicate-key.yaml');
    expect(problems).toEqual([{ kind: 'yaml', path: '', line: 5, column: 5, message: 'YAML: Map keys must be unique' }]);
  });
});

describe('edge cases', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchboard-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a missing file, an empty file and a directory', async () => {
    const missing = await rejection(loadConfig(join(dir, 'nope.yaml'), { env: {}, pluginsDir: PLUGINS }));
    expect(missing.problems[0]).toMatchObject({ kind: 'file', message: expect.stringMatching(/^no such file/) as unknown });
    await writeFile(join(dir, 'empty.yaml'), '# nothing here\n');
    const empty = await rejection(loadConfig(join(dir, 'empty.yaml'), { env: {}, pluginsDir: PLUGINS }));
    expect(empty.problems.map((p) => p.message)).toEqual(['the file is empty']);
    const directory = await rejection(loadConfig(dir, { env: {}, pluginsDir: PLUGINS }));
    expect(directory.problems[0]?.message).toBe('is a directory, not a file');
  });

  test('a top level that is not a mapping', async () => {
    const err = await rejection(text('- a\n- b\n'));
    expect(err.problems).toEqual([{ kind: 'schema', path: '', line: 1, column: 1, message: 'expected object, got a list' }]);
  });

  test('a reference whose value looks like a number stays text where the schema wants text', async () => {
    const yaml = `ari:\n  url: http://\${HOST}:\${PORT}\n  username: \${ARI_USER}\n  password: "\${ARI_PASSWORD}"\n${MINIMAL}`;
    const loaded = await text(yaml, {
      HOST: 'pbx',
      PORT: '8088',
      ARI_USER: '1000',
      ARI_PASSWORD: '123456',
    });
    expect(loaded.config.ari).toEqual({ url: 'http://pbx:8088', username: '1000', password: '123456', app: 'switchboard' });
  });

  test('...and in plugin config, against the plugin\'s own schema', async () => {
    const yaml = MINIMAL.replace('stt-fake: {}', 'stt-fake: { config: { model: "${MODEL}", beam: "${BEAM}" } }').replace('tts-fake: {}', 'tts-fake: { config: { voice: "${VOICE}" } }');
    const loaded = await text(yaml, { MODEL: '42', BEAM: '3', VOICE: 'true' });
    expect(loaded.inspectedPlugins.find((p) => p.name === 'stt-fake')?.config).toEqual({ model: '42', beam: 3 });
    expect(loaded.inspectedPlugins.find((p) => p.name === 'tts-fake')?.config).toEqual({ voice: 'true' });
  });

  test('a wrong type in plugin config says what was found', async () => {
    const err = await rejection(text(MINIMAL.replace('stt-fake: {}', 'stt-fake: { config: { beam: five, model: [a] } }')));
    expect(err.problems.map((p) => `${p.line}:${p.path}: ${p.message}`)).toEqual([
      '2:plugins.stt-fake.config.beam: expected number, got the text "five"',
      '2:plugins.stt-fake.config.model: expected string, got a list',
    ]);
  });

  test('references expand in lists and nested maps, quoted or not', async () => {
    const yaml = `${MINIMAL}
server:
  http:
    port: \${PORT:-0}
  overflow: { context: "\${CTX}", extension: "\${EXT:-7000}" }
`.replace('tts: tts-fake }', () => 'tts: tts-fake, phrases: ["${P1}", "${P2:-two}", "$${P3}"] }');
    const loaded = await text(yaml, { CTX: 'from-env', P1: 'one' });
    expect(loaded.config.server.http.port).toBe(0);
    expect(loaded.config.server.overflow).toEqual({ context: 'from-env', extension: '7000' });
    expect(loaded.config.agents.support?.phrases).toEqual(['one', 'two', '${P3}']);
  });

  test('with no tools plugin enabled, built-in tools are fine', async () => {
    const loaded = await text(MINIMAL.replace('tts: tts-fake }', 'tts: tts-fake, tools: [transfer_call, end_call, set_variable, get_variable] }'));
    expect(loaded.config.agents.support?.tools).toHaveLength(4);
  });

  test('an invalid agent or plugin name', async () => {
    const err = await rejection(text(MINIMAL.replace('  support:', '  "sup port":').replace('defaultAgent: support', 'defaultAgent: "sup port"')));
    expect(where(err.problems)).toEqual(['4:agents.sup port:schema', '5:defaultAgent:schema']);
    expect(err.problems[0]?.message).toBe('"sup port" is not a valid name: letters, digits, "-" and "_" only');
  });

  test('an agent section missing its required keys points at the agent', async () => {
    const err = await rejection(text(MINIMAL.replace('{ stt: stt-fake, llm: llm-fake, tts: tts-fake }', '{ stt: stt-fake }')));
    expect(where(err.problems)).toEqual(['4:agents.support.llm:schema', '4:agents.support.tts:schema']);
    expect(err.problems[0]?.message).toBe('required, but missing (expected string)');
  });
});

test('an unquoted reference inside { } is a YAML error with a hint; a cascade is cut short', async () => {
  const err = await rejection(text(MINIMAL.replace('stt-fake: {}', 'stt-fake: { config: { model: ${MODEL} } }'), { MODEL: 'm' }));
  expect(err.problems).toHaveLength(6);
  expect(err.problems[0]).toMatchObject({ kind: 'yaml', line: 2, hint: 'inside { } or [ ], put a ${...} reference in quotes: "${NAME}"' });
  expect(err.problems[5]?.message).toMatch(/^YAML: \d+ more errors, probably caused by the ones above$/);
});

test('deepFreeze leaves class instances alone', () => {
  const re = /a/g;
  const frozen = deepFreeze({ list: [{ a: 1 }], re });
  expect(Object.isFrozen(frozen.list[0])).toBe(true);
  expect(Object.isFrozen(re)).toBe(false);
  expect(re.exec('aa')).not.toBeNull();
});

test('resolveConfigPath: --config, then SWITCHBOARD_CONFIG, then ./switchboard.yaml', () => {
  expect(resolveConfigPath('a.yaml', { SWITCHBOARD_CONFIG: 'b.yaml' })).toBe('a.yaml');
  expect(resolveConfigPath(undefined, { SWITCHBOARD_CONFIG: 'b.yaml' })).toBe('b.yaml');
  expect(resolveConfigPath(undefined, { SWITCHBOARD_CONFIG: '' })).toBe('./switchboard.yaml');
  expect(resolveConfigPath(undefined, {})).toBe('./switchboard.yaml');
});
