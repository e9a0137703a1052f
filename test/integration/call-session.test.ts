/**
 * CallSession with real parts and no PBX: the RTP endpoint and silence synthesis from
 * media-binding.ts on the shared media clock, the real Silero model behind a VadBatcher, the
 * engine's Prometheus metrics, and a raw UDP socket (test/support/rtp-peer.ts) standing in
 * for Asterisk's ExternalMedia leg, sending espeak-ng speech as G.711 RTP in real time.
 *
 * Wall-clock bounds are generous (this runs on a shared 2-core box); tight claims are made
 * only on figures the engine records itself, on counts, on orderings and on audio content
 * (G.711 round trips are exact, so what the peer hears can be compared sample for sample).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmsDbfs, type AudioFrame } from '../../src/audio/frame.js';
import { ulawDecode, ulawEncode } from '../../src/audio/g711.js';
import { resampleFrame } from '../../src/audio/resampler.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import type { TurnDetectorConfig } from '../../src/audio/vad/turn-detector.js';
import { VadBatcher } from '../../src/audio/vad/vad-batcher.js';
import type { Agent, CallContext, CallInfo, CallerTurn, PlayResult, TurnContext } from '../../src/agents/agent.js';
import { echoAgentFactory } from '../../src/agents/echo.js';
import { CallSession, type CallSessionDeps } from '../../src/call/call-session.js';
import type { OpenedMedia } from '../../src/call/call-controller.js';
import { createEngineMetrics, type EngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory, type MediaThread, type RtpMediaFactory } from '../../src/call/media-binding.js';
import type { SessionVad, VadEvent } from '../../src/call/session-ports.js';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { sharedMediaClock } from '../../src/rtp/media-clock.js';
import { bindUdp } from '../../src/rtp/udp-bind.js';
import { RtpPeer, type ReceivedRtp } from '../support/rtp-peer.js';
import { composeClip, type ComposedClip } from '../support/speech.js';

const RATE = 8000;
const SPF = 160;
const END_OF_TURN_MS = 600;
const MIN_SPEECH_MS = 96;

let model: SileroVadModel;
let batcher: VadBatcher;

beforeAll(async () => {
  model = await SileroVadModel.load();
  batcher = new VadBatcher(model);
});

afterAll(async () => {
  batcher?.close();
  await model?.close();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

// --- helpers -----------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; settled: () => boolean } {
  let done = false;
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = (v) => {
      done = true;
      r(v);
    };
  });
  return { promise, resolve, settled: () => done };
}

/** A sine tone at 8 kHz. */
function tone(freqHz: number, ms: number, amplitude = 8000): AudioFrame {
  const n = Math.round((RATE * ms) / 1000);
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) samples[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freqHz * i) / RATE));
  return { samples, sampleRate: RATE };
}

/** What a G.711 receiver decodes from `frame`, 20 ms packet by packet. */
function ulawPackets(frame: AudioFrame): Int16Array[] {
  const out: Int16Array[] = [];
  for (let off = 0; off < frame.samples.length; off += SPF) {
    const chunk = new Int16Array(SPF);
    chunk.set(frame.samples.subarray(off, off + SPF));
    out.push(ulawDecode(ulawEncode(chunk)));
  }
  return out;
}

const samePcm = (a: Int16Array, b: Int16Array | undefined): boolean => b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** Ticks the shared media clock had skipped (after a stall) when the current test began. */
let skippedTicksAtStart = 0;
/** Where the endpoints run: every test runs in-thread and on the media worker (describe.each below). */
let mediaThread: MediaThread = 'main';

/**
 * The RTP header rules of one talkspurt: one SSRC, seq +1, marker on the first packet only,
 * timestamp +160 per packet (the pacer ties timestamps to the clock, so only if the shared
 * clock had to skip ticks after a stall may a step be a larger multiple of 160).
 */
function expectOneTalkspurt(packets: readonly ReceivedRtp[]): void {
  expect(packets.length).toBeGreaterThan(0);
  // (The worker's clock reports skipped ticks only every few seconds: there, allow for them.)
  const exactTimestamps = mediaThread === 'main' && sharedMediaClock.stats.skippedTicks === skippedTicksAtStart;
  const first = packets[0]!;
  packets.forEach((p, i) => {
    expect(p.payloadType).toBe(0);
    expect(p.ssrc).toBe(first.ssrc);
    expect(p.marker, `marker on packet ${i}`).toBe(i === 0);
    expect(p.sequenceNumber).toBe((first.sequenceNumber + i) & 0xffff);
    expect(p.pcm.length).toBe(SPF);
    if (i === 0) return;
    const step = (p.timestamp - packets[i - 1]!.timestamp) >>> 0;
    if (exactTimestamps) expect(step, `timestamp step before packet ${i}`).toBe(SPF);
    else expect(step > 0 && step % SPF === 0 && step < 50 * SPF, `timestamp step ${step} before packet ${i}`).toBe(true);
  });
}

interface ObservedVad {
  event: VadEvent;
  /** Session state and media state right after the session handled the event. */
  state: string;
  busy: boolean;
}

interface Call {
  session: CallSession;
  peer: RtpPeer;
  media: OpenedMedia;
  vad: SessionVad;
  factory: RtpMediaFactory;
  metrics: EngineMetrics;
  registry: MetricsRegistry;
  info: CallInfo;
  hangups: string[];
  vadEvents: ObservedVad[];
}

