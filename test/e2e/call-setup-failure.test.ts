/**
 * Call setup that fails inside Asterisk: the ExternalMedia request is refused (a malformed
 * external_host makes Asterisk answer 500). The controller must count the failure by step,
 * release what it had acquired (RTP endpoint, media channel id), and hand the caller to the
 * humans (the overflow target in the dialplan) instead of leaving dead air; Switchboard goes
 * on taking calls. A real Asterisk, real SIPp, the real media factory; only the external_host
 * Switchboard advertises is wrong.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { echoAgentFactory } from '../../src/agents/echo.js';
import { connectAri } from '../../src/ari/ari-connection.js';
import type { AriConnection } from '../../src/ari/types.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { CallController, type MediaFactory, type OpenedMedia } from '../../src/call/call-controller.js';
import type { CallSummary } from '../../src/call/call-session.js';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory } from '../../src/call/media-binding.js';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { sharedMediaClock } from '../../src/rtp/media-clock.js';
import { useSandbox } from '../support/pbx.js';
import { makeSpeechWav, runSipp } from '../support/sipp.js';

const sandbox = useSandbox('setupfail');

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('call setup failures inside Asterisk', () => {
  let ari: AriConnection;
  let model: SileroVadModel;
  let controller: CallController;
  let work: string;
  const metrics = createEngineMetrics(new MetricsRegistry());
  let media: ReturnType<typeof createRtpMediaFactory>;
  let breakExternalHost = true;
  const summaries: CallSummary[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'switchboard-setupfail-'));
    const c = sandbox().connection;
    model = await SileroVadModel.load();
    media = createRtpMediaFactory({ vadSource: model, metrics });
    // The real factory, advertising an external_host Asterisk cannot parse while `breakExternalHost`.
    const faulty: MediaFactory = {
      async openMedia(format, log): Promise<OpenedMedia> {
        const real = await media.openMedia(format, log);
        return new Proxy(real, {
          get: (target, prop): unknown => (prop === 'externalHost' && breakExternalHost ? 'bogus:abc' : Reflect.get(target, prop, target)),
        });
      },
      createVad: (m, agent) => media.createVad(m, agent),
    };
    ari = await connectAri({ url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp, logger: silentLogger, initialTimeoutMs: 20_000 });
    controller = new CallController({
      ari,
      media: faulty,
      agents: new Map([[echoAgentFactory.name, echoAgentFactory]]),
      defaultAgent: 'echo',
      log: silentLogger,
      metrics,
      overflow: { context: 'switchboard-handoff', extension: 'queue' },
      onCallEnded: (s) => summaries.push(s),
    });
    controller.start();
  }, 120_000);

  afterAll(async () => {
    await controller?.stop();
    await ari?.close();
    await model?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  test('a refused ExternalMedia is counted, cleaned up, and the caller goes to the operator queue', async () => {
    const wav = await makeSpeechWav('Hello, is anybody there?', join(work, 'hello.wav'));
    const h = sandbox();
    const call = runSipp({ host: '127.0.0.1', port: h.ports.sip, extension: '100', audio: wav, audioLoops: -1, callDurationMs: 5000 });
    // While the call lasts, the caller's channel is out of Stasis and in the hand-off queue.
    await waitFor('the setup failure', () => metrics.setupFailures.get({ step: 'external_media' }) === 1);
    await waitFor('the hand-off', async () => {
      const chans = await ari.listChannels();
      return chans.some((ch) => ch.dialplan?.context === 'switchboard-handoff');
    });
    expect(metrics.callsHandedOff.get({ reason: 'failed' })).toBe(1);
    expect(controller.activeCalls).toBe(0);
    expect(media.openEndpoints).toBe(0);
    expect(sharedMediaClock.listenerCount).toBe(0);
    // No media channel or bridge of ours is left: only the caller (now in the queue) exists.
    expect((await ari.listChannels()).filter((ch) => ch.name.startsWith('UnicastRTP/'))).toEqual([]);
    expect(await ari.listBridges()).toEqual([]);
    const res = await call;
    expect(res.ok, res.errors).toBe(true);
    expect(metrics.callsTotal.get({ outcome: 'failed' })).toBe(1);
    // The failed call still ends with a summary (call records count it): no turns, outcome failed.
    expect(summaries.map((s) => [s.outcome, s.turns.length, s.info.agentName])).toEqual([['failed', 0, 'echo']]);
  }, 60_000);

  test('the next call, with a good external_host, works normally', async () => {
    breakExternalHost = false;
    const wav = await makeSpeechWav('Can you hear me now?', join(work, 'now.wav'));
    const h = sandbox();
    const res = await runSipp({ host: '127.0.0.1', port: h.ports.sip, extension: '100', audio: wav, callDurationMs: 4000 });
    expect(res.ok, res.errors).toBe(true);
    await waitFor('the call to end', () => metrics.callsTotal.get({ outcome: 'caller_hangup' }) === 1);
    expect(metrics.vadSpeechEnds.get()).toBeGreaterThanOrEqual(1);
    expect(metrics.setupFailures.get({ step: 'external_media' })).toBe(1);
    await waitFor('teardown', async () => (await ari.listChannels()).length === 0 && media.openEndpoints === 0);
    expect(await ari.listBridges()).toEqual([]);
  }, 60_000);
});
