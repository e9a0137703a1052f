/**
 * RTP edge benchmark: `npx tsx bench/rtp-micro.ts [--calls 200] [--seconds 10] [--skip-load]`
 *
 * 1. Micro: per-packet cost of the inbound path (parse, jitter buffer, decode, PLC
 *    bookkeeping), outbound encode per frame, and one pacer tick for N calls.
 * 2. Load: N real RtpEndpoints on the shared media clock. A worker thread (the other
 *    core) plays Asterisk: it sends each endpoint 50 packets/s of mu-law and receives
 *    the endpoints' paced replies, measuring their inter-arrival jitter on the wire.
 *    The main thread reports pacing deviation, tick dispatch cost, CPU and event-loop use.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { getCodec, ulawDecode, ulawEncode } from '../src/audio/g711.js';
import { RtpEndpoint } from '../src/rtp/endpoint.js';
import { LatencyHistogram } from '../src/rtp/histogram.js';
import { JitterBuffer } from '../src/rtp/jitter-buffer.js';
import { sharedMediaClock, type ClockTick } from '../src/rtp/media-clock.js';
import { createRtpPacket, parseRtpInto, serializeRtp } from '../src/rtp/packet.js';
import { Pacer } from '../src/rtp/pacer.js';
import { PacketLossConcealer } from '../src/rtp/plc.js';
import { mediaSlab } from '../src/rtp/slab.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const CALLS = arg('calls', 200);
const SECONDS = arg('seconds', 10);
const SKIP_LOAD = process.argv.includes('--skip-load');

function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

/** Run `fn` `iterations` times after a warm-up; ns per iteration. */
function timeIt(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) fn(i);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  return ((performance.now() - t0) * 1e6) / iterations;
}