interface CallOptions {
  idle?: 'silence' | 'none';
  turn?: Partial<TurnDetectorConfig>;
  deps?: Partial<Pick<CallSessionDeps, 'uninterruptibleGraceMs' | 'bargeIn'>>;
  /** Call session.start() (default true). */
  start?: boolean;
}

/**
 * Open a real endpoint + VAD through the media factory, a peer that streams into it, and a
 * session around `agent`. Everything is torn down after the test (session first).
 */
async function startCall(agent: Agent, opts: CallOptions = {}): Promise<Call> {
  skippedTicksAtStart = sharedMediaClock.stats.skippedTicks;
  const registry = new MetricsRegistry();
  const metrics = createEngineMetrics(registry);
  const factory = createRtpMediaFactory({ vadSource: batcher, metrics, mediaThread, defaultTurn: { endOfTurnSilenceMs: END_OF_TURN_MS, minSpeechMs: MIN_SPEECH_MS, ...opts.turn } });
  cleanups.push(() => factory.close());
  const media = await factory.openMedia('ulaw', silentLogger);
  cleanups.push(() => media.close());
  const peer = await RtpPeer.open({ remote: media.externalHost, idle: opts.idle ?? 'silence' });
  cleanups.push(() => peer.close());
  // As the controller does with UNICASTRTP_LOCAL_ADDRESS/PORT: output may start before input.
  media.setRemote(peer.address.host, peer.address.port);
  const vad = factory.createVad(media, 'test');
  const info: CallInfo = { callId: 'call-1', channelId: 'call-1', caller: { number: '1001', name: 'Alice' }, dialed: '100', agentName: 'test-agent' };
  const hangups: string[] = [];
  const session = new CallSession({
    info,
    media,
    vad,
    agent,
    log: silentLogger,
    metrics,
    hangupChannel: async (reason) => {
      hangups.push(reason);
    },
    transferChannel: async (target, reason) => {
      hangups.push(`transfer:${target.context}/${target.extension}:${reason}`);
    },
    ...opts.deps,
  });
  cleanups.push(async () => {
    await session.end('completed');
  });
  // Asterisk streams RTP from the moment the ExternalMedia channel is up.
  if ((opts.idle ?? 'silence') === 'silence') peer.start();
  const vadEvents: ObservedVad[] = [];
  // Registered after the session's own handler, so it sees the state the session left.
  vad.onEvent((event) => vadEvents.push({ event, state: session.state.state, busy: media.busy }));
  if (opts.start ?? true) session.start();
  return { session, peer, media, vad, factory, metrics, registry, info, hangups, vadEvents };
}

/** Speech preceded by silence (so the pre-roll is real audio), as one clip. */
function utterance(text: string, leadMs = 500): Promise<ComposedClip> {
  return composeClip(RATE, [
    { kind: 'silence', ms: leadMs },
    { kind: 'speech', text },
  ]);
}

/** Index in `peer.sent` of the packet carrying clip time `ms` of utterance `u`. */
function sentIndex(peer: RtpPeer, u: number, ms: number): number {
  const first = peer.sent.findIndex((s) => s.utterance === u);
  expect(first).toBeGreaterThanOrEqual(0);
  return first + Math.floor(ms / 20);
}

/**
 * Locate the received packets in what the peer sent: returns the index in `peer.sent` of the
 * packet whose audio came back first, after checking every received packet is the next sent
 * packet's exact audio (the echo is the caller's own packets, in order, none missing). With
 * `syntheticTail`, packets past the last one sent must be digital silence: the silence the
 * engine synthesised for a caller who stopped sending.
 */
function alignEcho(peer: RtpPeer, received: readonly ReceivedRtp[], syntheticTail = false): number {
  const probe = received.findIndex((p) => rmsDbfs(p.pcm) > -50);
  expect(probe, 'echo has sound in it').toBeGreaterThanOrEqual(0);
  const matches = peer.sent.map((s, i) => (samePcm(received[probe]!.pcm, s.pcm) ? i : -1)).filter((i) => i >= 0);
  expect(matches.length, 'a voiced echo packet matches exactly one sent packet').toBe(1);
  const offset = matches[0]! - probe;
  expect(offset).toBeGreaterThanOrEqual(0);
  received.forEach((p, i) => {
    const sent = peer.sent[offset + i];
    if (sent === undefined && syntheticTail) expect(p.pcm.every((v) => v === 0), `echo packet ${i} is synthesised silence`).toBe(true);
    else expect(samePcm(p.pcm, sent?.pcm), `echo packet ${i} is sent packet ${offset + i}`).toBe(true);
  });
  return offset;
}

// --- tests -------------------------------------------------------------------------------

