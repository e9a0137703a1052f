/**
 * Micro-benchmark of the per-call audio engine costs: Silero VAD (single vs batched,
 * thread settings, and a live 20 ms-packet simulation through CallVad + VadBatcher) and
 * the resampler. CPU is process.cpuUsage() (all threads, including onnxruntime's), each
 * figure the median over repeats.
 *
 *   npx tsx bench/vad-micro.ts            # everything (~1 minute)
 *   npx tsx bench/vad-micro.ts --quick    # fewer repeats, shorter live runs
 *
 * Measured on the 2-core dev box (shared with other work, so ±10%), Silero v4 at 8 kHz:
 *   single window 0.19 ms CPU (6.1 ms per call-second, 1.2 cores for 200 calls);
 *   batch of 10/50/200: 0.097/0.093/0.089 ms (≈2.8-3.0 ms per call-second, 0.56-0.61 cores);
 *   intra-op threads 2 or auto: 1.6-2x the CPU of 1 thread; 64 ms windows halve the cost.
 *   Live, 200 calls through CallVad + VadBatcher(4 ms): 3.0 ms per call-second net, mean
 *   batch 48, mean wait 1.3 ms, nothing dropped; unbatched cannot keep up (windows dropped).
 */
import type { AudioFrame, SampleRate } from '../src/audio/frame.js';
import { createResampler } from '../src/audio/resampler.js';
import { CallVad } from '../src/audio/vad/call-vad.js';
import type { VadSampleRate } from '../src/audio/vad/silero-layout.js';
import { SileroVadModel, type BatchItem } from '../src/audio/vad/silero-model.js';
import type { VadStreamSource } from '../src/audio/vad/silero-stream.js';
import { VadBatcher } from '../src/audio/vad/vad-batcher.js';

const QUICK = process.argv.includes('--quick');
const REPEATS = QUICK ? 3 : 5;
const LIVE_SECONDS = QUICK ? 1.5 : 3;
const TARGET_CALLS = 200;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function noiseWindow(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    w[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return w;
}

function row(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => String(c).padStart(widths[i] ?? 10)).join('  ');
}

const MODEL_COLUMNS = [34, 12, 18, 18];

function modelRow(f: { label: string; usPerWindow: number; msPerCallSecond: number }): string {
  const cores = (f.msPerCallSecond * TARGET_CALLS) / 1000;
  return row([f.label, f.usPerWindow.toFixed(1), f.msPerCallSecond.toFixed(2), cores.toFixed(2)], MODEL_COLUMNS);
}

// ---------------------------------------------------------------------------------------
// VAD: the model called directly, N streams per session.run.

interface ModelFigure {
  label: string;
  usPerWindow: number;
  msPerCallSecond: number;
}

async function modelCost(
  model: SileroVadModel,
  rate: VadSampleRate,
  batch: number,
  label: string,
  window = model.defaultWindow(rate),
): Promise<ModelFigure> {
  const streams = Array.from({ length: batch }, () => model.createBatchedStream(rate, window, () => Promise.reject(new Error('direct'))));
  const items: BatchItem[] = streams.map((stream, i) => ({ stream, window: noiseWindow(window, i + 1) }));
  const runs = Math.max(20, Math.round((QUICK ? 1500 : 4000) / batch));
  for (let i = 0; i < 10; i++) await model.runBatch(rate, items);
  const samples: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t = process.cpuUsage();
    for (let i = 0; i < runs; i++) await model.runBatch(rate, items);
    samples.push((cpuMs(t) * 1000) / (runs * batch));
  }
  const usPerWindow = median(samples);
  const windowsPerSecond = rate / window;
  return { label, usPerWindow, msPerCallSecond: (usPerWindow * windowsPerSecond) / 1000 };
}

// ---------------------------------------------------------------------------------------
// VAD live: N calls pushing 20 ms packets on a real clock through CallVad.

interface LiveFigure {
  label: string;
  /** CPU of the whole run (VAD + the packet simulator), per call-second. */
  msPerCallSecond: number;
  meanBatch: number;
  meanWaitMs: number;
  dropped: number;
  /** 99th percentile of how late packets were pushed (event-loop blocking). */
  lagP99Ms: number;
}

type LiveMode = 'none' | 'unbatched' | 'batched';

/**
 * N calls, each pushing a 20 ms packet every 20 ms, arrivals spread evenly over the 20 ms
 * as on a real box. Mode 'none' runs the same packet loop into no VAD: the harness baseline.
 */
async function liveCost(model: SileroVadModel, calls: number, mode: LiveMode): Promise<LiveFigure> {
  const rate: VadSampleRate = 8000;
  const batcher = mode === 'batched' ? new VadBatcher(model, { maxWaitMs: 4, maxBatch: 64 }) : undefined;
  const source: VadStreamSource = batcher ?? model;
  const vads = mode === 'none' ? [] : Array.from({ length: calls }, () => new CallVad(source, { sampleRate: rate }));
  const packets = Array.from({ length: 50 }, (_, i) => {
    const w = noiseWindow(160, i + 7);
    return { samples: Int16Array.from(w, (v) => Math.round(v * 32767)), sampleRate: rate } satisfies AudioFrame;
  });
  const start = performance.now() + 50;
  const total = Math.round((LIVE_SECONDS * 1000) / 20);
  const sent = new Array<number>(calls).fill(0);
  const lags: number[] = [];
  const t0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      let pending = false;
      for (let c = 0; c < calls; c++) {
        const phase = (c * 20) / calls;
        while ((sent[c] as number) < total && start + phase + 20 * (sent[c] as number) <= now) {
          lags.push(now - (start + phase + 20 * (sent[c] as number)));
          vads[c]?.push(packets[(sent[c] as number) % packets.length] as AudioFrame, now);
          sent[c] = (sent[c] as number) + 1;
        }
        if ((sent[c] as number) < total) pending = true;
      }
      if (pending) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 1);
  });
  await Promise.all(vads.map((v) => v.whenIdle()));
  const cpu = cpuMs(t0);
  const dropped = vads.reduce((n, v) => n + v.stats.windowsDropped, 0);
  for (const v of vads) v.close();
  batcher?.close();
  const stats = batcher?.stats;
  lags.sort((a, b) => a - b);
  return {
    label: `${mode === 'none' ? 'harness only' : mode}, ${calls} calls`,
    msPerCallSecond: cpu / (calls * LIVE_SECONDS),
    meanBatch: stats ? stats.windows / Math.max(1, stats.runs) : mode === 'none' ? 0 : 1,
    meanWaitMs: stats ? stats.totalWaitMs / Math.max(1, stats.windows) : 0,
    dropped,
    lagP99Ms: lags[Math.floor(lags.length * 0.99)] ?? 0,
  };
}

