/**
 * Loads the plugins the config enables, and only those. Two phases, so `config check` can
 * run the first without starting anything:
 *  1. inspect: import each plugins/<name>/index.ts, check its manifest (name matches the
 *     folder, known kind, API range satisfied by PLUGIN_API_VERSION) and validate its config
 *     with the plugin's own schema;
 *  2. start: run the factories.
 * Every problem of a phase is collected and reported at once (PluginLoadError lists them);
 * nothing is started if any plugin is wrong.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import semver from 'semver';
import { formatZodIssues } from '../config/zod-issues.js';
import {
  PLUGIN_API_VERSION,
  type LlmProvider,
  type PluginContext,
  type PluginKind,
  type PluginModule,
  type SttProvider,
  type ToolsProvider,
  type TtsProvider,
} from './api.js';

export const DEFAULT_PLUGINS_DIR = resolve(import.meta.dirname, '../../plugins');

export type PluginProblemCode = 'unknown_plugin' | 'import_failed' | 'bad_manifest' | 'api_mismatch' | 'invalid_config' | 'factory_failed';

export interface PluginProblem {
  plugin: string;
  code: PluginProblemCode;
  message: string;
  hint?: string;
}

export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
  constructor(readonly problems: PluginProblem[]) {
    super(
      `${problems.length} plugin problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p.plugin}: [${p.code}] ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`).join('\n'),
    );
  }
}

export interface InspectedPlugin {
  name: string;
  kind: PluginKind;
  version: string;
  module: PluginModule;
  /** The config after the plugin's schema (defaults applied). */
  config: unknown;
}

const KINDS: readonly PluginKind[] = ['stt', 'llm', 'tts', 'tools'];
const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;

/** Names of the plugin folders available in `dir`. */
export async function availablePlugins(dir = DEFAULT_PLUGINS_DIR): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'index.ts'))).map((e) => e.name).sort();
}

/** Phase 1: import and check every enabled plugin; throws PluginLoadError listing all problems. */
export async function inspectPlugins(enabled: Readonly<Record<string, unknown>>, dir = DEFAULT_PLUGINS_DIR): Promise<InspectedPlugin[]> {
  const problems: PluginProblem[] = [];
  const out: InspectedPlugin[] = [];
  const available = await availablePlugins(dir);
  for (const [name, rawConfig] of Object.entries(enabled)) {
    if (!NAME_RE.test(name) || !available.includes(name)) {
      problems.push({
        plugin: name,
        code: 'unknown_plugin',
        message: `no plugin named "${name}" in ${dir}`,
        hint: available.length ? `available plugins: ${available.join(', ')}` : 'the plugins folder is empty',
      });
      continue;
    }
    let mod: PluginModule;
    try {
      const imported = (await import(pathToFileURL(join(dir, name, 'index.ts')).href)) as { default?: unknown };
      mod = imported.default as PluginModule;
    } catch (err) {
      problems.push({ plugin: name, code: 'import_failed', message: `could not be imported: ${errText(err)}` });
      continue;
    }
    const manifestProblem = checkManifest(name, mod);
    if (manifestProblem) {
      problems.push(manifestProblem);
      continue;
    }
    const parsed = mod.manifest.configSchema.safeParse(rawConfig ?? {}, { reportInput: true });
    if (!parsed.success) {
      for (const issue of formatZodIssues(parsed.error, `plugins.${name}.config`)) {
        problems.push({ plugin: name, code: 'invalid_config', message: issue.message, ...(issue.hint ? { hint: issue.hint } : {}) });
      }
      continue;
    }
    out.push({ name, kind: mod.manifest.kind, version: mod.manifest.version, module: mod, config: parsed.data });
  }
  if (problems.length > 0) throw new PluginLoadError(problems);
  return out;
}

