/**
 * The conversation loop when things go wrong, over a real RTP peer, the real Silero VAD and
 * the real offline plugins (PocketSphinx hears the caller, Flite speaks):
 *  - a language model that fails mid-call: the caller hears the fallback phrase, and after
 *    the configured number of failed turns is handed to the fallback transfer destination;
 *  - a caller who says nothing: re-prompted, then told goodbye and hung up on;
 *  - a TTS that fails before any audio: the fallback voice speaks instead.
 * The failing language model is a test double on purpose: the failure is what is under test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import sttModule from '../../plugins/stt-pocketsphinx/index.js';
import fliteModule from '../../plugins/tts-flite/index.js';
import espeakModule from '../../plugins/tts-espeak/index.js';
import type { AgentFactory } from '../../src/agents/agent.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { VadBatcher } from '../../src/audio/vad/vad-batcher.js';
import { CallSession } from '../../src/call/call-session.js';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory } from '../../src/call/media-binding.js';
import { AgentConfigSchema, type AgentConfig } from '../../src/config/schema.js';
import { createConversationAgentFactory } from '../../src/conversation/conversation-agent.js';
import { createConversationMetrics } from '../../src/conversation/metrics.js';
import { ToolRegistry } from '../../src/conversation/tool-runner.js';
import { PhraseCache, Voice } from '../../src/conversation/voice.js';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { PluginError, type LlmProvider, type SttProvider, type TtsProvider } from '../../src/plugins/api.js';
import { RtpPeer } from '../support/rtp-peer.js';
import { speechAt } from '../support/speech.js';

const pctx = { log: silentLogger, signal: new AbortController().signal, cacheDir: '/tmp', configDir: process.cwd() };
let model: SileroVadModel;
let batcher: VadBatcher;
let stt: SttProvider;
let flite: TtsProvider;
let espeak: TtsProvider;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  model = await SileroVadModel.load();
  batcher = new VadBatcher(model);
  stt = await sttModule.create(sttModule.manifest.configSchema.parse({ mode: 'lm' }), pctx);
  flite = await fliteModule.create(fliteModule.manifest.configSchema.parse({}), pctx);
  espeak = await espeakModule.create(espeakModule.manifest.configSchema.parse({}), pctx);
}, 120_000);

afterAll(async () => {
  batcher?.close();
  await model?.close();
  await stt?.close();
  await flite?.close();
  await espeak?.close();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A language model that always fails, as a provider outage would. */
const brokenLlm: LlmProvider = {
  async session() {
    return {
      async *respond() {
        throw new PluginError('llm-broken', 'unavailable', 'connection refused', true);
      },
      close: async () => undefined,
    };
  },
  close: async () => undefined,
};

/** A TTS that fails before producing audio. */
const brokenTts: TtsProvider = {
  sampleRate: 8000,
  async *synthesize() {
    throw new PluginError('tts-broken', 'unavailable', 'engine crashed', true);
  },
  close: async () => undefined,
};

interface Started {
  peer: RtpPeer;
  session: CallSession;
  actions: string[];
  conv: ReturnType<typeof createConversationMetrics>;
}

