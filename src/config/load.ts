/**
 * Loads switchboard.yaml: parse, refuse literal secrets, expand `${ENV_VAR}` references,
 * validate with the schema, check that names refer to things that exist, inspect the
 * enabled plugins (import, manifest, their own config schema) — and report every problem
 * of every step at once in one ConfigError, each with its path, line:column and a hint.
 * The result is deep-frozen: configuration is read, never changed, after startup.
 *
 * Nothing is started: no ARI connection, no plugin factory. Tool allowlists need the tools
 * plugins started; checkToolAllowlists (references.ts) does that check afterwards.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isScalar, LineCounter, parseDocument, type Document, type Scalar } from 'yaml';
import { z } from 'zod';
import { DEFAULT_PLUGINS_DIR, inspectPlugins, PluginLoadError, type InspectedPlugin, type PluginProblem } from '../plugins/loader.js';
import type { PluginKind } from '../plugins/api.js';
import { expandEnv, isBareEnvReference, suggestEnvName, type Env } from './env.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { checkReferences } from './references.js';
import { PluginEntrySchema, SECRET_PATHS, SwitchboardConfigSchema, type SwitchboardConfig } from './schema.js';
import { createSource, placeProblem, walkNodes, type ConfigPath, type ConfigSource, type PendingProblem } from './source.js';
import { didYouMean } from './suggest.js';
import { formatZodIssues, issuePath } from './zod-issues.js';

export const DEFAULT_CONFIG_FILE = 'switchboard.yaml';
const MAX_YAML_ERRORS = 5;

/** Which file to load: `--config FILE`, else $SWITCHBOARD_CONFIG, else ./switchboard.yaml. */
export function resolveConfigPath(flag?: string, env: Env = process.env): string {
  if (flag) return flag;
  const fromEnv = env.SWITCHBOARD_CONFIG;
  return fromEnv ? fromEnv : `./${DEFAULT_CONFIG_FILE}`;
}

export interface LoadConfigOptions {
  /** Variables for `${...}` references (default: process.env). */
  env?: Env;
  /** Where plugin folders are (default: the repository's plugins/). */
  pluginsDir?: string;
}

export interface LoadedConfig {
  /** Validated, defaults applied, deep-frozen (any write throws in strict mode). */
  readonly config: SwitchboardConfig;
  /** Absolute path of the file. */
  readonly path: string;
  /** Its directory: relative paths in plugin config resolve against it. */
  readonly dir: string;
  /** The enabled plugins, imported and their config validated, ready for startPlugins. */
  readonly inspectedPlugins: readonly InspectedPlugin[];
  /** Maps config paths to positions in the file, for checks made later (checkToolAllowlists). */
  readonly source: ConfigSource;
}

