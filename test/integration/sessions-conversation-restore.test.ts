/**
 * A conversation continued from its saved session, with the real parts: RTP peers as the
 * caller, the Silero VAD, PocketSphinx, the llm-script call-centre scenario, Flite, the CRM
 * plugin on its embedded PostgreSQL, and sessions in the real Redis.
 *
 * Call 1 asks "Where is my order?"; the agent asks for the number and the session (history,
 * call variables, the scripted dialog's position) lands in Redis. Call 1 then dies without a
 * goodbye (its session stays). Call 2 is what a restarted Switchboard builds: a new session
 * store, a new agent from the saved session. It says it is back instead of greeting, and when
 * the caller says only the number, it looks the order up: the dialog continued where it was.
 */
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import llmScriptModule from '../../plugins/llm-script/index.js';
import sttModule from '../../plugins/stt-pocketsphinx/index.js';
import crmModule from '../../plugins/tools-crm/index.js';
import fliteModule from '../../plugins/tts-flite/index.js';
import type { AgentCreateOptions, CallInfo } from '../../src/agents/agent.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { VadBatcher } from '../../src/audio/vad/vad-batcher.js';
import { CallSession } from '../../src/call/call-session.js';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory } from '../../src/call/media-binding.js';
import { AgentConfigSchema } from '../../src/config/schema.js';
import { createConversationAgentFactory, type ConversationObserver } from '../../src/conversation/conversation-agent.js';
import { createConversationMetrics } from '../../src/conversation/metrics.js';
import { ToolRegistry, type ToolOutcome } from '../../src/conversation/tool-runner.js';
import { PhraseCache, Voice } from '../../src/conversation/voice.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import type { LlmProvider, SttProvider, ToolsProvider, TtsProvider } from '../../src/plugins/api.js';
import { newSessionDocument, type SessionDocument } from '../../src/sessions/document.js';
import { openSessionStore, type OpenedSessions } from '../../src/sessions/open.js';
import { SessionKeeper } from '../../src/sessions/session-keeper.js';
import { RtpPeer } from '../support/rtp-peer.js';

const REPO = resolve(import.meta.dirname, '../..');
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `sbtest:restore:${randomUUID()}:`;
const RESUME = "Sorry about that, I'm back. Where were we?";
const pctx = { log: silentLogger, signal: new AbortController().signal, cacheDir: tmpdir(), configDir: REPO };

let model: SileroVadModel;
let batcher: VadBatcher;
let stt: SttProvider;
let tts: TtsProvider;
let llm: LlmProvider;
let crm: ToolsProvider;
let callerVoice: CallerVoice;
let admin: Redis;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  model = await SileroVadModel.load();
  batcher = new VadBatcher(model);
  stt = await sttModule.create(sttModule.manifest.configSchema.parse({ mode: 'lm' }), pctx);
  tts = await fliteModule.create(fliteModule.manifest.configSchema.parse({}), pctx);
  llm = await llmScriptModule.create(llmScriptModule.manifest.configSchema.parse({ scenario: 'scenarios/call-centre.yaml' }), pctx);
  crm = await crmModule.create(crmModule.manifest.configSchema.parse({}), pctx);
  callerVoice = await createCallerVoice(silentLogger, tmpdir());
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
}, 180_000);

