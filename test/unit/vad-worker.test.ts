/**
 * WorkerVadSource against the in-thread model: same probabilities for the same audio with
 * many streams interleaved, per-stream isolation, reset and close semantics, coalesced
 * traffic, and the SWITCHBOARD_VAD_THREAD switch. Failures are in vad-worker-failures.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallVad } from '../../src/audio/vad/call-vad.js';
import type { VadSampleRate } from '../../src/audio/vad/silero-layout.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import type { VadStream } from '../../src/audio/vad/silero-stream.js';
import { openVadSource, vadThreadFromEnv } from '../../src/audio/vad/vad-source.js';
import { WorkerVadSource } from '../../src/audio/vad/worker-vad-source.js';
import { silentLogger } from '../../src/log.js';
import { packetize, speechAt, whiteNoise } from '../support/speech.js';

let model: SileroVadModel;
let source: WorkerVadSource;
let speech8k: Float32Array;
let speech16k: Float32Array;
let noise8k: Float32Array;

const toFloat = (s: Int16Array): Float32Array => Float32Array.from(s, (v) => v / 32768);

function windows(audio: Float32Array, size: number, max = 60): Float32Array[] {
  const out: Float32Array[] = [];
  for (let off = 0; off + size <= audio.length && out.length < max; off += size) out.push(audio.slice(off, off + size));
  return out;
}

/** Probabilities of one fresh in-thread stream fed `ws` one after another. */
async function reference(rate: VadSampleRate, ws: readonly Float32Array[]): Promise<number[]> {
  const s = model.createStream(rate, ws[0]?.length);
  const out: number[] = [];
  for (const w of ws) out.push(await s.infer(w));
  s.close();
  return out;
}

async function feed(s: VadStream, ws: readonly Float32Array[]): Promise<number[]> {
  const out: number[] = [];
  for (const w of ws) out.push(await s.infer(w));
  return out;
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
}

beforeAll(async () => {
  [model, source] = await Promise.all([SileroVadModel.load(), WorkerVadSource.start({ logger: silentLogger })]);
  speech8k = toFloat((await speechAt('Hello, I would like to check my order status.', 8000)).samples);
  speech16k = toFloat((await speechAt('Thank you very much, goodbye.', 16000)).samples);
  noise8k = toFloat(whiteNoise(8000, 2000, -35, 3).samples);
});

afterAll(async () => {
  await source?.close();
  await model?.close();
});