// ---------------------------------------------------------------------------------------
// Resampler: CPU per second of input audio, fed in 20 ms chunks.

function resamplerCost(from: SampleRate, to: SampleRate): number {
  const chunk = Math.round(from / 50);
  const seconds = 2;
  const frames: AudioFrame[] = Array.from({ length: seconds * 50 }, (_, i) => ({
    samples: Int16Array.from(noiseWindow(chunk, i + 1), (v) => Math.round(v * 200000)),
    sampleRate: from,
  }));
  const r = createResampler(from, to);
  for (let k = 0; k < 3; k++) {
    for (const f of frames) r.process(f);
    r.flush();
  }
  const samples: number[] = [];
  for (let rep = 0; rep < REPEATS; rep++) {
    const t = process.cpuUsage();
    for (const f of frames) r.process(f);
    r.flush();
    samples.push(cpuMs(t) / seconds);
  }
  return median(samples);
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${QUICK ? 'quick' : 'full'} run, medians of ${REPEATS}\n`);

  const model = await SileroVadModel.load();
  console.log(`Silero ${model.version}: ${model.path}`);
  console.log(
    `  tensors: input [B, window] f32, sr [] i64, ${model.layout.recurrent
      .map((t) => `${t.input} [${t.layers}, B, ${t.width}]`)
      .join(', ')} -> output [B, 1]\n`,
  );

  const header = row(['case', 'us/window', 'ms CPU/call-s', `cores@${TARGET_CALLS}`], MODEL_COLUMNS);
  console.log('VAD model called directly (32 ms windows unless noted), session threads intra=1 inter=1');
  console.log(header);
  for (const rate of [8000, 16000] as const) {
    for (const batch of [1, 10, 50, 200]) {
      console.log(modelRow(await modelCost(model, rate, batch, `${rate / 1000}k ${batch === 1 ? 'single window' : `batch of ${batch}`}`)));
    }
  }

  console.log(modelRow(await modelCost(model, 8000, 50, '8k 64 ms windows, batch of 50', 512)));

  console.log('\nVAD thread settings (8k)');
  console.log(header);
  for (const [intra, inter] of [
    [1, 1],
    [2, 1],
    [0, 0],
  ] as const) {
    const m = intra === 1 ? model : await SileroVadModel.load(undefined, { intraOpNumThreads: intra, interOpNumThreads: inter });
    for (const batch of [1, 50]) {
      console.log(modelRow(await modelCost(m, 8000, batch, `intra=${intra || 'auto'} inter=${inter || 'auto'} B=${batch}`)));
    }
    if (m !== model) await m.close();
  }

  console.log(`\nVAD live: CallVad per call, 20 ms packets at 8 kHz on a real clock, ${LIVE_SECONDS} s`);
  console.log('(a run that drops windows did less work: its CPU figure is not comparable)');
  const w2 = [24, 14, 14, 11, 11, 9, 10];
  console.log(row(['case', 'ms CPU/call-s', 'net of harness', 'mean batch', 'mean wait', 'dropped', 'lag p99'], w2));
  for (const calls of [50, TARGET_CALLS]) {
    const base = await liveCost(model, calls, 'none');
    for (const mode of ['none', 'unbatched', 'batched'] as const) {
      const f = mode === 'none' ? base : await liveCost(model, calls, mode);
      const net = f.msPerCallSecond - base.msPerCallSecond;
      console.log(
        row(
          [
            f.label,
            f.msPerCallSecond.toFixed(2),
            mode === 'none' ? '-' : net.toFixed(2),
            f.meanBatch.toFixed(1),
            `${f.meanWaitMs.toFixed(1)} ms`,
            f.dropped,
            `${f.lagP99Ms.toFixed(0)} ms`,
          ],
          w2,
        ),
      );
    }
  }
  await model.close();

  console.log('\nResampler, 20 ms chunks');
  const w3 = [16, 18, 18];
  console.log(row(['pair', 'ms CPU/audio-s', `cores@${TARGET_CALLS}`], w3));
  const pairs: Array<[SampleRate, SampleRate]> = [
    [8000, 16000],
    [16000, 8000],
    [24000, 8000],
    [22050, 8000],
    [22050, 16000],
    [24000, 16000],
    [48000, 8000],
    [8000, 48000],
  ];
  for (const [from, to] of pairs) {
    const ms = resamplerCost(from, to);
    console.log(row([`${from}->${to}`, ms.toFixed(2), ((ms * TARGET_CALLS) / 1000).toFixed(2)], w3));
  }
}

await main();
