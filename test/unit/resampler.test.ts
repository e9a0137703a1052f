import { describe, expect, it } from 'vitest';
import type { AudioFrame, SampleRate } from '../../src/audio/frame.js';
import { createResampler, resampleFrame, RESAMPLER_PASSBAND } from '../../src/audio/resampler.js';

function tone(rate: SampleRate, hz: number, seconds: number, amplitude = 20000, phase = 0): AudioFrame {
  const n = Math.round(rate * seconds);
  const s = new Int16Array(n);
  for (let i = 0; i < n; i++) s[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate + phase));
  return { samples: s, sampleRate: rate };
}

/** RMS of the middle of a signal, skipping `edge` samples at each end (filter settling). */
function steadyRms(samples: Int16Array, edge: number): number {
  let acc = 0;
  let n = 0;
  for (let i = edge; i < samples.length - edge; i++) {
    const v = samples[i] as number;
    acc += v * v;
    n++;
  }
  return Math.sqrt(acc / n);
}

/** Amplitude of the component at `hz`, by projection onto sin/cos over the steady region. */
function componentAmplitude(frame: AudioFrame, hz: number, edge: number): number {
  let re = 0;
  let im = 0;
  let n = 0;
  for (let i = edge; i < frame.samples.length - edge; i++) {
    const w = (2 * Math.PI * hz * i) / frame.sampleRate;
    re += (frame.samples[i] as number) * Math.cos(w);
    im += (frame.samples[i] as number) * Math.sin(w);
    n++;
  }
  return (2 * Math.hypot(re, im)) / n;
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

function passbandTones(from: SampleRate, to: SampleRate): number[] {
  const edge = (RESAMPLER_PASSBAND * Math.min(from, to)) / 2;
  const tones = [60, 300, 1000, 2000];
  for (const f of [0.5, 0.7, 0.8, 0.9, 0.97, 1.0]) tones.push(Math.round(edge * f));
  return tones.filter((f) => f <= edge);
}

const PAIRS: Array<[SampleRate, SampleRate]> = [
  [8000, 16000],
  [16000, 8000],
  [48000, 8000],
  [8000, 48000],
  [24000, 16000],
  [22050, 16000],
  [22050, 8000],
  [16000, 24000],
  [44100, 48000],
];

describe('createResampler: frequency response', () => {
  for (const [from, to] of PAIRS) {
    it(`${from} -> ${to}: passband flat within ±0.05 dB`, () => {
      const edge = 400;
      for (const hz of passbandTones(from, to)) {
        const input = tone(from, hz, 0.5);
        const out = resampleFrame(input, to);
        const expected = 20000 / Math.SQRT2;
        const gainDb = db(steadyRms(out.samples, edge) / expected);
        expect(Math.abs(gainDb), `${hz} Hz gain ${gainDb.toFixed(4)} dB`).toBeLessThan(0.05);
      }
    });
  }

  const downs = PAIRS.filter(([from, to]) => to < from);
  for (const [from, to] of downs) {
    it(`${from} -> ${to}: tones above the target Nyquist are attenuated by at least 60 dB`, () => {
      const nyquist = to / 2;
      for (const ratio of [1.02, 1.1, 1.3, 1.7, 2.5]) {
        const hz = Math.round(nyquist * ratio);
        if (hz >= from / 2) continue;
        const out = resampleFrame(tone(from, hz, 0.5, 30000), to);
        const attenuationDb = db(steadyRms(out.samples, 400) / (30000 / Math.SQRT2));
        expect(attenuationDb, `${hz} Hz leaks at ${attenuationDb.toFixed(1)} dB`).toBeLessThan(-60);
      }
    });
  }

  // 44100 -> 48000 is left out: its images all land above 24 kHz, outside the output band.
  const ups = PAIRS.filter(([from, to]) => to > from && !(from === 44100 && to === 48000));
  for (const [from, to] of ups) {
    it(`${from} -> ${to}: spectral images are attenuated by at least 60 dB`, () => {
      let checked = 0;
      for (const hz of [500, 1500, Math.round(from * 0.42)]) {
        const out = resampleFrame(tone(from, hz, 0.5, 30000), to);
        // Upsampling by zero-stuffing mirrors the input spectrum around multiples of `from`.
        for (let k = 1; k * from - hz < to / 2; k++) {
          for (const image of [k * from - hz, k * from + hz]) {
            if (image >= to / 2) continue;
            const leak = db(componentAmplitude(out, image, 400) / 30000);
            expect(leak, `image of ${hz} Hz at ${image} Hz: ${leak.toFixed(1)} dB`).toBeLessThan(-60);
            checked++;
          }
        }
      }
      expect(checked).toBeGreaterThan(0);
    });
  }

  it('is time-aligned: output sample n is the input signal at time n / to', () => {
    for (const [from, to] of PAIRS) {
      const hz = 700;
      const out = resampleFrame(tone(from, hz, 0.3, 20000, 0.3), to);
      const ideal = tone(to, hz, 0.3, 20000, 0.3);
      let err = 0;
      let sig = 0;
      for (let i = 300; i < out.samples.length - 300; i++) {
        const d = (out.samples[i] as number) - (ideal.samples[i] as number);
        err += d * d;
        sig += (ideal.samples[i] as number) ** 2;
      }
      expect(10 * Math.log10(sig / err), `${from}->${to} alignment SNR`).toBeGreaterThan(50);
    }
  });
});

describe('createResampler: stream behaviour', () => {
  it('has DC gain exactly 1', () => {
    for (const [from, to] of PAIRS) {
      const dc: AudioFrame = { samples: new Int16Array(from / 10).fill(12345), sampleRate: from };
      const out = resampleFrame(dc, to);
      const edge = 200;
      for (let i = edge; i < out.samples.length - edge; i++) {
        expect(Math.abs((out.samples[i] as number) - 12345)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('8k -> 16k -> 8k round trip reproduces the input (SNR > 50 dB)', () => {
    const n = 8000;
    const s = new Int16Array(n);
    for (let i = 0; i < n; i++) {
      const t = i / 8000;
      s[i] = Math.round(
        6000 * Math.sin(2 * Math.PI * 300 * t) +
          5000 * Math.sin(2 * Math.PI * 1234 * t + 1) +
          4000 * Math.sin(2 * Math.PI * 2750 * t + 2) +
          3000 * Math.sin(2 * Math.PI * 3300 * t + 3),
      );
    }
    const back = resampleFrame(resampleFrame({ samples: s, sampleRate: 8000 }, 16000), 8000);
    expect(back.samples.length).toBe(n);
    let err = 0;
    let sig = 0;
    for (let i = 200; i < n - 200; i++) {
      const d = (back.samples[i] as number) - (s[i] as number);
      err += d * d;
      sig += (s[i] as number) ** 2;
    }
    expect(10 * Math.log10(sig / err)).toBeGreaterThan(50);
  });

  it('gives identical output for any chunking, including empty and one-sample chunks', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (const [from, to] of PAIRS) {
      const input = new Int16Array(Math.round(from * 0.25));
      for (let i = 0; i < input.length; i++) input[i] = Math.round((rand() * 2 - 1) * 20000);
      const whole = resampleFrame({ samples: input, sampleRate: from }, to);

      const r = createResampler(from, to);
      for (let pass = 0; pass < 2; pass++) {
        // Second pass: the resampler is reused after flush() as a fresh stream.
        const parts: Int16Array[] = [];
        let off = 0;
        while (off < input.length) {
          const size = Math.min(input.length - off, Math.floor(rand() * 700));
          parts.push(r.process({ samples: input.subarray(off, off + size), sampleRate: from }).samples);
          off += size;
        }
        parts.push(r.flush().samples);
        const joined = Int16Array.from(parts.flatMap((p) => Array.from(p)));
        expect(joined.length, `${from}->${to} length`).toBe(whole.samples.length);
        expect(Buffer.from(joined.buffer).equals(Buffer.from(whole.samples.buffer)), `${from}->${to} samples`).toBe(true);
      }
    }
  });

  it('emits ceil(n · to / from) samples per stream and holds back delaySamples', () => {
    for (const [from, to] of PAIRS) {
      const r = createResampler(from, to);
      const n = Math.round(from * 0.1) + 3;
      const body = r.process({ samples: new Int16Array(n), sampleRate: from }).samples.length;
      const tail = r.flush().samples.length;
      const total = Math.ceil((n * to) / from);
      expect(body + tail).toBe(total);
      expect(Math.abs(tail - r.delaySamples)).toBeLessThanOrEqual(1);
    }
  });

  it('reset() discards history: output equals a fresh resampler', () => {
    const input = tone(8000, 440, 0.1);
    const r = createResampler(8000, 16000);
    r.process(tone(8000, 1000, 0.05));
    r.reset();
    const a = r.process(input).samples;
    const b = createResampler(8000, 16000).process(input).samples;
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('is the identity, without copying, when the rates are equal', () => {
    const r = createResampler(16000, 16000);
    const f = tone(16000, 440, 0.02);
    expect(r.process(f)).toBe(f);
    expect(r.flush().samples.length).toBe(0);
    expect(r.delaySamples).toBe(0);
  });

  it('clamps instead of wrapping on full-scale input', () => {
    const n = 4000;
    const square = new Int16Array(n);
    for (let i = 0; i < n; i++) square[i] = Math.floor(i / 20) % 2 === 0 ? 32767 : -32768;
    const out = resampleFrame({ samples: square, sampleRate: 16000 }, 8000);
    // Gibbs overshoot would wrap to the opposite sign without clamping.
    for (let i = 100; i < out.samples.length - 100; i++) {
      const expectedSign = Math.floor((2 * i) / 20) % 2 === 0 ? 1 : -1;
      const v = out.samples[i] as number;
      if (Math.abs(v) > 30000) expect(Math.sign(v)).toBe(expectedSign);
    }
  });

  it('rejects frames at the wrong rate', () => {
    expect(() => createResampler(8000, 16000).process(tone(16000, 440, 0.01))).toThrow(/expects 8000/);
  });
});
