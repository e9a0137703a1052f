/**
 * Regression (found by the concurrency benchmark): after an event-loop stall, the media
 * clock's tick ran before the packets waiting in the socket were read, so the silence filler
 * took a continuous stream for a caller gone quiet and inserted silence that then arrived
 * for real (7.4 s of audio fed for 6.3 s of wall time). A worker thread streams RTP with no
 * gap while the main loop stalls 350 ms once a second, the way a synchronous inference in the
 * check phase would: every frame fed must be a received packet. Then the sender stops for
 * good and silence must be synthesised in real time.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, expect, it } from 'vitest';
import type { VadStreamSource } from '../../src/audio/vad/silero-stream.js';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { createRtpMediaFactory } from '../../src/call/media-binding.js';
import { silentLogger } from '../../src/log.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';

const SENDER = `
const dgram = require('node:dgram'); const { workerData } = require('node:worker_threads');
const s = dgram.createSocket('udp4'); let n = 0; const t0 = performance.now();
const pkt = Buffer.alloc(172, 0xff); pkt[0] = 0x80; pkt[1] = 0;
const send = () => { pkt.writeUInt16BE(n & 0xffff, 2); pkt.writeUInt32BE((n * 160) >>> 0, 4); pkt.writeUInt32BE(1234, 8);
  s.send(pkt, workerData.port, '127.0.0.1'); n++;
  if (n < workerData.packets) setTimeout(send, Math.max(0, t0 + n * 20 - performance.now())); else setTimeout(() => s.close(), 50); };
send();`;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('synthesises no silence for a stream delayed by event-loop stalls, and real-time silence once it stops', { timeout: 30_000 }, async () => {
  const metrics = createEngineMetrics(new MetricsRegistry());
  // VAD is not used here: only the media edge and its silence filler.
  const factory = createRtpMediaFactory({ vadSource: {} as VadStreamSource, metrics });
  const media = await factory.openMedia('ulaw', silentLogger);
  cleanups.push(() => media.close());
  let real = 0;
  let synthetic = 0;
  media.onFrame((f) => {
    // Frames decoded from packets carry their RTP sequence number; synthesised ones do not.
    if ('sequenceNumber' in f) real++;
    else synthetic++;
  });
  const port = Number(media.externalHost.split(':')[1]);
  const packets = 200; // 4 s
  const worker = new Worker(SENDER, { eval: true, workerData: { port, packets } });
  const stall = setInterval(
    () =>
      setImmediate(() => {
        const end = performance.now() + 350;
        while (performance.now() < end);
      }),
    1000,
  );
  cleanups.push(() => clearInterval(stall));
  await new Promise((r) => worker.once('exit', r));
  clearInterval(stall);
  await new Promise((r) => setTimeout(r, 40));
  expect(real).toBe(packets);
  expect(synthetic).toBe(0);
  // The caller has stopped sending: after the threshold, silence flows in real time.
  const before = synthetic;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 1000));
  const elapsed = performance.now() - t0;
  const fed = (synthetic - before) * 20;
  expect(fed).toBeGreaterThan(elapsed - 400); // everything after the 200 ms threshold (+ margin)
  expect(fed).toBeLessThanOrEqual(elapsed + 60);
});
