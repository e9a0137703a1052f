import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { VadBatcher } from '../../src/audio/vad/vad-batcher.js';
import type { VadStream, VadStreamSource } from '../../src/audio/vad/silero-stream.js';
import { speechAt, whiteNoise } from '../support/speech.js';

let model: SileroVadModel;
/** Eight different 8 kHz inputs (speech at different offsets, and noise), cut into 256-sample windows. */
let inputs: Float32Array[][];

beforeAll(async () => {
  model = await SileroVadModel.load();
  const speech = (await speechAt('Hello, I would like to check my order status.', 8000)).samples;
  inputs = Array.from({ length: 8 }, (_, i) => {
    const a = new Float32Array(speech.length + i * 300);
    if (i === 7) a.set(Float32Array.from(whiteNoise(8000, a.length / 8, -35, 3).samples, (v) => v / 32768));
    else a.set(Float32Array.from(speech, (v) => v / 32768), i * 300);
    const ws: Float32Array[] = [];
    for (let off = 0; off + 256 <= a.length && ws.length < 50; off += 256) ws.push(a.slice(off, off + 256));
    return ws;
  });
});

afterAll(async () => {
  await model.close();
});

/** Feed every stream its windows concurrently, one window in flight per stream. */
async function feedAll(source: VadStreamSource): Promise<number[][]> {
  const streams: VadStream[] = inputs.map(() => source.createStream(8000));
  return Promise.all(
    streams.map(async (s, i) => {
      const out: number[] = [];
      for (const w of inputs[i] as Float32Array[]) out.push(await s.infer(w));
      return out;
    }),
  );
}

describe('VadBatcher', () => {
  it('gives the same probabilities as unbatched inference (within 1e-4) while batching', async () => {
    const alone = await feedAll(model);
    const runsBefore = model.stats.runs;
    const batcher = new VadBatcher(model, { maxWaitMs: 2 });
    const batched = await feedAll(batcher);
    let maxDiff = 0;
    alone.forEach((row, i) => row.forEach((p, t) => (maxDiff = Math.max(maxDiff, Math.abs(p - (batched[i]?.[t] as number))))));
    expect(maxDiff).toBeLessThan(1e-4);
    expect(batcher.stats.windows).toBe(8 * 50);
    // All eight streams advance in lock-step, so runs hold all of them.
    expect(batcher.stats.largestBatch).toBe(8);
    expect(model.stats.runs - runsBefore).toBeLessThan(8 * 50);
    expect(batcher.stats.runs).toBeLessThanOrEqual(60);
  });

  it('gathers windows submitted together into one run', async () => {
    const batcher = new VadBatcher(model, { maxWaitMs: 5 });
    const streams = Array.from({ length: 10 }, () => batcher.createStream(8000));
    await Promise.all(streams.map((s) => s.infer(new Float32Array(256))));
    expect(batcher.stats).toMatchObject({ runs: 1, windows: 10, largestBatch: 10 });
  });

  it('runs at once when maxBatch windows are pending, without waiting for the timer', async () => {
    const batcher = new VadBatcher(model, { maxBatch: 4, maxWaitMs: 10_000 });
    const streams = Array.from({ length: 8 }, () => batcher.createStream(8000));
    const t0 = performance.now();
    await Promise.all(streams.map((s) => s.infer(new Float32Array(256))));
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(batcher.stats).toMatchObject({ runs: 2, windows: 8, largestBatch: 4 });
  });

  it('bounds the wait of a lone window by maxWaitMs', async () => {
    const batcher = new VadBatcher(model, { maxWaitMs: 15 });
    const s = batcher.createStream(16000);
    const t0 = performance.now();
    await s.infer(new Float32Array(512));
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(14);
    expect(took).toBeLessThan(15 + 500); // generous: the box may be busy
    expect(batcher.stats.longestWaitMs).toBeGreaterThanOrEqual(14);
    expect(batcher.stats.longestWaitMs).toBeLessThan(15 + 500);
  });

  it('keeps 8 kHz and 16 kHz windows in separate runs', async () => {
    const batcher = new VadBatcher(model, { maxWaitMs: 2 });
    const a = batcher.createStream(8000);
    const b = batcher.createStream(16000);
    const [pa, pb] = await Promise.all([a.infer(new Float32Array(256)), b.infer(new Float32Array(512))]);
    expect(pa).toBeGreaterThanOrEqual(0);
    expect(pb).toBeGreaterThanOrEqual(0);
    expect(batcher.stats).toMatchObject({ runs: 2, windows: 2, largestBatch: 1 });
  });

  it('close() rejects pending windows and refuses new ones', async () => {
    const batcher = new VadBatcher(model, { maxWaitMs: 1_000 });
    const s = batcher.createStream(8000);
    const pending = s.infer(new Float32Array(256));
    expect(batcher.pendingWindows).toBe(1);
    batcher.close();
    await expect(pending).rejects.toThrow(/closed/);
    await expect(batcher.createStream(8000).infer(new Float32Array(256))).rejects.toThrow(/closed/);
  });

  it('validates its options', () => {
    expect(() => new VadBatcher(model, { maxBatch: 0 })).toThrow(/maxBatch/);
    expect(() => new VadBatcher(model, { maxWaitMs: -1 })).toThrow(/maxWaitMs/);
  });
});