async function startConversation(agentConfig: Partial<AgentConfig>, llm: LlmProvider, tts: { primary: TtsProvider; fallback?: TtsProvider } = { primary: flite }): Promise<Started> {
  const registry = new MetricsRegistry();
  const metrics = createEngineMetrics(registry);
  const conv = createConversationMetrics(registry);
  const config = AgentConfigSchema.parse({ stt: 'stt-pocketsphinx', llm: 'llm-test', tts: 'tts-test', ...agentConfig });
  const voice = new Voice({
    primary: { name: 'tts-primary', provider: tts.primary },
    fallback: tts.fallback ? { name: 'tts-fallback', provider: tts.fallback } : undefined,
    language: 'en-US',
    cache: new PhraseCache(),
    log: silentLogger,
  });
  const factory: AgentFactory = createConversationAgentFactory({ name: 'test', config, stt, llm, voice, pluginTools: new ToolRegistry(), metrics: conv, log: silentLogger });
  const mediaFactory = createRtpMediaFactory({ vadSource: batcher, metrics, defaultTurn: config.vad });
  const media = await mediaFactory.openMedia('ulaw', silentLogger);
  cleanups.push(() => media.close());
  const peer = await RtpPeer.open({ remote: media.externalHost, idle: 'silence' });
  cleanups.push(() => peer.close());
  media.setRemote(peer.address.host, peer.address.port);
  const info = { callId: 'c1', channelId: 'c1', caller: { number: '+15550100', name: '' }, agentName: 'test' };
  const actions: string[] = [];
  const session = new CallSession({
    info,
    media,
    vad: mediaFactory.createVad(media, 'test', config.vad),
    agent: factory.create(info),
    log: silentLogger,
    metrics,
    hangupChannel: async (reason) => void actions.push(`hangup:${reason}`),
    transferChannel: async (target, reason) => void actions.push(`transfer:${target.extension}:${reason}`),
  });
  cleanups.push(() => session.end('completed'));
  peer.start();
  session.start();
  return { peer, session, actions, conv };
}

describe('conversation failures', () => {
  it('a failing model: fallback phrase on the first failed turn, transfer to a human after the second', { timeout: 90_000 }, async () => {
    const { peer, actions, conv } = await startConversation(
      {
        greeting: 'Hello, how can I help?',
        transfer: { operator: { context: 'switchboard-handoff', extension: 'operator' } },
        fallback: { phrase: 'Sorry, I am having trouble. Let me get a colleague.', transferTo: 'operator', maxConsecutiveErrors: 2 },
      },
      brokenLlm,
    );
    await peer.waitForQuiet(800, 20_000, 20); // the greeting played
    const heardBefore = peer.received.length;
    await peer.say(await speechAt('Where is my order?', 8000));
    await peer.waitFor(() => conv.failures.get({ stage: 'llm' }) === 1, 20_000, 'the first failed turn');
    await peer.waitForQuiet(800, 20_000, heardBefore + 20); // the fallback phrase played
    expect(actions).toEqual([]); // one failure: the caller stays with the agent
    await peer.say(await speechAt('Hello? Can you hear me?', 8000));
    await peer.waitFor(() => actions.length > 0, 25_000, 'the hand-off');
    expect(actions).toEqual(['transfer:operator:llm_failure']);
    expect(conv.failures.get({ stage: 'llm' })).toBe(2);
  });

  it('a silent caller is re-prompted, then told goodbye and hung up on', { timeout: 60_000 }, async () => {
    const { peer, actions, conv } = await startConversation(
      { greeting: 'Hello, how can I help?', silence: { repromptAfterMs: 2000, reprompt: 'Are you still there?', maxReprompts: 1, goodbye: 'Goodbye for now.' } },
      brokenLlm,
    );
    await peer.waitFor(() => actions.length > 0, 40_000, 'the hang-up');
    expect(actions).toEqual(['hangup:caller_silent']);
    expect(conv.reprompts.get()).toBe(2); // one re-prompt, then the goodbye
    // Greeting, re-prompt and goodbye were all heard: more than two seconds of audio.
    expect(peer.received.length * 20).toBeGreaterThan(2000);
  });

  it('a TTS that fails before any audio is replaced by the fallback voice', { timeout: 60_000 }, async () => {
    const { peer, session } = await startConversation({ greeting: 'Hello, how can I help?' }, brokenLlm, { primary: brokenTts, fallback: espeak });
    await peer.waitForQuiet(800, 20_000, 20);
    expect(peer.received.length * 20).toBeGreaterThan(600); // the greeting, in the fallback voice
    expect(session.isEnded).toBe(false);
  });
});