/** Read and check `file`; throws ConfigError listing every problem. */
export async function loadConfig(file: string, opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [
      {
        kind: 'file',
        path: '',
        message: code === 'ENOENT' ? `no such file (${path})` : code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read: ${(err as Error).message}`,
        hint: `pass --config FILE or set SWITCHBOARD_CONFIG; start from switchboard.example.yaml`,
      },
    ]);
  }
  return loadConfigText(text, { ...opts, file, dir: dirname(path), path });
}

export interface LoadConfigTextOptions extends LoadConfigOptions {
  /** Name printed in front of every problem. */
  file: string;
  /** Directory relative plugin paths resolve against. */
  dir: string;
  /** Absolute path reported in the result (default: `file` resolved against `dir`). */
  path?: string;
}

/** As loadConfig, for YAML already in memory. */
export async function loadConfigText(text: string, opts: LoadConfigTextOptions): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, merge: true });
  const source = createSource(opts.file, doc, lineCounter);
  const fail = (pending: readonly PendingProblem[], placed: readonly ConfigProblem[] = []): never => {
    throw new ConfigError(opts.file, [...placed, ...pending.map((p) => placeProblem(source, p))]);
  };

  // 1. YAML syntax (and warnings such as unknown tags): nothing after this is meaningful.
  // One syntax error often causes many more; the first few say what is wrong.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  const yamlProblems = yamlErrors.slice(0, MAX_YAML_ERRORS).map((e): ConfigProblem => {
    const pos = e.linePos?.[0];
    const lineText = pos ? (text.split(/\r?\n/)[pos.line - 1] ?? '') : '';
    return {
      kind: 'yaml',
      path: '',
      message: `YAML: ${e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim()}`,
      ...(pos ? { line: pos.line, column: pos.col } : {}),
      ...(/[{[][^#]*\$\{/.test(lineText) ? { hint: 'inside { } or [ ], put a ${...} reference in quotes: "${NAME}"' } : {}),
    };
  });
  if (yamlErrors.length > MAX_YAML_ERRORS) {
    yamlProblems.push({ kind: 'yaml', path: '', message: `YAML: ${yamlErrors.length - MAX_YAML_ERRORS} more errors, probably caused by the ones above` });
  }
  if (yamlProblems.length > 0) fail([], yamlProblems);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    fail([{ kind: 'schema', at: [], message: 'the file is empty', hint: 'start from switchboard.example.yaml' }]);
  }

  const problems: PendingProblem[] = [];
  // 2. Secrets must be references, checked on the text as written.
  problems.push(...checkSecrets(doc));
  // 3. ${ENV} expansion in place, in the document's scalars.
  const expansion = expandDocument(doc, env);
  problems.push(...expansion.problems);

  let tree: unknown;
  try {
    tree = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    fail([...problems, { kind: 'yaml', at: [], message: `YAML: ${(err as Error).message}` }]);
  }

  // 4. Schema. A value that is exactly one `${VAR}` whose value looks like a number or a
  // boolean was made one (so a port can come from the environment); where the schema wants
  // text, it goes back to text.
  // (reportInput: to tell a missing value from a wrong one; the messages never print secrets.)
  const validate = () => SwitchboardConfigSchema.safeParse(tree, { reportInput: true });
  let parsed = validate();
  for (let pass = 0; !parsed.success && pass < 3; pass++) {
    if (!revertCoercions(tree, parsed.error.issues.filter((i) => i.code === 'invalid_type' && i.expected === 'string').map((i) => i.path), expansion.coerced)) break;
    parsed = validate();
  }
  if (!parsed.success) {
    // A value whose reference could not be expanded, or a literal secret, is already
    // reported: a schema error about the same value is noise (and could show the secret).
    const reported = new Set(problems.map((p) => issuePath('', p.at)));
    problems.push(...schemaProblems(parsed.error).filter((p) => !reported.has(issuePath('', p.at))));
  }

  // 5. Plugins: import, manifest, their own config schema. One at a time, so one broken
  // plugin does not hide the kinds of the others.
  const inspected: InspectedPlugin[] = [];
  const kinds = new Map<string, PluginKind>();
  let allKindsKnown = true;
  const pluginsDir = opts.pluginsDir ?? DEFAULT_PLUGINS_DIR;
  const pluginEntries = asRecord(asRecord(tree)?.plugins) ?? {};
  for (const [name, entryValue] of Object.entries(pluginEntries)) {
    const entry = PluginEntrySchema.safeParse(entryValue);
    if (!entry.success) {
      allKindsKnown = false;
      continue;
    }
    if (!entry.data.enabled) continue;
    const result = await inspectOne(name, () => asRecord(asRecord(pluginEntries[name])?.config) ?? {}, pluginsDir, tree, expansion.coerced);
    if (result.plugin) {
      inspected.push(result.plugin);
      kinds.set(name, result.plugin.kind);
    } else {
      allKindsKnown = false;
      problems.push(...result.problems);
    }
  }

  // 6. Cross-references (on the tree as written, so they are reported despite schema errors).
  problems.push(...checkReferences(tree, { kinds, allKindsKnown }));

  if (problems.length > 0 || !parsed.success) fail(problems);
  const config = deepFreeze(parsed.data as SwitchboardConfig);
  for (const p of inspected) deepFreeze(p.config);
  return Object.freeze({
    config,
    path: opts.path ?? resolve(opts.dir, opts.file),
    dir: opts.dir,
    inspectedPlugins: Object.freeze(inspected),
    source,
  });
}

// --- secrets -----------------------------------------------------------------------------

/** Keys in plugin config that hold secrets by their name (apiKey, password, authToken...). */
const SECRET_KEY = /(password|passwd|secret|token|api[-_]?key|private[-_]?key|credentials?)$/i;

function checkSecrets(doc: Document): PendingProblem[] {
  const problems: PendingProblem[] = [];
  const check = (path: ConfigPath, node: unknown, why: string): void => {
    if (!isScalar(node) || node.value === null || node.value === '') return;
    const key = String(path[path.length - 1]);
    const hint = `put the secret in an environment variable: ${key}: \${${suggestEnvName(path)}}`;
    if (typeof node.value === 'string' && isBareEnvReference(node.value)) return;
    if (typeof node.value === 'string' && node.value.startsWith('${') && node.value.includes(':-')) {
      problems.push({ kind: 'secret', at: path, message: `${why}, and its default is written in the file`, hint: `remove the default; ${hint}` });
      return;
    }
    problems.push({ kind: 'secret', at: path, message: `${why} and must not be written in the file`, hint });
  };
  for (const path of SECRET_PATHS) check(path, doc.getIn(path, true), 'is a secret');
  for (const { node, path } of walkNodes(doc.contents)) {
    const last = path[path.length - 1];
    if (path[0] === 'plugins' && path[2] === 'config' && typeof last === 'string' && SECRET_KEY.test(last)) {
      check(path, node, `looks like a secret (by its name)`);
    }
  }
  return problems;
}

// --- ${ENV} expansion --------------------------------------------------------------------

interface DocumentExpansion {
  problems: PendingProblem[];
  /** Paths (issuePath form) of `${VAR}` values read as numbers/booleans, with their text. */
  coerced: Map<string, string>;
}

function expandDocument(doc: Document, env: Env): DocumentExpansion {
  const problems: PendingProblem[] = [];
  const coerced = new Map<string, string>();
  for (const { node, path } of walkNodes(doc.contents)) {
    const scalar = node as Scalar;
    if (typeof scalar.value !== 'string') continue;
    const r = expandEnv(scalar.value, env);
    for (const bad of r.invalid) {
      problems.push({ kind: 'env', at: path, message: `malformed reference ${bad.ref}: ${bad.reason}`, hint: 'write ${NAME} or ${NAME:-default}; write $${ for a literal "${"' });
    }
    if (r.invalid.length > 0) continue;
    // A disabled plugin's config is not used: its variables need not be set.
    const inDisabledPlugin = path[0] === 'plugins' && path[2] === 'config' && doc.getIn(['plugins', path[1], 'enabled']) === false;
    if (r.missing.length > 0) {
      if (inDisabledPlugin) continue;
      for (const name of r.missing) {
        problems.push({
          kind: 'env',
          at: path,
          message: `environment variable ${name} is not set`,
          hint: `set ${name}, or give a default: \${${name}:-value}`,
        });
      }
      continue;
    }
    if (r.whole) {
      const typed = typedScalar(r.value);
      if (typed !== undefined) {
        scalar.value = typed;
        coerced.set(issuePath('', path), r.value);
        continue;
      }
    }
    scalar.value = r.value;
  }
  return { problems, coerced };
}

/** How YAML would have read the value had it been written in place of the reference. */
function typedScalar(text: string): number | boolean | undefined {
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  if (/^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  return undefined;
}

function revertCoercions(tree: unknown, paths: readonly (readonly PropertyKey[])[], coerced: Map<string, string>): boolean {
  let changed = false;
  for (const path of paths) {
    const key = issuePath('', path);
    const text = coerced.get(key);
    if (text === undefined || path.length === 0) continue;
    const parent = path.slice(0, -1).reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined), tree);
    if (typeof parent !== 'object' || parent === null) continue;
    (parent as Record<PropertyKey, unknown>)[path[path.length - 1]!] = text;
    coerced.delete(key);
    changed = true;
  }
  return changed;
}

// --- schema ------------------------------------------------------------------------------

function schemaProblems(error: z.ZodError): PendingProblem[] {
  const out: PendingProblem[] = [];
  for (const issue of error.issues) {
    const at = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const key = issuePath('', at);
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(at);
      for (const k of issue.keys) {
        out.push({
          kind: 'schema',
          at: [...at, k],
          message: `unknown key "${k}"`,
          hint: `${didYouMean(k, allowed)}${allowed.length ? `allowed here: ${allowed.join(', ')}` : 'no keys are allowed here'}`,
        });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      const reasons = issue.issues.map((i) => i.message).join('; ');
      out.push({ kind: 'schema', at, message: `"${String(at[at.length - 1])}" is not a valid name: ${reasons}` });
      continue;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      out.push({ kind: 'schema', at, message: `required, but missing (expected ${issue.expected})` });
      continue;
    }
    const formatted = formatZodIssues(new z.ZodError([issue]))[0];
    const where = key || '(top level)';
    const message = formatted?.message.startsWith(`${where}: `) ? formatted.message.slice(where.length + 2) : (formatted?.message ?? issue.message);
    const hint = formatted?.hint;
    out.push({ kind: 'schema', at, message, ...(hint ? { hint } : {}) });
  }
  return out;
}

interface SchemaDef {
  type: string;
  shape?: Record<string, { def: SchemaDef }>;
  valueType?: { def: SchemaDef };
  innerType?: { def: SchemaDef };
  element?: { def: SchemaDef };
  in?: { def: SchemaDef };
}

/** Keys the schema allows in the object at `path` (for "did you mean"). */
export function allowedKeys(path: ConfigPath): string[] {
  let def: SchemaDef | undefined = (SwitchboardConfigSchema as unknown as { def: SchemaDef }).def;
  const unwrap = (): void => {
    while (def && (def.innerType || def.in)) def = (def.innerType ?? def.in)?.def;
  };
  for (const seg of path) {
    unwrap();
    if (!def) return [];
    if (def.type === 'object') def = def.shape?.[String(seg)]?.def;
    else if (def.type === 'record') def = def.valueType?.def;
    else if (def.type === 'array') def = def.element?.def;
    else return [];
  }
  unwrap();
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

// --- plugins -----------------------------------------------------------------------------

/** Inspect one plugin; `config` reads its block from the tree (which coercion reverts change). */
async function inspectOne(
  name: string,
  config: () => Record<string, unknown>,
  dir: string,
  tree: unknown,
  coerced: Map<string, string>,
): Promise<{ plugin?: InspectedPlugin; problems: PendingProblem[] }> {
  for (let pass = 0; ; pass++) {
    try {
      const [plugin] = await inspectPlugins({ [name]: config() }, dir);
      return plugin ? { plugin, problems: [] } : { problems: [] };
    } catch (err) {
      if (!(err instanceof PluginLoadError)) throw err;
      // ${VAR} values read as numbers where the plugin's schema wants text: back to text.
      const wantText = err.problems.flatMap((p) => {
        const m = p.code === 'invalid_config' ? /^(\S+): expected string\b/.exec(p.message) : null;
        return m?.[1] ? [parseIssuePath(m[1])] : [];
      });
      if (pass < 2 && revertCoercions(tree, wantText, coerced)) continue;
      return { problems: err.problems.flatMap((p) => pluginProblem(p, tree)) };
    }
  }
}

function pluginProblem(p: PluginProblem, tree: unknown): PendingProblem[] {
  const hint = p.hint ? { hint: p.hint } : {};
  if (p.code === 'invalid_config') {
    const m = /^(plugins\.\S+): ([\s\S]*)$/.exec(p.message);
    if (m?.[1] && m[2] !== undefined) {
      const at = parseIssuePath(m[1]);
      // One problem per unknown key, placed at the key.
      const unknown = /^unknown keys? ((?:"[^"]*"(?:, )?)+)$/.exec(m[2]);
      if (unknown?.[1]) {
        return [...unknown[1].matchAll(/"([^"]*)"/g)].map((k) => ({ kind: 'plugin', at: [...at, k[1] ?? ''], message: `unknown key "${k[1]}"`, ...hint }));
      }
      return [{ kind: 'plugin', at, message: describeFound(m[2], at, tree), ...hint }];
    }
  }
  return [{ kind: 'plugin', at: ['plugins', p.plugin], message: p.message, ...hint }];
}

/** The loader validates plugin config without the input in its issues, so a wrong value reads as "missing": say what is there. */
function describeFound(message: string, at: ConfigPath, tree: unknown): string {
  const m = /^expected (\w+), but it is missing$/.exec(message);
  const value = at.reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined), tree);
  if (!m || value === undefined) return message;
  const last = at[at.length - 1];
  const secret = typeof last === 'string' && SECRET_KEY.test(last);
  const found =
    value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'string' && !secret ? `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}` : secret ? `a ${typeof value}` : `${typeof value} ${JSON.stringify(value)}`;
  return `expected ${m[1]}, got ${found}`;
}

/** "plugins.x.config.voices[1].name" -> ["plugins", "x", "config", "voices", 1, "name"] */
function parseIssuePath(text: string): (string | number)[] {
  return [...text.matchAll(/\[(\d+)\]|([^.[\]]+)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2] ?? ''));
}

// --- freezing ----------------------------------------------------------------------------

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * Object.freeze, recursively, on plain objects and arrays (class instances such as a RegExp
 * a plugin schema produced are left alone: freezing them would break their own methods).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return value;
}

export { ConfigError } from './errors.js';
export type { ConfigProblem } from './errors.js';
export { checkToolAllowlists, toolNamesOf, BUILTIN_TOOLS } from './references.js';
