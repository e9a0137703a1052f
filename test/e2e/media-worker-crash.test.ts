/**
 * The media worker dies mid-call: the RTP endpoint of a live call (on the worker thread) is
 * gone, so the caller can neither hear nor be heard. The controller must hand the caller to
 * the humans (the overflow queue in the dialplan) rather than leave dead air or cut them off,
 * release everything of the call, and take the next call on a new worker. A real Asterisk,
 * real SIPp, the real media factory on a worker thread; the worker entry is the real one plus
 * a `test-crash` message (test/support/media-worker-crashable.ts) that ends the thread.
 *
 * SIPp's SDP names a UDP socket owned by this test, so what Asterisk sends the caller (the
 * echo, then the queue's music on hold) lands here.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { echoAgentFactory } from '../../src/agents/echo.js';
import { connectAri } from '../../src/ari/ari-connection.js';
import type { AriConnection } from '../../src/ari/types.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { CallController } from '../../src/call/call-controller.js';
import type { CallSummary } from '../../src/call/call-session.js';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory } from '../../src/call/media-binding.js';
import type { ToMediaWorker } from '../../src/call/media-worker-protocol.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { useSandbox } from '../support/pbx.js';
import { makeSpeechWav, runSipp } from '../support/sipp.js';

const sandbox = useSandbox('mediacrash');
const OVERFLOW = { context: 'switchboard-handoff', extension: 'queue' };

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A UDP socket standing in for SIPp's RTP receiver: arrival times of what Asterisk sends the caller. */
async function rtpSink(): Promise<{ socket: Socket; port: number; arrivals: number[] }> {
  const socket = createSocket('udp4');
  const arrivals: number[] = [];
  socket.on('message', (m) => {
    if (m.length >= 12 && m[0]! >> 6 === 2) arrivals.push(performance.now());
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port, arrivals };
}

describe('media worker crash mid-call', () => {
  let ari: AriConnection;
  let model: SileroVadModel;
  let controller: CallController;
  let work: string;
  const metrics = createEngineMetrics(new MetricsRegistry());
  let media: ReturnType<typeof createRtpMediaFactory>;
  const summaries: CallSummary[] = [];
  const log = process.env.E2E_LOG ? createLogger({ level: process.env.E2E_LOG }) : silentLogger;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'switchboard-mediacrash-'));
    const c = sandbox().connection;
    model = await SileroVadModel.load();
    media = createRtpMediaFactory({
      vadSource: model,
      metrics,
      log,
      mediaThread: 'worker',
      mediaWorkerEntry: new URL('../support/media-worker-crashable.ts', import.meta.url),
    });
    ari = await connectAri({ url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp, logger: silentLogger, initialTimeoutMs: 20_000 });
    controller = new CallController({
      ari,
      media,
      agents: new Map([[echoAgentFactory.name, echoAgentFactory]]),
      defaultAgent: 'echo',
      log,
      metrics,
      overflow: OVERFLOW,
      onCallEnded: (s) => summaries.push(s),
    });
    controller.start();
  }, 120_000);

  afterAll(async () => {
    await controller?.stop();
    await media?.close();
    await ari?.close();
    await model?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  test('the caller of a call whose media worker dies goes to the operator queue, and nothing of the call is left', async () => {
    const wav = await makeSpeechWav('Hello, I would like to check the status of my order please.', join(work, 'order.wav'));
    const sink = await rtpSink();
    try {
      const h = sandbox();
      // The caller stays on the line for 16 s (SIPp hangs up then): long after the crash.
      const call = runSipp({ host: '127.0.0.1', port: h.ports.sip, extension: '100', audio: wav, sdpMediaPort: sink.port, callDurationMs: 16_000 });
      // The call is up and the echo agent is talking back: half a second of it reached the caller.
      await waitFor('the call to be up', () => controller.activeCalls === 1 && media.openEndpoints === 1);
      await waitFor('the echo to reach the caller', () => sink.arrivals.length >= 25, 20_000);
      expect(summaries).toEqual([]);
      const worker = media.mediaWorker!;
      expect(worker.alive).toBe(true);

      // Crash the worker while the echo is playing (an uncaught failure in the media thread).
      worker.post({ type: 'test-crash' } as unknown as ToMediaWorker);
      const crashedAt = performance.now();

      await waitFor('the call summary', () => summaries.length === 1);
      const s = summaries[0]!;
      expect([s.outcome, s.info.agentName]).toEqual(['failed', 'echo']);
      expect(s.turns.length).toBeGreaterThanOrEqual(1); // the echoed turn, cut by the crash
      expect(worker.crashes).toBe(1);
      expect(metrics.callsTotal.get({ outcome: 'failed' })).toBe(1);
      expect(metrics.callsHandedOff.get({ reason: 'failed' })).toBe(1);

      // The caller's channel left Stasis for the hand-off queue, where it waits with music.
      await waitFor('the hand-off', async () => (await ari.listChannels()).some((ch) => ch.dialplan?.context === OVERFLOW.context));
      await waitFor('the call to be released', () => controller.activeCalls === 0);
      expect(media.openEndpoints).toBe(0);
      expect(media.clockListeners).toBe(0);
      // No media channel or bridge of ours is left: only the caller (in the queue) exists.
      const channels = await ari.listChannels();
      expect(channels.filter((ch) => ch.name.startsWith('UnicastRTP/'))).toEqual([]);
      expect(channels.map((ch) => ch.dialplan?.context)).toEqual([OVERFLOW.context]);
      expect(await ari.listBridges()).toEqual([]);

      // And it stays there: nothing of ours hangs up on the caller afterwards.
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await ari.listChannels()).map((ch) => ch.dialplan?.context)).toEqual([OVERFLOW.context]);
      // Never dead air: the queue's music on hold reaches the caller after the hand-off.
      expect(sink.arrivals.filter((at) => at > crashedAt + 1_000).length).toBeGreaterThan(25);

      // The caller hung up on their own, from the queue: SIPp saw a normal call.
      const res = await call;
      expect(res.ok, res.errors).toBe(true);
      await waitFor('the caller to be gone', async () => (await ari.listChannels()).length === 0);
      // The call was counted once, as failed (the hand-off ended it for Switchboard).
      expect(summaries).toHaveLength(1);
    } finally {
      sink.socket.close();
    }
  }, 60_000);

  test('the next call gets a new media worker and is answered and echoed normally', async () => {
    const wav = await makeSpeechWav('Can you hear me now?', join(work, 'now.wav'));
    const sink = await rtpSink();
    try {
      const h = sandbox();
      const res = await runSipp({ host: '127.0.0.1', port: h.ports.sip, extension: '100', audio: wav, sdpMediaPort: sink.port, callDurationMs: 6_000 });
      expect(res.ok, res.errors).toBe(true);
      await waitFor('the call summary', () => summaries.length === 2);
    } finally {
      sink.socket.close();
    }
    const s = summaries[1]!;
    expect(s.outcome).toBe('caller_hangup');
    expect(s.turns.length).toBeGreaterThanOrEqual(1);
    // The echo of "Can you hear me now?" (about 1.5 s of 20 ms packets) reached the caller.
    expect(sink.arrivals.length).toBeGreaterThan(40);
    const worker = media.mediaWorker!;
    expect(worker.alive).toBe(true);
    expect(worker.crashes).toBe(1);
    expect(metrics.callsTotal.get({ outcome: 'caller_hangup' })).toBe(1);
    await waitFor('teardown', async () => (await ari.listChannels()).length === 0 && controller.activeCalls === 0 && media.openEndpoints === 0);
    expect(media.clockListeners).toBe(0);
    expect(await ari.listBridges()).toEqual([]);
  }, 60_000);
});