describe('WorkerVadSource', () => {
  it('loads the same model as the in-thread source and validates windows like it', () => {
    expect(source.version).toBe(model.version);
    expect(source.modelPath).toBe(model.path);
    expect(source.createStream(8000).windowSamples).toBe(256);
    expect(source.createStream(16000).windowSamples).toBe(512);
    expect(() => source.createStream(8000, 300)).toThrow(/256\/512\/768 samples, not 300/);
  });

  it('gives the in-thread probabilities (within 1e-4) for many interleaved streams of mixed rates and windows', async () => {
    // Twelve inputs: speech at different offsets, noise, silence, 16 kHz speech, 64 ms windows.
    const inputs: Array<{ rate: VadSampleRate; ws: Float32Array[] }> = [];
    for (let i = 0; i < 8; i++) {
      const a = new Float32Array(speech8k.length + i * 300);
      a.set(speech8k, i * 300);
      inputs.push({ rate: 8000, ws: windows(a, 256) });
    }
    inputs.push({ rate: 8000, ws: windows(noise8k, 256) });
    inputs.push({ rate: 8000, ws: windows(new Float32Array(256 * 40), 256) });
    inputs.push({ rate: 16000, ws: windows(speech16k, 512) });
    inputs.push({ rate: 8000, ws: windows(speech8k, 512) });

    const expected = await Promise.all(inputs.map(({ rate, ws }) => reference(rate, ws)));
    const before = { ...source.stats };
    const streams = inputs.map(({ rate, ws }) => source.createStream(rate, ws[0]?.length));
    const got = await Promise.all(streams.map((s, i) => feed(s, (inputs[i] as { ws: Float32Array[] }).ws)));
    streams.forEach((s) => s.close());

    for (let i = 0; i < inputs.length; i++) expect(maxAbsDiff(got[i] as number[], expected[i] as number[])).toBeLessThan(1e-4);
    // The speech inputs really vary: probabilities are not all the same.
    expect(Math.max(...(got[0] as number[]))).toBeGreaterThan(0.5);
    expect(Math.min(...(got[0] as number[]))).toBeLessThan(0.2);

    const windowsFed = inputs.reduce((n, x) => n + x.ws.length, 0);
    expect(source.stats.windowsInferred - before.windowsInferred).toBe(windowsFed);
    // Windows submitted in the same turn travel together: far fewer messages than windows.
    expect(source.stats.messagesPosted - before.messagesPosted).toBeLessThan(windowsFed / 4);
    const ws = await source.workerStats();
    expect(ws.largestBatch).toBeGreaterThan(4);
  });

  it('keeps streams isolated: a stream opened late starts from fresh state, others are unaffected', async () => {
    const speechWs = windows(speech8k, 256, 40);
    const noiseWs = windows(noise8k, 256, 40);
    const a = source.createStream(8000);
    const first = await feed(a, speechWs.slice(0, 20));
    // b joins while a continues; b sees noise, a sees the rest of its speech.
    const b = source.createStream(8000);
    const [restA, gotB] = await Promise.all([feed(a, speechWs.slice(20)), feed(b, noiseWs)]);
    a.close();
    b.close();
    expect(maxAbsDiff([...first, ...restA], await reference(8000, speechWs))).toBeLessThan(1e-4);
    expect(maxAbsDiff(gotB, await reference(8000, noiseWs))).toBeLessThan(1e-4);
  });

  it('reset() discards the state of a window still in flight and of everything before', async () => {
    const ws = windows(speech8k, 256, 60);
    const primed = ws.slice(0, 30);
    const after = ws.slice(31, 45);
    const fresh = await reference(8000, after);
    // Control: without a reset the state carries over, so the check below can fail.
    const continued = (await reference(8000, [...primed, ws[30] as Float32Array, ...after])).slice(31);
    expect(maxAbsDiff(continued, fresh)).toBeGreaterThan(1e-3);

    // With a long batching wait the window and the reset travel in one message: the reset
    // reaches the worker while the window waits in its batcher (the hard case: not run yet).
    const slow = await WorkerVadSource.start({ logger: silentLogger, maxWaitMs: 30 });
    try {
      const s = slow.createStream(8000);
      await feed(s, primed);
      const inFlight = s.infer(ws[30] as Float32Array);
      s.reset();
      // Like the in-thread stream, the in-flight window still settles (with a probability)...
      expect(await inFlight).toBeGreaterThanOrEqual(0);
      // ...but leaves no trace in the state the stream continues with.
      expect(maxAbsDiff(await feed(s, after), fresh)).toBeLessThan(1e-4);

      // Reset between windows, and one window in flight even across a reset.
      await feed(s, primed);
      s.reset();
      const p = s.infer(after[0] as Float32Array);
      s.reset();
      await expect(s.infer(after[1] as Float32Array)).rejects.toThrow(/in flight/);
      await p;
      expect(maxAbsDiff(await feed(s, after), fresh)).toBeLessThan(1e-4);
      s.close();
    } finally {
      await slow.close();
    }
  });

  it('close() frees the stream in the worker and rejects its later windows; other streams carry on', async () => {
    const base = (await source.workerStats()).streams;
    const streams = Array.from({ length: 5 }, () => source.createStream(8000));
    await Promise.all(streams.map((s) => s.infer(new Float32Array(256))));
    expect((await source.workerStats()).streams).toBe(base + 5);

    // Closing with a window in flight: that window still settles, nothing else is left.
    const inFlight = (streams[0] as VadStream).infer(new Float32Array(256));
    for (const s of streams.slice(0, 4)) s.close();
    await inFlight;
    await expect((streams[0] as VadStream).infer(new Float32Array(256))).rejects.toThrow(/closed/);
    expect((await source.workerStats()).streams).toBe(base + 1);
    expect(source.inFlight).toBe(0);

    const survivor = streams[4] as VadStream;
    const ws = windows(speech8k, 256, 10);
    // The survivor already saw one zero window: compare against a reference that did too.
    const expected = (await reference(8000, [new Float32Array(256), ...ws])).slice(1);
    expect(maxAbsDiff(await feed(survivor, ws), expected)).toBeLessThan(1e-4);
    survivor.close();
    expect((await source.workerStats()).streams).toBe(base);
  });

  it('posts a batch as soon as maxBatch windows wait, and a lone window after maxWaitMs', async () => {
    const src = await WorkerVadSource.start({ logger: silentLogger, maxBatch: 4, maxWaitMs: 10_000 });
    try {
      const streams = Array.from({ length: 8 }, () => src.createStream(8000));
      const t0 = performance.now();
      await Promise.all(streams.map((s) => s.infer(new Float32Array(256))));
      expect(performance.now() - t0).toBeLessThan(5_000);
      // The opens rode along with the first batch.
      expect(src.stats).toMatchObject({ messagesPosted: 2, windowsInferred: 8 });
      expect((await src.workerStats()).largestBatch).toBe(4);
    } finally {
      await src.close();
    }
    const lone = await WorkerVadSource.start({ logger: silentLogger, maxWaitMs: 40 });
    try {
      const s = lone.createStream(8000);
      const t0 = performance.now();
      await s.infer(new Float32Array(256));
      const took = performance.now() - t0;
      expect(took).toBeGreaterThanOrEqual(39);
      expect(took).toBeLessThan(40 + 1_000); // generous: the box may be busy
    } finally {
      await lone.close();
    }
  });

  it('enforces one window in flight and the window size per stream', async () => {
    const s = source.createStream(8000);
    await expect(s.infer(new Float32Array(100))).rejects.toThrow(/window of 100 samples, expected 256/);
    const p = s.infer(new Float32Array(256));
    await expect(s.infer(new Float32Array(256))).rejects.toThrow(/in flight/);
    await p;
    await expect(s.infer(new Float32Array(256))).resolves.toBeGreaterThanOrEqual(0);
    s.close();
  });

  it('drives CallVad to the same turn events as the in-thread batcher', async () => {
    const clip = await speechAt('Hello, I would like to check my order status.', 8000);
    const silence = { samples: new Int16Array(8000 * 1.5), sampleRate: 8000 as const };
    const packets = [...packetize(clip), ...packetize(silence)];
    const run = async (src: WorkerVadSource | SileroVadModel): Promise<string[]> => {
      const vad = new CallVad(src, { sampleRate: 8000, maxQueuedWindows: packets.length });
      const events: string[] = [];
      vad.onEvent((e) => events.push(e.type));
      packets.forEach((p, i) => vad.push(p, i * 20));
      await vad.whenIdle();
      expect(vad.stats.inferenceErrors).toBe(0);
      expect(vad.stats.windowsDropped).toBe(0);
      vad.close();
      return events;
    };
    const viaWorker = await run(source);
    expect(viaWorker).toEqual(await run(model));
    expect(viaWorker).toEqual(['speech_start', 'speech_end']);
  });
});

