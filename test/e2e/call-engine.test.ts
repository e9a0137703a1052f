/**
 * The call engine end to end: a real Asterisk 22 (sandbox), SIPp as the caller, Switchboard
 * in-process with the built-in echo agent.
 *
 * SIPp's SDP names a UDP socket owned by this test, so everything Asterisk sends to the caller
 * (the agent's audio) lands here with a performance.now() arrival stamp: the same clock the
 * engine stamps its own events with, so "no agent audio after the barge-in decision" is checked
 * on what the caller actually received.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startSwitchboard, type RunningSwitchboard } from '../../src/app.js';
import type { CallSummary } from '../../src/call/call-session.js';
import { encodeWav } from '../../src/audio/wav.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { pbxDown, pbxUp } from '../../src/pbx/instance.js';
import { useSandbox } from '../support/pbx.js';
import { SIPP_FIXTURES, makeSpeechWav, runSipp } from '../support/sipp.js';
import { composeClip } from '../support/speech.js';

const INSTANCE = 'engine';
const sandbox = useSandbox(INSTANCE);

interface Received {
  at: number;
  seq: number;
  marker: boolean;
}

async function rtpSink(): Promise<{ socket: Socket; port: number; packets: Received[] }> {
  const socket = createSocket('udp4');
  const packets: Received[] = [];
  socket.on('message', (m) => {
    if (m.length >= 12 && m[0]! >> 6 === 2) packets.push({ at: performance.now(), seq: m.readUInt16BE(2), marker: (m[1]! & 0x80) !== 0 });
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port, packets };
}

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('call engine through the sandbox PBX (echo agent)', () => {
  let sb: RunningSwitchboard;
  let work: string;
  const summaries: CallSummary[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'switchboard-engine-'));
    const c = sandbox().connection;
    sb = await startSwitchboard({
      ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
      logger: process.env.E2E_LOG ? createLogger({ level: process.env.E2E_LOG }) : silentLogger,
      ariTimeoutMs: 20_000,
      onCallEnded: (s) => summaries.push(s),
    });
  }, 120_000);

  afterAll(async () => {
    await sb?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  async function expectNoLeaks(): Promise<void> {
    await waitFor('all calls to end', () => sb.controller.activeCalls === 0);
    expect(await sb.ari.listChannels()).toEqual([]);
    expect(await sb.ari.listBridges()).toEqual([]);
    expect(sb.openEndpoints()).toBe(0);
    expect(sb.clockListeners()).toBe(0);
  }

  function sipTarget(): { host: string; port: number } {
    return { host: '127.0.0.1', port: sandbox().ports.sip };
  }

  test('answers, bridges ExternalMedia, segments the turn and plays the utterance back (ulaw)', async () => {
    const wav = await makeSpeechWav('Hello, I would like to check the status of my order please.', join(work, 'order.wav'));
    const sink = await rtpSink();
    const before = summaries.length;
    try {
      const res = await runSipp({ ...sipTarget(), extension: '100', audio: wav, sdpMediaPort: sink.port, callDurationMs: 8000 });
      expect(res.ok, res.errors).toBe(true);
      await waitFor('the call summary', () => summaries.length > before);
    } finally {
      sink.socket.close();
    }
    const s = summaries[summaries.length - 1]!;
    expect(s.outcome).toBe('caller_hangup');
    expect(s.info.agentName).toBe('echo');
    expect(s.turns).toHaveLength(1);
    // Wire latency includes the end-of-turn silence window; an echo cannot answer sooner.
    expect(s.turns[0]!.latencyMs).toBeGreaterThanOrEqual(600);
    // What came back is the utterance: ~3.5 s of 20 ms packets, in sequence. (The caller's
    // RTP is Asterisk's own stream on the SIP leg; our marker bits are checked at the RTP edge.)
    expect(sink.packets.length).toBeGreaterThan(120);
    expect(sink.packets.length).toBeLessThan(260);
    for (let i = 1; i < sink.packets.length; i++) expect((sink.packets[i]!.seq - sink.packets[i - 1]!.seq) & 0xffff).toBe(1);
    const m = await (await fetch(`${sb.httpUrl}/metrics`)).text();
    expect(m).toMatch(/switchboard_turn_latency_ms_count [1-9]/);
    expect(m).toMatch(/switchboard_calls_total\{outcome="caller_hangup"\} [1-9]/);
    await expectNoLeaks();
  }, 60_000);

  test('barge-in: the caller talks over the echo and the agent stops at once', async () => {
    // A (long), a pause long enough to end the turn, then B while the echo of A is playing.
    const clip = await composeClip(8000, [
      { kind: 'speech', text: 'I need to change the delivery address for my order, it is going to the wrong street.' },
      { kind: 'silence', ms: 1000 },
      { kind: 'speech', text: 'No wait, stop, I want to talk to someone.' },
      { kind: 'silence', ms: 2500 },
    ]);
    const wavPath = join(work, 'barge.wav');
    await writeFile(wavPath, encodeWav(clip.frame));
    const sink = await rtpSink();
    const before = summaries.length;
    try {
      const res = await runSipp({ ...sipTarget(), extension: '100', audio: wavPath, sdpMediaPort: sink.port, callDurationMs: (clip.frame.samples.length / 8) + 3000 });
      expect(res.ok, res.errors).toBe(true);
      await waitFor('the call summary', () => summaries.length > before);
    } finally {
      sink.socket.close();
    }
    const s = summaries[summaries.length - 1]!;
    expect(s.bargeIns.length).toBeGreaterThanOrEqual(1);
    const b = s.bargeIns[0]!;
    // Only part of the echo of A went out before the caller cut in.
    expect(b.playedMs).toBeGreaterThan(0);
    expect(b.droppedMs).toBeGreaterThan(0);
    expect(b.speechOnsetAt).toBeLessThan(b.decidedAt);
    // On the caller's side: nothing of the cut reply arrives more than one frame (plus
    // Asterisk's forwarding) after the decision, until the echo of B starts much later.
    const late = sink.packets.filter((p) => p.at > b.decidedAt + 20 + 60 && p.at < b.decidedAt + 400);
    expect(late).toEqual([]);
    // The echo of B is its own talkspurt: the turn after the barge-in was answered.
    expect(s.turns.length).toBeGreaterThanOrEqual(2);
    await expectNoLeaks();
  }, 90_000);

  test.each(['alaw', 'slin16'] as const)('ExternalMedia in %s: the echo reaches the caller', async (format) => {
    const c = sandbox().connection;
    // A second Switchboard on the same app would replace the first: pause it for this call.
    await sb.stop();
    const other = await startSwitchboard({
      ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
      logger: silentLogger,
      format,
      onCallEnded: (s) => summaries.push(s),
    });
    const sink = await rtpSink();
    const before = summaries.length;
    try {
      const wav = await makeSpeechWav('Please tell me where my parcel is.', join(work, `fmt-${format}.wav`));
      const res = await runSipp({ ...sipTarget(), extension: '100', audio: wav, sdpMediaPort: sink.port, callDurationMs: 7000 });
      expect(res.ok, res.errors).toBe(true);
      await waitFor('the call summary', () => summaries.length > before);
      expect(summaries[summaries.length - 1]!.turns).toHaveLength(1);
      expect(sink.packets.length).toBeGreaterThan(60);
    } finally {
      sink.socket.close();
      await other.stop();
      sb = await startSwitchboard({
        ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
        logger: silentLogger,
        onCallEnded: (s) => summaries.push(s),
      });
    }
  }, 60_000);

  test('DTMF from the caller reaches the session', async () => {
    const wav = await makeSpeechWav('Press four, two, then pound.', join(work, 'dtmf.wav'));
    const before = summaries.length;
    const res = await runSipp({
      ...sipTarget(),
      extension: '100',
      audio: wav,
      callDurationMs: 2000,
      scenario: join(SIPP_FIXTURES, 'uac-stream-dtmf.xml'),
    });
    expect(res.ok, res.errors).toBe(true);
    await waitFor('the call summary', () => summaries.length > before);
    expect(summaries[summaries.length - 1]!.dtmf).toEqual(['4', '2', '#']);
    await expectNoLeaks();
  }, 60_000);

  test('callers who hang up at once or cancel during setup leave nothing behind', async () => {
    const wav = await makeSpeechWav('Bye.', join(work, 'bye.wav'));
    // BYE right after the ACK: races the ExternalMedia/bridge setup.
    const quick = await runSipp({ ...sipTarget(), extension: '100', audio: wav, calls: 6, rate: 6, callDurationMs: 0 });
    expect(quick.successful + quick.failed).toBe(6);
    // CANCEL before the answer: the channel is gone while the controller answers it.
    const cancel = await runSipp({ ...sipTarget(), extension: '100', calls: 4, rate: 4, scenario: join(SIPP_FIXTURES, 'uac-cancel.xml') });
    expect(cancel.successful, cancel.errors).toBe(4);
    await expectNoLeaks();
    const m = await (await fetch(`${sb.httpUrl}/metrics`)).text();
    expect(m).not.toMatch(/switchboard_call_setup_failures_total\{/);
  }, 90_000);

  test('survives an Asterisk restart: reconnects and takes the next call', async () => {
    const h = sandbox();
    const states: string[] = [];
    const off = sb.ari.onStateChange((s) => states.push(s));
    try {
      await pbxDown({ instance: INSTANCE });
      await waitFor('ARI to notice', () => sb.ari.state !== 'connected', 20_000);
      await pbxUp({
        instance: INSTANCE,
        sipPort: h.ports.sip,
        httpPort: h.ports.http,
        amiPort: h.ports.ami,
        rtpStart: h.ports.rtpStart,
        rtpEnd: h.ports.rtpEnd,
      });
      await waitFor('ARI to reconnect', () => sb.ari.state === 'connected', 60_000);
    } finally {
      off();
    }
    expect(states).toContain('reconnecting');
    const wav = await makeSpeechWav('Are you still there?', join(work, 'after.wav'));
    const before = summaries.length;
    const res = await runSipp({ ...sipTarget(), extension: '100', audio: wav, callDurationMs: 4000 });
    expect(res.ok, res.errors).toBe(true);
    await waitFor('the call summary', () => summaries.length > before);
    expect(summaries[summaries.length - 1]!.turns.length).toBe(1);
    await expectNoLeaks();
  }, 180_000);
});

