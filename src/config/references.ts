/**
 * Cross-reference checks: names in the config that must name something else in it.
 *
 *  - defaultAgent names an agent;
 *  - an agent's stt / llm / tts / ttsFallback names a plugin under `plugins` that is enabled
 *    and, once plugins are inspected, is of that kind;
 *  - fallback.transferTo names one of the agent's `transfer` destinations;
 *  - every tool in an agent's allowlist is a built-in or comes from an enabled tools plugin.
 *
 * The first three run on the config as written (before or despite schema errors, so every
 * problem is reported in one go) and therefore guard every access. Tool names are only known
 * once the tools plugins have started: checkToolAllowlists runs then.
 */
import { BUILTIN_TOOL_NAMES } from '../conversation/builtin-tools.js';
import type { PluginKind, ToolsProvider } from '../plugins/api.js';
import { ConfigError } from './errors.js';
import type { SwitchboardConfig } from './schema.js';
import { placeProblem, type ConfigSource, type PendingProblem } from './source.js';
import { didYouMean, quoteList } from './suggest.js';

/** Call-control tools every agent may allow without a plugin. */
/** The built-in call-control tools (defined with the conversation loop). */
export const BUILTIN_TOOLS: readonly string[] = BUILTIN_TOOL_NAMES;

const PLUGIN_ROLES = [
  ['stt', 'stt'],
  ['llm', 'llm'],
  ['tts', 'tts'],
  ['ttsFallback', 'tts'],
] as const satisfies readonly (readonly [string, PluginKind])[];