describe.each(['main', 'worker'] as const)('CallSession over a real RTP endpoint with Silero VAD (media on the %s thread)', (thread) => {
  beforeAll(() => {
    mediaThread = thread;
  });

  it('(a) echo: one utterance then silence gives one turn, and the caller hears the utterance back', { timeout: 40_000 }, async () => {
    const turnsDone: number[] = [];
    const echo = echoAgentFactory.create({ callId: 'x', channelId: 'x', caller: { number: '', name: '' }, agentName: 'echo' });
    // The real echo agent, observed from outside.
    const agent: Agent = {
      onTurn: async (input, ctx) => {
        await echo.onTurn(input, ctx);
        turnsDone.push(input.turn);
      },
    };
    const call = await startCall(agent);
    const { peer, session, metrics } = call;
    const clip = await utterance('I would like to check the status of my order.');
    const said = await peer.say(clip.frame);
    expect(said.completed).toBe(true);

    await waitUntil(() => turnsDone.length === 1, 15_000, 'the echo turn to finish');
    await peer.waitForQuiet(300, 5000);
    expect(session.state.state).toBe('listening');

    // One turn, one talkspurt back, RTP headers by the book.
    expect(call.vadEvents.map((o) => o.event.type)).toEqual(['speech_start', 'speech_end']);
    // The echo agent plays at once, so by the time the end-of-turn handler returns the
    // session has gone listening -> thinking -> speaking.
    expect(call.vadEvents.map((o) => o.state)).toEqual(['listening', 'speaking']);
    const rx = peer.received;
    expectOneTalkspurt(rx);

    // It is the caller's own audio, exactly, and covers the whole utterance: at most the
    // pre-roll (300 ms) before the voice and the tail (120 ms) plus VAD slack after it.
    const offset = alignEcho(peer, rx);
    const voice = clip.speech[0]!;
    const firstVoiced = sentIndex(peer, said.utterance, voice.startMs);
    const lastVoiced = sentIndex(peer, said.utterance, voice.endMs - 1);
    expect(offset).toBeLessThanOrEqual(firstVoiced);
    expect(offset + rx.length - 1).toBeGreaterThanOrEqual(lastVoiced);
    const voiceMs = voice.endMs - voice.startMs;
    const echoMs = rx.length * 20;
    expect(echoMs).toBeGreaterThanOrEqual(voiceMs);
    expect(echoMs).toBeLessThanOrEqual(voiceMs + 300 + 120 + 200);
    expect(rmsDbfs(peer.receivedPcm())).toBeGreaterThan(-35);

    // Turn latency, as the engine recorded it, is consistent with what the peer saw.
    expect(session.timings.turns).toHaveLength(1);
    const t = session.timings.turns[0]!;
    expect(t.turn).toBe(1);
    // The window holding the last voiced sample may end up to a packet into the silence.
    expect(t.endOfTurnDecidedAt - t.callerLastSpeechAt).toBeGreaterThanOrEqual(END_OF_TURN_MS - 20);
    expect(t.latencyMs).toBeGreaterThanOrEqual(END_OF_TURN_MS - 20);
    expect(t.agentFirstAudioAt).toBeGreaterThanOrEqual(t.endOfTurnDecidedAt);
    expect(t.latencyMs).toBeCloseTo(t.agentFirstAudioAt - t.callerLastSpeechAt, 9);
    // The last speech packet was one the peer sent while voiced; the reply arrived after it left.
    expect(t.callerLastSpeechAt).toBeGreaterThan(peer.sent[firstVoiced]!.at);
    expect(t.callerLastSpeechAt).toBeLessThan(said.lastSentAt! + 500);
    expect(rx[0]!.at).toBeGreaterThanOrEqual(t.agentFirstAudioAt);
    expect(rx[0]!.at - t.agentFirstAudioAt).toBeLessThan(250);

    expect(metrics.vadSpeechStarts.get()).toBe(1);
    expect(metrics.vadSpeechEnds.get()).toBe(1);
    expect(metrics.turnLatency.quantile(0.5)).toBe(t.latencyMs);
    expect(metrics.agentErrors.get({ agent: 'test-agent' })).toBe(0);

    // Every packet either way is accounted for once the call ends.
    peer.stop();
    await sleep(60);
    const summary = await session.end('caller_hangup');
    expect(summary.turns).toEqual(session.timings.turns);
    expect(summary.timeInStates.speaking).toBeGreaterThan(0);
    expect(metrics.rtpPacketsIn.get()).toBe(peer.sent.length);
    expect(metrics.rtpPacketsOut.get()).toBe(rx.length);
    expect(metrics.rtpConcealed.get()).toBe(0);
    expect(metrics.vadWindows.get()).toBeGreaterThan(0);
  });

  it('(b) a caller who stops sending RTP after speaking still gets an end of turn (synthesised silence)', { timeout: 40_000 }, async () => {
    const echo = echoAgentFactory.create({ callId: 'x', channelId: 'x', caller: { number: '', name: '' }, agentName: 'echo' });
    const played: number[] = [];
    const agent: Agent = {
      onTurn: async (input, ctx) => {
        await echo.onTurn(input, ctx);
        played.push(input.turn);
      },
    };
    const call = await startCall(agent, { idle: 'none' });
    const { peer, session, metrics } = call;
    const clip = await utterance('Can you book a table for two tonight?');
    const said = await peer.say(clip.frame);
    const stoppedAt = performance.now();
    peer.stop(); // nothing more from the caller: no silence packets, no comfort noise
    const sentBySpeaker = peer.sent.length;

    await waitUntil(() => played.length === 1, 15_000, 'the turn to end without inbound packets');
    await peer.waitForQuiet(300, 5000);
    expect(peer.sent.length).toBe(sentBySpeaker);
    expect(metrics.vadSpeechEnds.get()).toBe(1);
    expect(session.timings.turns).toHaveLength(1);
    const t = session.timings.turns[0]!;
    // The last speech packet is a real one; the decision came from synthesised silence after it.
    expect(t.callerLastSpeechAt).toBeLessThanOrEqual(said.lastSentAt! + 250);
    expect(t.endOfTurnDecidedAt - t.callerLastSpeechAt).toBeGreaterThanOrEqual(END_OF_TURN_MS - 20);
    expectOneTalkspurt(peer.received);
    const offset = alignEcho(peer, peer.received, true);
    // The echo reaches the caller's last real packet (the clip ends with its speech); any
    // tail past it would be synthesised silence, which starts only 200 ms after the last packet.
    expect(offset + peer.received.length).toBeGreaterThanOrEqual(sentBySpeaker);

    const summary = await session.end('caller_hangup');
    const elapsedMs = performance.now() - stoppedAt;
    expect(summary.turns).toHaveLength(1);
    // Counted when the media closes: at least the end-of-turn window, at most real time.
    const synthetic = metrics.syntheticSilence.get();
    expect(synthetic).toBeGreaterThanOrEqual((END_OF_TURN_MS - 20) / 20);
    expect(synthetic).toBeLessThanOrEqual(elapsedMs / 20 + 2);
    expect(metrics.rtpPacketsIn.get()).toBe(sentBySpeaker);
  });

  it('(c) barge-in: the caller talks over a long prompt; output stops within a frame, the turn is aborted, uninterruptible work completes', { timeout: 40_000 }, async () => {
    const PROMPT_MS = 5000;
    const prompt = tone(440, PROMPT_MS);
    const bargedIn = deferred();
    const effects: { turnAborted: boolean; callSignalAborted: boolean; at: number }[] = [];
    let booking: Promise<string> | undefined;
    let greeting: { result: PlayResult; signal: AbortSignal } | undefined;
    const callerTurns: CallerTurn[] = [];
    const agent: Agent = {
      async onCallStart(ctx) {
        // A side effect that must survive the interruption, still running when it happens.
        booking = ctx.uninterruptible(async (callSignal) => {
          await bargedIn.promise;
          await sleep(50);
          effects.push({ turnAborted: ctx.signal.aborted, callSignalAborted: callSignal.aborted, at: performance.now() });
          return 'booked';
        });
        const result = await ctx.play(prompt, ctx.signal);
        greeting = { result, signal: ctx.signal };
      },
      async onTurn(input) {
        callerTurns.push(input); // says nothing: anything the peer hears later is stale prompt
      },
    };
    const call = await startCall(agent);
    const { peer, session, metrics } = call;
    call.vad.onEvent((e) => {
      if (e.type === 'speech_start') bargedIn.resolve();
    });
    expect(session.state.state).toBe('speaking');

    // The caller listens to ~0.8 s of the prompt, then talks over it.
    await peer.waitFor(() => peer.received.length >= 40, 5000, '0.8 s of prompt');
    const clip = await composeClip(RATE, [{ kind: 'speech', text: 'Stop, I want to talk to a person.' }]);
    void peer.say(clip.frame);

    await waitUntil(() => session.timings.bargeIns.length === 1, 10_000, 'barge-in');
    await waitUntil(() => callerTurns.length === 1, 15_000, "the caller's turn");
    await waitUntil(() => greeting !== undefined && effects.length === 1, 5000, 'the greeting turn to unwind');
    await sleep(300);

    // The engine's own record.
    const b = session.timings.bargeIns[0]!;
    expect(b.turn).toBe(1);
    expect(b.stopAfterDecisionMs).toBeLessThanOrEqual(20 + 5);
    // ...and output was still running right up to the decision (a wide margin for a busy box).
    expect(b.stopAfterDecisionMs).toBeGreaterThan(-200);
    // Measured from the onset on the wire (before the decision), so it includes minSpeechMs.
    expect(b.reactionMs).toBeGreaterThan(0);
    expect(b.decidedAt).toBeGreaterThan(b.speechOnsetAt);
    expect(b.reactionMs).toBeLessThan(600);
    expect(b.playedMs).toBeGreaterThanOrEqual(800);
    expect(b.playedMs).toBeLessThan(PROMPT_MS);
    expect(b.playedMs + b.droppedMs).toBe(PROMPT_MS);

    // What the caller actually heard: exactly the prompt's first packets, in order, then nothing.
    const rx = peer.received;
    expectOneTalkspurt(rx);
    const expected = ulawPackets(prompt);
    rx.forEach((p, i) => expect(samePcm(p.pcm, expected[i]), `packet ${i} is prompt packet ${i}`).toBe(true));
    expect(rx.length * 20).toBe(b.playedMs);
    expect(rx[rx.length - 1]!.at).toBeLessThanOrEqual(b.agentLastAudioAt + 150);

    // The greeting's turn was aborted by the barge-in; the call goes on.
    expect(greeting!.signal.aborted).toBe(true);
    expect((greeting!.signal.reason as Error).message).toBe('barge-in');
    expect(greeting!.result).toEqual({ completed: false, playedMs: b.playedMs, droppedMs: b.droppedMs });
    expect(session.signal.aborted).toBe(false);
    expect(session.isEnded).toBe(false);

    // The session went back to listening at the decision, then took the caller's turn.
    const starts = call.vadEvents.filter((o) => o.event.type === 'speech_start');
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ state: 'listening', busy: false });
    expect((starts[0]!.event as Extract<VadEvent, { type: 'speech_start' }>).decidedAt).toBe(b.decidedAt);
    expect(call.vadEvents.map((o) => o.state)).toEqual(['listening', 'thinking']);
    expect(session.state.state).toBe('listening');
    expect(callerTurns[0]!.turn).toBe(2);
    expect(callerTurns[0]!.audio.samples.length).toBeGreaterThan(RATE / 2);
    // Nobody answered turn 2, so it has no latency figure.
    expect(session.timings.turns).toEqual([]);

    // The uninterruptible booking finished after the abort, unaffected by it.
    await expect(booking).resolves.toBe('booked');
    expect(effects).toEqual([{ turnAborted: true, callSignalAborted: false, at: expect.any(Number) as number }]);
    expect(effects[0]!.at).toBeGreaterThan(b.decidedAt);

    expect(metrics.bargeIns.get()).toBe(1);
    expect(metrics.bargeInReaction.quantile(0.5)).toBe(b.reactionMs);
  });

  it('(c2) with barge-in disabled the prompt plays to the end over the caller', { timeout: 40_000 }, async () => {
    const PROMPT_MS = 2000;
    const prompt = tone(440, PROMPT_MS);
    let result: PlayResult | undefined;
    const agent: Agent = {
      async onCallStart(ctx) {
        result = await ctx.play(prompt, ctx.signal);
      },
      async onTurn() {},
    };
    const call = await startCall(agent, { deps: { bargeIn: { enabled: false } } });
    const { peer, session } = call;
    await peer.waitFor(() => peer.received.length >= 10, 5000, 'prompt start');
    void peer.say((await composeClip(RATE, [{ kind: 'speech', text: 'Hello? Hello?' }])).frame);
    await waitUntil(() => result !== undefined, 10_000, 'the prompt to finish');
    await peer.waitForQuiet(200, 5000);
    expect(call.vadEvents[0]?.event.type).toBe('speech_start');
    expect(result).toEqual({ completed: true, playedMs: PROMPT_MS, droppedMs: 0 });
    expect(session.timings.bargeIns).toEqual([]);
    expect(peer.received).toHaveLength(PROMPT_MS / 20);
  });

  // Streamed replies (TTS providers deliver audio in chunks as it is synthesised).
  async function* chunks(frame: AudioFrame, size: number): AsyncGenerator<AudioFrame> {
    for (let off = 0; off < frame.samples.length; off += size) {
      await new Promise((r) => setImmediate(r));
      yield { samples: frame.samples.slice(off, off + size), sampleRate: frame.sampleRate };
    }
  }

  async function playStreamed(stream: AsyncIterable<AudioFrame>): Promise<{ result: PlayResult; peer: RtpPeer }> {
    let result: PlayResult | undefined;
    const agent: Agent = {
      async onCallStart(ctx) {
        result = await ctx.play(stream, ctx.signal);
      },
      async onTurn() {},
    };
    const { peer } = await startCall(agent);
    await waitUntil(() => result !== undefined, 10_000, 'the streamed reply to finish');
    await peer.waitForQuiet(200, 5000);
    return { result: result!, peer };
  }

  it('(h) a reply streamed in 20 ms chunks at the media rate reaches the caller contiguous', { timeout: 20_000 }, async () => {
    const reply = tone(440, 1000);
    const { result, peer } = await playStreamed(chunks(reply, SPF));
    expect(result).toEqual({ completed: true, playedMs: 1000, droppedMs: 0 });
    expectOneTalkspurt(peer.received);
    const expected = ulawPackets(reply);
    expect(peer.received).toHaveLength(expected.length);
    peer.received.forEach((p, i) => expect(samePcm(p.pcm, expected[i]), `packet ${i}`).toBe(true));
  });

  // Was a bug (fixed): CallSession.play hands every streamed chunk to media.play() as its own
  // pacer utterance, and the pacer pads the last partial 20 ms frame of each utterance with
  // silence. A stream whose chunks are not whole 20 ms frames at the media rate (any TTS
  // chunking, or any chunk after the resampler's look-ahead) gets zeros inserted between
  // chunks: here 100-sample chunks each become a 160-sample packet (37.5% silence).
  it('(h2) a reply streamed in odd-sized chunks reaches the caller contiguous, without inserted silence', { timeout: 20_000 }, async () => {
    const reply = tone(440, 1000);
    const { result, peer } = await playStreamed(chunks(reply, 100));
    expect(result.playedMs).toBe(1000);
    const expected = ulawPackets(reply);
    expect(peer.received).toHaveLength(expected.length);
    peer.received.forEach((p, i) => expect(samePcm(p.pcm, expected[i]), `packet ${i}`).toBe(true));
  });

  // Was a bug (fixed), same cause: 16 kHz TTS in 20 ms chunks. The resampler holds back its
  // look-ahead, so its first output is short of 160 samples and gets padded with zeros.
  it('(h3) a 16 kHz reply streamed in 20 ms chunks is resampled without inserted silence', { timeout: 20_000 }, async () => {
    const n = 16000;
    const samples = new Int16Array(n);
    for (let i = 0; i < n; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 16000));
    const reply16: AudioFrame = { samples, sampleRate: 16000 };
    const { peer } = await playStreamed(chunks(reply16, 320));
    // The resampler promises identical output for any chunking: compare with one shot.
    const expected = ulawPackets(resampleFrame(reply16, RATE));
    expect(peer.received).toHaveLength(expected.length);
    peer.received.forEach((p, i) => expect(samePcm(p.pcm, expected[i]), `packet ${i}`).toBe(true));
  });

  // Was a bug (fixed): barge-in is decided on `media.busy` (audio queued in the pacer) instead of
  // "an agent play is in progress". When a streamed reply stalls (TTS slower than real time,
  // a provider hiccup) the queue is momentarily empty, the caller's speech is not treated as
  // a barge-in, the turn is not aborted, and the rest of the stale reply then plays over the
  // caller. (The session even moves to `listening` while the play is still running.)
  it('(i) barge-in also interrupts a streamed reply whose audio queue ran dry for a moment', { timeout: 30_000 }, async () => {
    const resume = deferred();
    let greeting: { result: PlayResult; signal: AbortSignal } | undefined;
    async function* stalling(): AsyncGenerator<AudioFrame> {
      yield tone(440, 400);
      await resume.promise; // the provider stalls until the caller has started talking
      yield tone(440, 2000);
    }
    const agent: Agent = {
      async onCallStart(ctx) {
        greeting = { result: await ctx.play(stalling(), ctx.signal), signal: ctx.signal };
      },
      async onTurn() {},
    };
    const call = await startCall(agent);
    const { peer, session } = call;
    call.vad.onEvent((e) => {
      if (e.type === 'speech_start') resume.resolve();
    });
    await peer.waitFor(() => peer.received.length >= 20, 5000, 'the first chunk');
    await sleep(200);
    const heardBefore = peer.received.length;
    void peer.say((await composeClip(RATE, [{ kind: 'speech', text: 'Sorry, one moment please.' }])).frame);
    await waitUntil(() => greeting !== undefined, 10_000, 'the streamed greeting to end');
    await sleep(300);
    expect(greeting!.signal.aborted).toBe(true);
    expect(session.timings.bargeIns).toHaveLength(1);
    expect(peer.received.length).toBe(heardBefore);
  });

  it('(d) DTMF reaches agent.onDtmf with the call context; a throwing handler is contained', { timeout: 20_000 }, async () => {
    const digits: { digit: string; ctx: CallContext }[] = [];
    const beep = tone(1000, 200);
    let beepResult: Promise<PlayResult> | undefined;
    const agent: Agent = {
      async onTurn() {},
      onDtmf(digit, ctx) {
        digits.push({ digit, ctx });
        if (digit === '0') throw new Error('operator menu not configured');
        if (digit === '5') beepResult = ctx.play(beep, ctx.signal);
      },
    };
    const call = await startCall(agent);
    const { session, metrics, peer } = call;
    session.dtmf('1');
    expect(() => session.dtmf('0')).not.toThrow();
    session.dtmf('#');
    session.dtmf('5');
    expect(digits.map((d) => d.digit)).toEqual(['1', '0', '#', '5']);
    for (const { ctx } of digits) {
      expect(ctx.call).toEqual(call.info);
      expect(ctx.signal).toBe(session.signal);
    }
    expect(metrics.dtmf.get()).toBe(4);
    // A digit can drive audio: the beep reaches the caller.
    await expect(beepResult).resolves.toEqual({ completed: true, playedMs: 200, droppedMs: 0 });
    await peer.waitFor(() => peer.received.length >= 10, 2000, 'the beep');
    const expected = ulawPackets(beep);
    peer.received.forEach((p, i) => expect(samePcm(p.pcm, expected[i])).toBe(true));

    const summary = await session.end('completed');
    expect(summary.dtmf).toEqual(['1', '0', '#', '5']);
    session.dtmf('9');
    expect(digits).toHaveLength(4);
    expect(metrics.dtmf.get()).toBe(4);
  });

  it('(e) an agent whose onTurn rejects does not end the call; the error is counted and the next turn works', { timeout: 40_000 }, async () => {
    const echo = echoAgentFactory.create({ callId: 'x', channelId: 'x', caller: { number: '', name: '' }, agentName: 'echo' });
    const seen: number[] = [];
    const agent: Agent = {
      async onTurn(input, ctx) {
        seen.push(input.turn);
        if (input.turn === 1) {
          await sleep(10);
          throw new Error('LLM provider returned 500');
        }
        await echo.onTurn(input, ctx);
      },
    };
    const call = await startCall(agent);
    const { peer, session, metrics } = call;
    const clip = await composeClip(RATE, [
      { kind: 'silence', ms: 400 },
      { kind: 'speech', text: 'What time do you open?' },
      { kind: 'silence', ms: 1000 },
    ]);
    const first = await peer.say(clip.frame);
    await waitUntil(() => metrics.agentErrors.get({ agent: 'test-agent' }) === 1, 5000, 'the agent error to be counted');
    expect(seen).toEqual([1]);
    expect(session.isEnded).toBe(false);
    expect(session.signal.aborted).toBe(false);
    expect(call.hangups).toEqual([]);
    expect(session.state.state).toBe('listening');
    expect(peer.received).toEqual([]);

    const second = await peer.say((await composeClip(RATE, [{ kind: 'speech', text: 'And on Sundays?' }])).frame);
    await waitUntil(() => seen.length === 2, 10_000, 'the second turn');
    await peer.waitForQuiet(300, 10_000);
    expect(seen).toEqual([1, 2]);
    expectOneTalkspurt(peer.received);
    const offset = alignEcho(peer, peer.received);
    // Only the second utterance (and silence around it) comes back: no voice of the first.
    const echoed = peer.sent.slice(offset, offset + peer.received.length);
    expect(echoed.some((p) => p.utterance === second.utterance)).toBe(true);
    expect(echoed.filter((p) => p.utterance === first.utterance).every((p) => p.pcm.every((v) => v === 0))).toBe(true);
    expect(metrics.agentErrors.get({ agent: 'test-agent' })).toBe(1);
    expect(session.timings.turns.map((t) => t.turn)).toEqual([2]);
    expect(session.state.state).toBe('listening');
  });

  // Was a bug (fixed): CallSession.runTurn calls `work()` outside any try/promise wrapper, so an
  // agent method that throws synchronously (a plugin whose onTurn returns a Promise but is
  // not `async`) escapes into the VAD event dispatch: it is swallowed there, not counted in
  // agentErrors, not logged, and the call is left in `thinking` with a dangling turn.
  it('(e2) an onTurn that throws synchronously is counted like a rejected one and the session returns to listening', { timeout: 40_000 }, async () => {
    const agent: Agent = {
      onTurn(input: CallerTurn): Promise<void> {
        if (input.turn === 1) throw new Error('not async, throws before returning a promise');
        return Promise.resolve();
      },
    };
    const call = await startCall(agent);
    await call.peer.say((await utterance('What time do you open?', 300)).frame);
    await waitUntil(() => call.vadEvents.length === 2, 10_000, 'end of turn');
    await sleep(100);
    expect(call.metrics.agentErrors.get({ agent: 'test-agent' })).toBe(1);
    expect(call.session.state.state).toBe('listening');
  });

  // Was a bug: session.start() rethrew a synchronous throw, which CallController.setUp turned
  // into a failed call setup. Now it is a failed turn like any other.
  it('(e3) an onCallStart that throws synchronously does not escape session.start()', async () => {
    const agent: Agent = {
      onCallStart(): Promise<void> {
        throw new Error('greeting not configured');
      },
      async onTurn() {},
    };
    const call = await startCall(agent, { start: false });
    expect(() => call.session.start()).not.toThrow();
    await new Promise((r) => setImmediate(r)); // the failure is counted in the turn's rejection handler
    expect(call.metrics.agentErrors.get({ agent: 'test-agent' })).toBe(1);
  });

  it('(f) end(): waits for uninterruptible work, ends once, closes the endpoint, leaves the clock, delivers nothing after', { timeout: 30_000 }, async () => {
    const baselineListeners = mediaThread === 'main' ? sharedMediaClock.listenerCount : 0;
    const work = deferred<string>();
    let workSawCallAbort: boolean | undefined;
    let uninterruptibleResult: Promise<string> | undefined;
    let greeting: { result: PlayResult; signal: AbortSignal } | undefined;
    const order: string[] = [];
    let callEnds = 0;
    let callerFrames = 0;
    let turns = 0;
    let dtmfs = 0;
    const agent: Agent = {
      async onCallStart(ctx) {
        uninterruptibleResult = ctx.uninterruptible(async (callSignal) => {
          const v = await work.promise;
          workSawCallAbort = callSignal.aborted;
          order.push('uninterruptible done');
          return v;
        });
        greeting = { result: await ctx.play(tone(300, 10_000), ctx.signal), signal: ctx.signal };
      },
      onCallerAudio() {
        callerFrames++;
      },
      async onTurn() {
        turns++;
      },
      onDtmf() {
        dtmfs++;
      },
      async onCallEnd() {
        callEnds++;
        order.push('onCallEnd');
      },
    };
    const call = await startCall(agent);
    const { peer, session, factory, media, metrics } = call;
    expect(factory.openEndpoints).toBe(1);
    expect(factory.clockListeners).toBe(baselineListeners + 2); // endpoint + silence filler
    await peer.waitFor(() => peer.received.length >= 10 && callerFrames >= 10, 5000, 'media both ways');
    const port = Number(media.externalHost.split(':').pop());

    const first = session.end('caller_hangup');
    const again = session.end('agent_hangup');
    expect(again).toBe(first);
    expect(session.isEnded).toBe(true);
    expect(session.signal.aborted).toBe(true);
    await sleep(150);
    // Teardown is waiting for the booking: the agent has not been told the call ended.
    expect(callEnds).toBe(0);
    expect(factory.openEndpoints).toBe(1);
    work.resolve('confirmed');
    const summary = await first;
    await expect(uninterruptibleResult).resolves.toBe('confirmed');
    expect(workSawCallAbort).toBe(true); // it saw the call end, and finished anyway
    expect(order).toEqual(['uninterruptible done', 'onCallEnd']);

    expect(summary.outcome).toBe('caller_hangup');
    expect(summary.info).toEqual(call.info);
    expect(summary.durationMs).toBeGreaterThan(150);
    expect(summary.timeInStates.speaking).toBeGreaterThan(0);
    expect(await session.end('completed')).toBe(summary);
    expect(callEnds).toBe(1);
    expect(session.state.state).toBe('ended');
    await waitUntil(() => greeting !== undefined, 2000, 'the greeting to unwind');
    expect(greeting!.signal.aborted).toBe(true);
    expect(greeting!.result.completed).toBe(false);

    // Resources: endpoint closed (its port is free again), clock listeners gone, stats flushed.
    expect(factory.openEndpoints).toBe(0);
    expect(factory.clockListeners).toBe(baselineListeners);
    const rebound = await bindUdp('127.0.0.1', port);
    await new Promise<void>((r) => rebound.close(() => r()));
    expect(metrics.rtpPacketsIn.get()).toBeGreaterThan(0);
    expect(metrics.rtpPacketsOut.get()).toBeGreaterThanOrEqual(10);

    // Nothing reaches the agent any more, whatever the caller does.
    const received = peer.received.length;
    const frames = callerFrames;
    await peer.say((await utterance('Hello? Are you still there?', 100)).frame);
    session.dtmf('7');
    await sleep(800);
    expect(callerFrames).toBe(frames);
    expect(turns).toBe(0);
    expect(dtmfs).toBe(0);
    expect(summary.dtmf).toEqual([]);
    expect(peer.received.length).toBe(received);
    const late = await session.play(tone(500, 100), new AbortController().signal);
    expect(late).toEqual({ completed: false, playedMs: 0, droppedMs: 0 });
  });

  it('(f2) end(): a stuck uninterruptible task holds teardown only for the grace period; a throwing onCallEnd is contained', { timeout: 20_000 }, async () => {
    const GRACE_MS = 200;
    let callEnds = 0;
    const agent: Agent = {
      async onCallStart(ctx) {
        void ctx.uninterruptible(() => new Promise<never>(() => {}));
      },
      async onTurn() {},
      async onCallEnd() {
        callEnds++;
        throw new Error('CRM flush failed');
      },
    };
    const baselineListeners = mediaThread === 'main' ? sharedMediaClock.listenerCount : 0;
    const call = await startCall(agent, { deps: { uninterruptibleGraceMs: GRACE_MS } });
    const t0 = performance.now();
    const summary = await call.session.end('shutdown');
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(GRACE_MS - 10);
    expect(took).toBeLessThan(GRACE_MS + 2000);
    expect(summary.outcome).toBe('shutdown');
    expect(callEnds).toBe(1);
    expect(call.factory.openEndpoints).toBe(0);
    expect(call.factory.clockListeners).toBe(baselineListeners);
  });

  it('(g) the caller resumes while the agent is thinking: that turn is aborted and its stale reply never plays', { timeout: 40_000 }, async () => {
    const THINK_MS = 1200;
    const stale = tone(700, 1000);
    const fresh = tone(350, 600);
    const results = new Map<number, PlayResult>();
    const aborts = new Map<number, string>();
    const agent: Agent = {
      async onTurn(input, ctx: TurnContext) {
        ctx.signal.addEventListener('abort', () => aborts.set(input.turn, (ctx.signal.reason as Error).message), { once: true });
        // "Thinking": an LLM call that ignores the signal, then replies regardless.
        await sleep(THINK_MS);
        results.set(input.turn, await ctx.play(input.turn === 1 ? stale : fresh, ctx.signal));
      },
    };
    const call = await startCall(agent);
    const { peer, session } = call;
    const clip = await composeClip(RATE, [
      { kind: 'silence', ms: 400 },
      { kind: 'speech', text: 'I need to change my address.' },
      { kind: 'silence', ms: END_OF_TURN_MS + 250 },
      { kind: 'speech', text: 'Actually, my phone number too.' },
    ]);
    await peer.say(clip.frame);
    await waitUntil(() => results.size === 2, 15_000, 'both turns to finish');
    await peer.waitForQuiet(300, 5000);

    expect(call.vadEvents.map((o) => `${o.event.type}:${o.state}`)).toEqual([
      'speech_start:listening',
      'speech_end:thinking',
      'speech_start:listening', // the caller resumed: back to listening, turn 1 aborted
      'speech_end:thinking',
    ]);
    expect(aborts.get(1)).toBe('caller resumed speaking');
    expect(aborts.has(2)).toBe(false);
    expect(results.get(1)).toEqual({ completed: false, playedMs: 0, droppedMs: 0 });
    expect(results.get(2)).toEqual({ completed: true, playedMs: 600, droppedMs: 0 });

    // The caller heard the fresh reply only.
    const expected = ulawPackets(fresh);
    expect(peer.received).toHaveLength(expected.length);
    expectOneTalkspurt(peer.received);
    peer.received.forEach((p, i) => expect(samePcm(p.pcm, expected[i]), `packet ${i} is the fresh reply`).toBe(true));
    // Turn 1 never got an answer, so only turn 2 has a latency figure.
    expect(session.timings.turns.map((t) => t.turn)).toEqual([2]);
    expect(session.timings.turns[0]!.latencyMs).toBeGreaterThanOrEqual(END_OF_TURN_MS + THINK_MS - 20);
    expect(session.timings.bargeIns).toEqual([]);
  });
});
