/**
 * Switchboard from a validated config: load the enabled plugins, build each agent (its
 * voice with the shared phrase cache, its tools, its conversation loop), then start the call
 * engine with those agents. `switchboard start --config`, the demo and the end-to-end tests
 * go through here.
 */
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { AgentFactory } from './agents/agent.js';
import { startSwitchboard, resolveAriCredentials, type AriCredentials, type RunningSwitchboard } from './app.js';
import type { CallSummary } from './call/call-session.js';
import { checkToolAllowlists, toolNamesOf, type LoadedConfig } from './config/load.js';
import { createConversationAgentFactory, type ConversationObserver } from './conversation/conversation-agent.js';
import { createConversationMetrics } from './conversation/metrics.js';
import { ToolRegistry } from './conversation/tool-runner.js';
import { PhraseCache, Voice } from './conversation/voice.js';
import { createLogger, type Logger } from './log.js';
import { MetricsRegistry } from './metrics/registry.js';
import type { CallInfo } from './agents/agent.js';
import { startPlugins, type LoadedPlugins } from './plugins/loader.js';
import { composeCallEnded, composeObservers, startRecords, type RecordsRuntime } from './records-runtime.js';
import type { CallRecords } from './records/types.js';

export interface StartFromConfigOptions {
  logger?: Logger;
  /** Overrides config.ari / the sandbox credentials (tests). */
  ari?: AriCredentials;
  /** Overrides config.server.http.port (0 = off, undefined = config). */
  httpPort?: number;
  cacheDir?: string;
  onCallEnded?: (summary: CallSummary) => void;
  observerFor?: (call: CallInfo) => ConversationObserver | undefined;
  /** Overrides config.records' locations (tests); false turns call records off. */
  records?: false | { databaseUrl?: string; journalDir?: string };
  /** Overrides server.http.apiToken (tests); default: the config's, else .switchboard/api-token. */
  apiToken?: string;
}

export interface RunningFromConfig extends RunningSwitchboard {
  plugins: LoadedPlugins;
  phraseCache: PhraseCache;
  /** The call-records service (undefined when records are off). */
  records: CallRecords | undefined;
}

/**
 * Start from a config that loadConfig() validated (schema, env, references, plugin configs);
 * what can only be checked with the plugins running (tool allowlists) is checked here.
 */
export async function startFromConfig(loaded: LoadedConfig, opts: StartFromConfigOptions = {}): Promise<RunningFromConfig> {
  const config = loaded.config;
  const log = opts.logger ?? createLogger();
  const shutdown = new AbortController();
  const cacheDir = opts.cacheDir ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'switchboard', 'plugins');
  mkdirSync(cacheDir, { recursive: true });

  const plugins = await startPlugins(loaded.inspectedPlugins, { log, signal: shutdown.signal, cacheDir, configDir: loaded.dir });
  let records: RecordsRuntime | undefined;
  try {
    const registry = new MetricsRegistry();
    const httpPort = opts.httpPort ?? config.server.http.port;
    records = await startRecords({
      config: opts.records === false ? { ...config.records, enabled: false } : config.records,
      configDir: loaded.dir,
      log,
      registry,
      http: httpPort !== 0,
      apiToken: opts.apiToken ?? config.server.http.apiToken,
      ...(opts.records ? { override: opts.records } : {}),
    });
    const observerFor = composeObservers(records.observerFor, opts.observerFor);
    const onCallEnded = composeCallEnded(records.onCallEnded, opts.onCallEnded);
    const convMetrics = createConversationMetrics(registry);
    const tools = new ToolRegistry();
    for (const [name, provider] of plugins.tools) for (const t of provider.tools) tools.add(t, name);
    checkToolAllowlists(config, toolNamesOf(plugins.tools), loaded.source);

    const phraseCache = new PhraseCache();
    const agents: AgentFactory[] = [];
    for (const [name, a] of Object.entries(config.agents)) {
      const voice = new Voice({
        primary: { name: a.tts, provider: plugins.tts.get(a.tts)! },
        fallback: a.ttsFallback ? { name: a.ttsFallback, provider: plugins.tts.get(a.ttsFallback)! } : undefined,
        voice: a.voice,
        language: a.language,
        cache: phraseCache,
        log: log.child({ agent: name }),
        onProviderError: (provider) => convMetrics.failures.inc({ stage: 'tts', provider }),
      });
      const fixed = [a.greeting, ...a.fillers, a.silence.reprompt, a.silence.goodbye, a.fallback.phrase, "Sorry, I didn't catch that. Could you say it again?", config.sessions.resumePhrase];
      // Fixed phrases are rendered in the background: the first call may still render one live.
      void voice.warm(fixed.filter((p): p is string => !!p), shutdown.signal);
      const factory = createConversationAgentFactory({
        name,
        config: a,
        stt: plugins.stt.get(a.stt)!,
        llm: plugins.llm.get(a.llm)!,
        voice,
        pluginTools: tools,
        metrics: convMetrics,
        log,
        resumePhrase: config.sessions.resumePhrase,
        ...(observerFor ? { observerFor } : {}),
      });
      agents.push({ ...factory, settings: { bargeIn: a.bargeIn, turn: a.vad } });
    }

    const ari = opts.ari ?? config.ari ?? (await resolveAriCredentials(config.server.pbxInstance));
    const running = await startSwitchboard({
      ari,
      agents,
      defaultAgent: config.defaultAgent,
      format: config.server.mediaFormat,
      maxCalls: config.server.maxCalls,
      overflow: config.server.overflow,
      httpPort,
      httpHost: config.server.http.host,
      sessions: config.sessions,
      logger: log,
      registry,
      ...(onCallEnded ? { onCallEnded } : {}),
      ...(records.api ? { api: records.api } : {}),
    });
    const recordsRuntime = records;
    return {
      ...running,
      plugins,
      phraseCache,
      records: recordsRuntime.records,
      async stop() {
        shutdown.abort();
        await running.stop();
        // After the calls have ended (their records journalled): a last flush, then let go.
        await recordsRuntime.close();
        await plugins.close();
      },
    };
  } catch (err) {
    shutdown.abort();
    await records?.close();
    await plugins.close();
    throw err;
  }
}