/** "an stt plugin", "a tts plugin" (as the abbreviations are read out). */
function an(kind: PluginKind): string {
  return kind === 'stt' || kind === 'llm' ? 'an' : 'a';
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export interface ReferenceContext {
  /**
   * Kind of every enabled plugin that was inspected successfully. A plugin missing here (not
   * inspected, or failed) is not held to a kind: its own problem is reported instead.
   */
  kinds: ReadonlyMap<string, PluginKind>;
  /** True when every enabled plugin's kind is known (so "no tools plugin" is a fact). */
  allKindsKnown: boolean;
}

/** Reference problems in the config as written (the `${}`-expanded tree, not yet validated). */
export function checkReferences(raw: unknown, ctx: ReferenceContext): PendingProblem[] {
  const problems: PendingProblem[] = [];
  const root = record(raw);
  if (!root) return problems;
  const plugins = record(root.plugins) ?? {};
  const agents = record(root.agents);
  const enabled = (name: string): boolean => record(plugins[name])?.enabled !== false;
  const enabledOfKind = (kind: PluginKind): string[] => [...ctx.kinds].filter(([n, k]) => k === kind && enabled(n)).map(([n]) => n);
  const toolsPluginEnabled = [...ctx.kinds.values()].includes('tools');

  if (typeof root.defaultAgent === 'string' && agents && !Object.hasOwn(agents, root.defaultAgent)) {
    const names = Object.keys(agents);
    problems.push({
      kind: 'reference',
      at: ['defaultAgent'],
      message: `no agent named "${root.defaultAgent}"`,
      hint: names.length ? `${didYouMean(root.defaultAgent, names)}agents: ${quoteList(names)}` : 'define at least one agent under "agents"',
    });
  }

  for (const [agentName, agentValue] of Object.entries(agents ?? {})) {
    const agent = record(agentValue);
    if (!agent) continue;
    for (const [field, kind] of PLUGIN_ROLES) {
      const name = agent[field];
      if (typeof name !== 'string') continue;
      const at = ['agents', agentName, field];
      const candidates = enabledOfKind(kind);
      const choose = candidates.length ? `enabled ${kind} plugins: ${quoteList(candidates)}` : `enable ${an(kind)} ${kind} plugin under "plugins"`;
      if (!Object.hasOwn(plugins, name)) {
        problems.push({
          kind: 'reference',
          at,
          message: `plugin "${name}" is not configured under "plugins"`,
          hint: `${didYouMean(name, Object.keys(plugins))}${candidates.length ? choose : `add it under "plugins" (${name}: {})`}`,
        });
      } else if (!enabled(name)) {
        problems.push({
          kind: 'reference',
          at,
          message: `plugin "${name}" is disabled (plugins.${name}.enabled is false)`,
          hint: candidates.length ? `enable it, or use one of the ${choose}` : 'enable it (enabled: true)',
        });
      } else {
        const actual = ctx.kinds.get(name);
        if (actual !== undefined && actual !== kind) {
          problems.push({
            kind: 'reference',
            at,
            message: `plugin "${name}" is ${an(actual)} ${actual} plugin, but ${field} needs ${an(kind)} ${kind} plugin`,
            hint: choose,
          });
        }
      }
    }
    if (typeof agent.ttsFallback === 'string' && agent.ttsFallback === agent.tts) {
      problems.push({
        kind: 'reference',
        at: ['agents', agentName, 'ttsFallback'],
        message: `the fallback TTS is the same plugin as tts ("${agent.tts}")`,
        hint: 'name a different TTS plugin, or remove ttsFallback',
      });
    }

    const transferTo = record(agent.fallback)?.transferTo;
    if (typeof transferTo === 'string') {
      const destinations = Object.keys(record(agent.transfer) ?? {});
      if (!destinations.includes(transferTo)) {
        problems.push({
          kind: 'reference',
          at: ['agents', agentName, 'fallback', 'transferTo'],
          message: `"${transferTo}" is not one of this agent's transfer destinations`,
          hint: destinations.length
            ? `${didYouMean(transferTo, destinations)}destinations: ${quoteList(destinations)}`
            : `add it under agents.${agentName}.transfer (context and extension)`,
        });
      }
    }

    // Without any tools plugin, a tool that is not built in cannot exist. (With one, the
    // names are known only once it has started: checkToolAllowlists.)
    if (Array.isArray(agent.tools) && ctx.allKindsKnown && !toolsPluginEnabled) {
      agent.tools.forEach((tool, i) => {
        if (typeof tool === 'string' && !BUILTIN_TOOLS.includes(tool)) {
          problems.push({
            kind: 'reference',
            at: ['agents', agentName, 'tools', i],
            message: `"${tool}" is not a built-in tool and no tools plugin is enabled`,
            hint: `${didYouMean(tool, BUILTIN_TOOLS)}built-in tools: ${quoteList(BUILTIN_TOOLS)}; other tools come from an enabled tools plugin`,
          });
        }
      });
    }
  }
  return problems;
}

/** Tool names of started tools plugins, by plugin (input for checkToolAllowlists). */
export function toolNamesOf(tools: ReadonlyMap<string, ToolsProvider>): Map<string, string[]> {
  return new Map([...tools].map(([plugin, provider]) => [plugin, provider.tools.map((t) => t.name)]));
}

/**
 * After startPlugins: every tool an agent allows must be a built-in or provided by exactly
 * one started tools plugin, and no plugin may provide a tool under a built-in's name.
 * Throws a ConfigError listing every problem (placed in the file when `source` is given).
 */
export function checkToolAllowlists(
  config: Pick<SwitchboardConfig, 'agents'>,
  toolNamesByPlugin: ReadonlyMap<string, readonly string[]>,
  source?: ConfigSource,
): void {
  const problems: PendingProblem[] = [];
  const providers = new Map<string, string[]>();
  for (const [plugin, names] of toolNamesByPlugin) {
    for (const name of new Set(names)) {
      if (BUILTIN_TOOLS.includes(name)) {
        problems.push({
          kind: 'plugin',
          at: ['plugins', plugin],
          message: `provides a tool named "${name}", which is a built-in tool`,
          hint: 'the plugin must give the tool another name',
        });
        continue;
      }
      providers.set(name, [...(providers.get(name) ?? []), plugin]);
    }
  }
  const available = [...BUILTIN_TOOLS, ...providers.keys()];
  for (const [agentName, agent] of Object.entries(config.agents)) {
    agent.tools.forEach((tool, i) => {
      if (BUILTIN_TOOLS.includes(tool)) return;
      const from = providers.get(tool) ?? [];
      if (from.length === 0) {
        problems.push({
          kind: 'reference',
          at: ['agents', agentName, 'tools', i],
          message: `no built-in or enabled tools plugin provides a tool named "${tool}"`,
          hint: `${didYouMean(tool, available)}available tools: ${quoteList(available)}`,
        });
      } else if (from.length > 1) {
        problems.push({
          kind: 'reference',
          at: ['agents', agentName, 'tools', i],
          message: `tool "${tool}" is provided by several plugins (${quoteList(from)})`,
          hint: 'disable all but one of them',
        });
      }
    });
  }
  if (problems.length > 0) throw new ConfigError(source?.file ?? 'config', problems.map((p) => placeProblem(source, p)));
}