function micro(): void {
  console.log('== micro (single thread, ns per operation) ==');
  const payload = ulawEncode(Int16Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin(i / 9))));
  const N = 1_000_000;
  const packets = Array.from({ length: 1024 }, (_, k) =>
    Buffer.from(serializeRtp({ marker: false, payloadType: 0, sequenceNumber: k & 0xffff, timestamp: k * 160, ssrc: 7 }, payload)),
  );
  const scratch = createRtpPacket();

  const parseNs = timeIt(N, (i) => parseRtpInto(packets[i & 1023] as Buffer, scratch));
  const out = new Int16Array(160);
  const decodeIntoNs = timeIt(N, () => ulawDecode(payload, out));
  const decodeAllocNs = timeIt(N, () => ulawDecode(payload));

  // The endpoint's inbound path minus the socket: parse -> jitter -> decode into a slab view -> PLC copy.
  const plc = new PacketLossConcealer(160);
  let sink = 0;
  const jb = new JitterBuffer(
    {
      release: (p) => {
        const s = ulawDecode(p, mediaSlab.int16(p.length));
        plc.remember(s);
        sink += s[0] as number;
      },
      conceal: () => undefined,
    },
    { clockRate: 8000, samplesPerPacket: 160 },
  );
  let seq = 0;
  const seqPackets = Array.from({ length: 65536 }, (_, k) =>
    Buffer.from(serializeRtp({ marker: false, payloadType: 0, sequenceNumber: k, timestamp: (k * 160) >>> 0, ssrc: 7 }, payload)),
  );
  const inboundNs = timeIt(N, () => {
    const buf = seqPackets[seq] as Buffer;
    seq = (seq + 1) & 0xffff;
    if (parseRtpInto(buf, scratch) === null) jb.push(scratch, 0);
  });

  const pcm1s = Int16Array.from({ length: 8000 }, (_, i) => Math.round(8000 * Math.sin(i / 9)));
  const encoder = new Pacer({ codec: getCodec('ulaw'), send: () => undefined });
  const enqueueNs = timeIt(20_000, () => {
    encoder.enqueue({ samples: pcm1s, sampleRate: 8000 });
    encoder.clear();
  }) / 50;

  // Ticks for CALLS pacers with audio queued (1 s at a time, queued outside the timing);
  // send is a no-op here: the load test below includes the socket.
  const pacers = Array.from({ length: CALLS }, () => new Pacer({ codec: getCodec('ulaw'), send: () => undefined }));
  let tickIndex = 0;
  let tickMs = 0;
  const rounds = 100;
  for (let r = 0; r < rounds + 10; r++) {
    for (const p of pacers) p.enqueue({ samples: pcm1s, sampleRate: 8000 });
    const t0 = performance.now();
    for (let k = 0; k < 50; k++) {
      tickIndex++;
      const tick: ClockTick = { index: tickIndex, scheduledMs: tickIndex * 20, firedMs: tickIndex * 20 };
      for (const p of pacers) p.tick(tick);
    }
    if (r >= 10) tickMs += performance.now() - t0; // the first rounds warm up
  }
  const tickNs = (tickMs * 1e6) / (rounds * 50);

  console.log(`parse (parseRtpInto)                 ${fmt(parseNs, 0)} ns/packet`);
  console.log(`ulaw decode 160 into buffer          ${fmt(decodeIntoNs, 0)} ns/packet`);
  console.log(`ulaw decode 160 fresh array          ${fmt(decodeAllocNs, 0)} ns/packet`);
  console.log(`inbound parse+jitter+decode+PLC      ${fmt(inboundNs, 0)} ns/packet   (${fmt((inboundNs * CALLS * 50) / 1e6, 2)} ms CPU/s for ${CALLS} calls)`);
  console.log(`outbound slice+encode (enqueue)      ${fmt(enqueueNs, 0)} ns/frame`);
  console.log(`pacer tick, ${CALLS} pacers, no socket     ${fmt(tickNs / 1000, 1)} us/tick (${fmt(tickNs / CALLS, 0)} ns/pacer)`);
  if (sink === 42) console.log(''); // keep the decode result observable
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const { ports, seconds } = workerData;
// One socket per call, as Asterisk has one RTP socket per ExternalMedia channel.
const socks = ports.map(() => dgram.createSocket('udp4'));
const interval = new Uint32Array(1001); // |delta - 20| in 0.1 ms buckets, last = overflow
let received = 0, gaps = 0;
let bound = 0;
for (const sock of socks) {
  let last = 0, lastSeq = -1;
  sock.on('message', (msg) => {
    const now = performance.now();
    received++;
    const seq = msg.readUInt16BE(2), marker = (msg[1] & 0x80) !== 0;
    if (lastSeq >= 0 && !marker) {
      if (((seq - lastSeq) & 0xffff) !== 1) gaps++;
      interval[Math.min(1000, Math.floor(Math.abs(now - last - 20) * 10))]++;
    }
    last = now; lastSeq = seq;
  });
  sock.bind(0, '127.0.0.1', () => { if (++bound === socks.length) run(); });
}
function run() {
  const payload = Buffer.alloc(160, 0xff);
  const seqs = ports.map(() => Math.floor(Math.random() * 65536));
  let n = 0;
  const start = performance.now();
  const send = () => {
    // Each endpoint gets one packet per 20 ms, all in one burst like a busy Asterisk.
    for (let i = 0; i < ports.length; i++) {
      const pkt = Buffer.allocUnsafe(172);
      pkt[0] = 0x80; pkt[1] = 0; pkt.writeUInt16BE((seqs[i] + n) & 0xffff, 2); pkt.writeUInt32BE((n * 160) >>> 0, 4); pkt.writeUInt32BE(i + 1, 8);
      payload.copy(pkt, 12);
      socks[i].send(pkt, ports[i], '127.0.0.1');
    }
    n++;
    const next = start + n * 20;
    if (next - start < seconds * 1000) setTimeout(send, Math.max(0, next - performance.now()));
    else setTimeout(() => { parentPort.postMessage({ sent: n * ports.length, received, gaps, interval: Array.from(interval) }); for (const s of socks) s.close(); }, 300);
  };
  parentPort.postMessage({ ready: true });
  send();
}
`;

function percentileOf(buckets: number[], p: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] as number;
    if (seen >= rank) return i === buckets.length - 1 ? Infinity : (i + 1) / 10;
  }
  return Infinity;
}

async function load(): Promise<void> {
  console.log(`\n== load: ${CALLS} endpoints on loopback, ${SECONDS} s, 50 pkt/s in + 50 pkt/s out per call ==`);
  // Markers around the endpoints' listeners measure the whole tick dispatch.
  let dispatchStart = 0;
  const dispatch = new LatencyHistogram({ bucketMs: 0.01, limitMs: 50 });
  const offStart = sharedMediaClock.register(() => {
    dispatchStart = performance.now();
  });
  const endpoints = await Promise.all(Array.from({ length: CALLS }, () => RtpEndpoint.open({ codec: 'ulaw' })));
  const offEnd = sharedMediaClock.register(() => dispatch.record(performance.now() - dispatchStart));
  let framesIn = 0;
  const speech = new Int16Array(8000 * 3).map((_, i) => Math.round(6000 * Math.sin(i / 8)));
  for (const ep of endpoints) {
    ep.setHandlers({ audio: () => framesIn++ });
  }

  const worker = new Worker(WORKER, { eval: true, workerData: { ports: endpoints.map((e) => e.address().port), seconds: SECONDS } });
  await new Promise<void>((resolve) => worker.once('message', () => resolve()));
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // Keep every call talking like a streaming TTS: when a call has under 300 ms queued it
  // gets the next 400 ms chunk (checked every 20 ms, so the work is spread out).
  let chunkOffset = 0;
  const chunk = 3200;
  const feeder = setInterval(() => {
    for (const ep of endpoints) {
      if (ep.pacer.queuedMs < 300) {
        ep.enqueue({ samples: speech.subarray(chunkOffset, chunkOffset + chunk), sampleRate: 8000 });
        chunkOffset = (chunkOffset + chunk) % (speech.length - chunk);
      }
    }
  }, 20);
  const result = await new Promise<{ sent: number; received: number; gaps: number; interval: number[] }>((resolve) => worker.once('message', resolve));
  clearInterval(feeder);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);

  const dev = new LatencyHistogram();
  const ivl = new LatencyHistogram();
  let packetsIn = 0;
  let packetsOut = 0;
  let dropped = 0;
  let lost = 0;
  for (const ep of endpoints) {
    dev.merge(ep.pacer.stats.sendDeviation);
    ivl.merge(ep.pacer.stats.intervalJitter);
    const s = ep.stats();
    packetsIn += s.packetsIn;
    packetsOut += s.packetsOut;
    lost += s.jitter.lost;
    for (const v of Object.values(s.dropped)) dropped += v;
  }
  offStart();
  offEnd();
  await Promise.all(endpoints.map((e) => e.close()));
  await worker.terminate();

  const clk = sharedMediaClock.stats;
  console.log(`inbound: ${packetsIn} packets (${fmt(packetsIn / (wall / 1000), 0)}/s), ${framesIn} frames, dropped ${dropped}, lost ${lost}`);
  console.log(`outbound: ${packetsOut} packets (${fmt(packetsOut / (wall / 1000), 0)}/s); Asterisk side received ${result.received}, sequence gaps ${result.gaps}`);
  console.log(`send deviation from schedule (ms):    p50 ${fmt(dev.percentile(50))}  p99 ${fmt(dev.percentile(99))}  max ${fmt(dev.max)}`);
  console.log(`send interval jitter |dt-20| (ms):    p50 ${fmt(ivl.percentile(50))}  p99 ${fmt(ivl.percentile(99))}  max ${fmt(ivl.max)}`);
  console.log(
    `wire inter-arrival |dt-20| (ms):      p50 ${fmt(percentileOf(result.interval, 50))}  p99 ${fmt(percentileOf(result.interval, 99))}  (measured by the receiving thread)`,
  );
  console.log(`clock: ${clk.ticks} ticks, skipped ${clk.skippedTicks}, timer lateness p50 ${fmt(clk.lateness.percentile(50))} p99 ${fmt(clk.lateness.percentile(99))} ms`);
  console.log(`tick dispatch for ${CALLS} calls (ms): p50 ${fmt(dispatch.percentile(50), 3)}  p99 ${fmt(dispatch.percentile(99), 3)}  max ${fmt(dispatch.max, 3)}`);
  console.log(`main thread: CPU ${fmt(((cpu.user + cpu.system) / 1000 / wall) * 100, 1)}% of one core, event loop utilisation ${fmt(elu.utilization * 100, 1)}%`);
}

micro();
if (!SKIP_LOAD) await load();