function checkManifest(folder: string, mod: unknown): PluginProblem | undefined {
  const bad = (message: string, hint?: string): PluginProblem => ({ plugin: folder, code: 'bad_manifest', message, ...(hint ? { hint } : {}) });
  if (typeof mod !== 'object' || mod === null) return bad('index.ts has no default export', 'export default defineSttPlugin({ manifest, create })');
  const m = (mod as { manifest?: unknown; create?: unknown }).manifest as Record<string, unknown> | undefined;
  if (!m || typeof m !== 'object') return bad('the default export has no manifest');
  if (typeof (mod as { create?: unknown }).create !== 'function') return bad('the default export has no create() factory');
  if (m.name !== folder) return bad(`manifest name "${String(m.name)}" does not match its folder "${folder}"`);
  if (!KINDS.includes(m.kind as PluginKind)) return bad(`unknown kind "${String(m.kind)}"`, `one of ${KINDS.join(', ')}`);
  if (typeof m.version !== 'string' || !semver.valid(m.version)) return bad(`version "${String(m.version)}" is not semver`);
  if (typeof m.apiVersion !== 'string' || !semver.validRange(m.apiVersion)) return bad(`apiVersion "${String(m.apiVersion)}" is not a semver range`);
  if (!semver.satisfies(PLUGIN_API_VERSION, m.apiVersion)) {
    return {
      plugin: folder,
      code: 'api_mismatch',
      message: `written for plugin API ${m.apiVersion}, this Switchboard provides ${PLUGIN_API_VERSION}`,
      hint: 'upgrade the plugin (or Switchboard) so the API versions match',
    };
  }
  const schema = m.configSchema as { safeParse?: unknown } | undefined;
  if (!schema || typeof schema.safeParse !== 'function') return bad('manifest.configSchema is not a zod schema');
  return undefined;
}

export interface LoadedPlugins {
  stt: ReadonlyMap<string, SttProvider>;
  llm: ReadonlyMap<string, LlmProvider>;
  tts: ReadonlyMap<string, TtsProvider>;
  tools: ReadonlyMap<string, ToolsProvider>;
  /** Kind of each loaded plugin, by name. */
  kinds: ReadonlyMap<string, PluginKind>;
  close(): Promise<void>;
}

/** Phase 2: run the factories of inspected plugins. A factory that throws stops startup. */
export async function startPlugins(inspected: readonly InspectedPlugin[], ctx: Omit<PluginContext, 'log'> & { log: PluginContext['log'] }): Promise<LoadedPlugins> {
  const stt = new Map<string, SttProvider>();
  const llm = new Map<string, LlmProvider>();
  const tts = new Map<string, TtsProvider>();
  const tools = new Map<string, ToolsProvider>();
  const kinds = new Map<string, PluginKind>();
  const started: { close(): Promise<void> }[] = [];
  const problems: PluginProblem[] = [];
  for (const p of inspected) {
    try {
      const pctx: PluginContext = { ...ctx, log: ctx.log.child({ plugin: p.name }) };
      const mod = p.module;
      switch (mod.manifest.kind) {
        case 'stt': {
          const inst = await (mod as Extract<PluginModule, { manifest: { kind: 'stt' } }>).create(p.config, pctx);
          stt.set(p.name, inst);
          started.push(inst);
          break;
        }
        case 'llm': {
          const inst = await (mod as Extract<PluginModule, { manifest: { kind: 'llm' } }>).create(p.config, pctx);
          llm.set(p.name, inst);
          started.push(inst);
          break;
        }
        case 'tts': {
          const inst = await (mod as Extract<PluginModule, { manifest: { kind: 'tts' } }>).create(p.config, pctx);
          tts.set(p.name, inst);
          started.push(inst);
          break;
        }
        case 'tools': {
          const inst = await (mod as Extract<PluginModule, { manifest: { kind: 'tools' } }>).create(p.config, pctx);
          tools.set(p.name, inst);
          started.push(inst);
          break;
        }
      }
      kinds.set(p.name, p.kind);
    } catch (err) {
      problems.push({ plugin: p.name, code: 'factory_failed', message: `failed to start: ${errText(err)}` });
    }
  }
  const close = async (): Promise<void> => {
    await Promise.allSettled(started.map((s) => s.close()));
  };
  if (problems.length > 0) {
    await close();
    throw new PluginLoadError(problems);
  }
  return { stt, llm, tts, tools, kinds, close };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