afterAll(async () => {
  const keys = (await admin?.keys(`${PREFIX}*`)) ?? [];
  if (keys.length > 0) await admin.del(...keys);
  await admin?.quit();
  batcher?.close();
  await model?.close();
  await Promise.allSettled([stt?.close(), tts?.close(), llm?.close(), crm?.close(), callerVoice?.close()]);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const AGENT = AgentConfigSchema.parse({
  stt: 'stt-pocketsphinx',
  llm: 'llm-script',
  tts: 'tts-flite',
  greeting: "Hello, you're through to Acme customer service. How can I help?",
  tools: ['transfer_call', 'end_call', 'get_order_status', 'change_address', 'create_ticket', 'set_variable'],
  transfer: { operator: { context: 'switchboard-handoff', extension: 'operator' } },
  fallback: { transferTo: 'operator' },
});

interface Said {
  turn: number;
  text: string;
}

/** One "process": its own session store (a new Redis connection) and its own call. */
async function startCall(opts: { resume?: SessionDocument }): Promise<{
  peer: RtpPeer;
  session: CallSession;
  sessions: OpenedSessions;
  keeper: SessionKeeper;
  said: Said[];
  tools: ToolOutcome[];
  heard: string[];
}> {
  const registry = new MetricsRegistry();
  const metrics = createEngineMetrics(registry);
  const sessions = openSessionStore({ redisUrl: REDIS_URL, ttlSeconds: 1800, keyPrefix: PREFIX, timeoutMs: 500, resumePhrase: RESUME }, { log: silentLogger, registry });
  cleanups.push(() => sessions.store.close());
  await sessions.store.ready();
  expect(sessions.store.mode).toBe('up');

  const voice = new Voice({ primary: { name: 'tts-flite', provider: tts }, language: 'en-US', cache: new PhraseCache(), log: silentLogger });
  const pluginTools = new ToolRegistry();
  for (const t of crm.tools) pluginTools.add(t, 'tools-crm');
  const said: Said[] = [];
  const tools: ToolOutcome[] = [];
  const heard: string[] = [];
  const observer: ConversationObserver = {
    callerSaid: (_turn, text) => void heard.push(text),
    agentSaid: (turn, text) => void said.push({ turn, text }),
    toolCalled: (_turn, o) => void tools.push(o),
    failed: () => undefined,
  };
  const factory = createConversationAgentFactory({
    name: 'support',
    config: AGENT,
    stt,
    llm,
    voice,
    pluginTools,
    metrics: createConversationMetrics(registry),
    log: silentLogger,
    observerFor: () => observer,
    resumePhrase: RESUME,
  });
  const mediaFactory = createRtpMediaFactory({ vadSource: batcher, metrics, defaultTurn: AGENT.vad });
  const media = await mediaFactory.openMedia('ulaw', silentLogger);
  cleanups.push(() => media.close());
  const peer = await RtpPeer.open({ remote: media.externalHost, idle: 'silence' });
  cleanups.push(() => peer.close());
  media.setRemote(peer.address.host, peer.address.port);

  const info: CallInfo = { callId: 'restore-call-1', channelId: 'restore-call-1', caller: { number: '+15550100', name: '' }, agentName: 'support', dialed: '100' };
  const doc = opts.resume ?? newSessionDocument({ callId: info.callId, channelId: info.channelId, agentName: 'support', caller: info.caller, dialed: '100' });
  const keeper = new SessionKeeper(sessions.store, doc, silentLogger, sessions.metrics);
  const createOpts: AgentCreateOptions = { session: keeper, ...(opts.resume ? { resume: opts.resume } : {}) };
  const session = new CallSession({
    info,
    media,
    vad: mediaFactory.createVad(media, 'support', AGENT.vad),
    agent: factory.create(info, createOpts),
    log: silentLogger,
    metrics,
    hangupChannel: async () => undefined,
    transferChannel: async () => undefined,
    ...(opts.resume ? { firstTurn: opts.resume.turn } : {}),
  });
  if (opts.resume) for (const [k, v] of Object.entries(opts.resume.variables)) session.variables.set(k, v);
  cleanups.push(() => session.end('failed'));
  peer.start();
  session.start();
  return { peer, session, sessions, keeper, said, tools, heard };
}

async function stored(): Promise<SessionDocument | undefined> {
  const raw = await admin.get(`${PREFIX}restore-call-1`);
  return raw ? (JSON.parse(raw) as SessionDocument) : undefined;
}

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a conversation continued from its saved session', () => {
  it('after "Where is my order?" and a lost process, the restored agent says it is back and takes the order number', { timeout: 180_000 }, async () => {
    // --- the first process ---
    const first = await startCall({});
    await until('the greeting', () => first.said.length > 0);
    await first.peer.waitForQuiet(800, 30_000, 20);
    first.session.variables.set('customer_mood', 'calm');
    await first.peer.say(await callerVoice.render('Where is my order?'));
    await until('the agent to ask for the number', () => first.said.some((s) => /order number/i.test(s.text)));
    await until('the turn to be saved in Redis', async () => {
      const d = await stored();
      return !!d && d.history.some((m) => m.role === 'user') && (d.llm as { current?: string } | undefined)?.current === 'ask_status_order';
    });
    const saved = (await stored())!;
    expect(saved).toMatchObject({ callId: 'restore-call-1', agentName: 'support', phase: 'active', variables: { customer_mood: 'calm' } });
    expect(saved.turn).toBeGreaterThanOrEqual(2);
    expect(saved.history.at(-1)).toMatchObject({ role: 'assistant', content: expect.stringMatching(/order number/i) as string });
    // The process dies: no goodbye, no deletion. (Its media and call object simply go away.)
    await first.peer.close();
    await first.session.end('failed');
    expect(await stored()).toBeDefined();

    // --- the restarted process: a new store, the session read back, a new call object ---
    const probe = openSessionStore({ redisUrl: REDIS_URL, ttlSeconds: 1800, keyPrefix: PREFIX, timeoutMs: 500, resumePhrase: RESUME }, { log: silentLogger, registry: new MetricsRegistry() });
    cleanups.push(() => probe.store.close());
    await probe.store.ready();
    const resume = await probe.store.get('restore-call-1');
    expect(resume).toEqual(saved);

    const second = await startCall({ resume });
    await until('the back-again phrase', () => second.said.some((s) => s.text === RESUME));
    expect(second.said.map((s) => s.text)).not.toContain(AGENT.greeting); // no second greeting
    expect(second.said[0]!.turn).toBe(saved.turn + 1); // turn numbering goes on
    expect(second.session.variables.get('customer_mood')).toBe('calm');
    await second.peer.waitForQuiet(800, 30_000, 20);
    await second.peer.say(await callerVoice.render('Three zero five five two.'));
    await until('the order lookup', () => second.tools.some((t) => t.call.name === 'get_order_status'), 60_000);
    const lookup = second.tools.find((t) => t.call.name === 'get_order_status')!;
    expect(lookup.call.arguments).toEqual({ order_id: '30552' });
    expect(lookup.result.ok).toBe(true);
    await until('the status to be told', () => second.said.some((s) => /out for delivery/i.test(s.text)));
    // And the continued conversation is saved in turn: the old history, the phrase, the lookup.
    await until('the new turn to be saved', async () => ((await stored())?.turn ?? 0) > saved.turn + 1);
    const after = (await stored())!;
    expect(after.history.slice(0, saved.history.length)).toEqual(saved.history);
    expect(after.history).toContainEqual({ role: 'assistant', content: RESUME });
    expect(after.history.some((m) => m.role === 'tool' && m.name === 'get_order_status')).toBe(true);
    expect(after.createdAt).toBe(saved.createdAt);

    // The call ends normally: its session is deleted.
    await second.keeper.discard();
    expect(await stored()).toBeUndefined();
  });
});