describe('choosing the VAD thread', () => {
  it('reads SWITCHBOARD_VAD_THREAD: worker by default, main on request, anything else is an error', () => {
    expect(vadThreadFromEnv({})).toBe('worker');
    expect(vadThreadFromEnv({ SWITCHBOARD_VAD_THREAD: '' })).toBe('worker');
    expect(vadThreadFromEnv({ SWITCHBOARD_VAD_THREAD: 'worker' })).toBe('worker');
    expect(vadThreadFromEnv({ SWITCHBOARD_VAD_THREAD: ' Main ' })).toBe('main');
    expect(() => vadThreadFromEnv({ SWITCHBOARD_VAD_THREAD: 'gpu' })).toThrow(/"worker" or "main", not "gpu"/);
  });

  it('opens either source with the same model', async () => {
    for (const thread of ['main', 'worker'] as const) {
      const opened = await openVadSource({ thread, logger: silentLogger });
      try {
        expect(opened.thread).toBe(thread);
        expect(opened.version).toBe(model.version);
        const s = opened.source.createStream(8000);
        const w = (windows(speech8k, 256, 1)[0] as Float32Array);
        const [expected] = await reference(8000, [w]);
        expect(Math.abs((await s.infer(w)) - (expected as number))).toBeLessThan(1e-4);
        s.close();
      } finally {
        await opened.close();
      }
    }
  });
});
