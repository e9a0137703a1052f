/**
 * llm-script: a deterministic dialog engine driven by a YAML scenario, a drop-in for a
 * language model that works offline. It speaks the LLM contract (text deltas, tool calls from
 * the request's tool list only, done), so the conversation loop cannot tell it from a model.
 *
 * Config:
 *   scenario:        path to the scenario YAML, relative to the config file's directory
 *   matchThreshold:  overrides the scenario's settings.matchThreshold (0.1..1)
 *   maxRetries:      overrides the scenario's settings.maxRetries
 * The scenario is loaded and fully validated when the plugin starts: a bad scenario stops
 * startup with every problem listed (path and line).
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../src/log.js';
import { defineLlmPlugin, type LlmProvider, type LlmSession, type LlmSessionOptions } from '../../src/plugins/api.js';
import { DialogEngine, type EngineOptions } from './engine.js';
import { loadScenarioFile, unreachableStates, type Scenario } from './scenario.js';
import { ScriptSession } from './session.js';
import { DEFAULT_NO, DEFAULT_YES } from './match.js';
import { CHOICE_PHRASES, slotPhrases } from './slots.js';

export const ScriptConfigSchema = z.strictObject({
  scenario: z.string().min(1),
  matchThreshold: z.number().min(0.1).max(1).optional(),
  maxRetries: z.int().min(1).max(10).optional(),
});
export type ScriptConfig = z.infer<typeof ScriptConfigSchema>;

export class ScriptProvider implements LlmProvider {
  readonly engine: DialogEngine;

  constructor(
    scenario: Scenario,
    private readonly log: Logger,
    opts: Omit<EngineOptions, 'log'> = {},
  ) {
    this.engine = new DialogEngine(scenario, { ...opts, log });
  }

  async session(opts: LlmSessionOptions): Promise<LlmSession> {
    const log = this.log.child({ callId: opts.callId, agent: opts.agent });
    const lang = this.engine.scenario.language;
    if (lang && lang.split('-')[0]!.toLowerCase() !== opts.language.split('-')[0]!.toLowerCase()) {
      log.warn({ scenarioLanguage: lang, agentLanguage: opts.language }, 'the scenario is written for another language than the agent');
    }
    return new ScriptSession(this.engine, opts, log);
  }

  /** Everything the scenario listens for: recognition hints for grammar-based recognisers. */
  expectedPhrases(): readonly string[] {
    const s = this.engine.scenario;
    const out = new Set<string>();
    const add = (p: string): void => void out.add(p.trim().toLowerCase());
    for (const i of Object.values(s.intents)) [...i.examples, ...i.keywords].forEach(add);
    for (const f of Object.values(s.faq)) [...f.examples, ...f.keywords].forEach(add);
    for (const r of s.escalation.rules) r.phrases.forEach(add);
    [...DEFAULT_YES, ...DEFAULT_NO, ...s.lexicon.yes, ...s.lexicon.no].forEach(add);
    for (const slot of Object.values(s.slots)) slotPhrases(slot).forEach(add);
    if (Object.values(s.states).some((st) => st.choices !== undefined)) CHOICE_PHRASES.forEach(add);
    return [...out].filter((p) => p.length > 0);
  }

  async close(): Promise<void> {}
}

/** Load, validate and start a scenario (the plugin factory; tests pass `now`). */
export async function createScriptProvider(config: ScriptConfig, ctx: { configDir: string; log: Logger }, opts: Pick<EngineOptions, 'now'> = {}): Promise<ScriptProvider> {
  const file = isAbsolute(config.scenario) ? config.scenario : resolve(ctx.configDir, config.scenario);
  const scenario = await loadScenarioFile(file);
  const unreachable = unreachableStates(scenario);
  if (unreachable.length > 0) ctx.log.warn({ scenario: scenario.name, states: unreachable }, 'scenario states no path reaches');
  ctx.log.info(
    { scenario: scenario.name, states: Object.keys(scenario.states).length, intents: Object.keys(scenario.intents).length, faq: Object.keys(scenario.faq).length },
    'scenario loaded',
  );
  return new ScriptProvider(scenario, ctx.log, { ...opts, matchThreshold: config.matchThreshold, maxRetries: config.maxRetries });
}

export default defineLlmPlugin<ScriptConfig>({
  manifest: {
    name: 'llm-script',
    kind: 'llm',
    version: '1.0.0',
    apiVersion: '^1.0.0',
    description: 'Deterministic dialog engine driven by a YAML scenario: intents, slots, states and tool calls, offline',
    configSchema: ScriptConfigSchema,
  },
  create: (config, ctx) => createScriptProvider(config, ctx),
});
