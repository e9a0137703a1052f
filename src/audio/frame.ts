/**
 * The one internal audio type: PCM16 mono with an explicit sample rate.
 * G.711 exists only at the RTP edge; providers declare the rate they want and the
 * engine resamples at the plugin boundary.
 */
export const SAMPLE_RATES = [8000, 16000, 22050, 24000, 44100, 48000] as const;
export type SampleRate = (typeof SAMPLE_RATES)[number];

export interface AudioFrame {
  /** Signed 16-bit mono samples. */
  readonly samples: Int16Array;
  readonly sampleRate: SampleRate;
}

export function isSampleRate(n: number): n is SampleRate {
  return (SAMPLE_RATES as readonly number[]).includes(n);
}

export function makeFrame(samples: Int16Array, sampleRate: SampleRate): AudioFrame {
  return { samples, sampleRate };
}

export function silence(sampleRate: SampleRate, ms: number): AudioFrame {
  return { samples: new Int16Array(Math.round((sampleRate * ms) / 1000)), sampleRate };
}

export function durationMs(frame: AudioFrame): number {
  return (frame.samples.length * 1000) / frame.sampleRate;
}

/** Samples in one frame of `ms` milliseconds at `sampleRate`. */
export function samplesPerFrame(sampleRate: SampleRate, ms: number): number {
  return Math.round((sampleRate * ms) / 1000);
}

export function concatFrames(frames: readonly AudioFrame[]): AudioFrame {
  const first = frames[0];
  if (!first) throw new Error('concatFrames: no frames');
  let total = 0;
  for (const f of frames) {
    if (f.sampleRate !== first.sampleRate) {
      throw new Error(`concatFrames: mixed sample rates ${first.sampleRate} and ${f.sampleRate}`);
    }
    total += f.samples.length;
  }
  const out = new Int16Array(total);
  let off = 0;
  for (const f of frames) {
    out.set(f.samples, off);
    off += f.samples.length;
  }
  return { samples: out, sampleRate: first.sampleRate };
}

/** Root-mean-square level in dBFS (-Infinity for digital silence). */
export function rmsDbfs(samples: Int16Array): number {
  if (samples.length === 0) return -Infinity;
  let acc = 0;
  for (const s of samples) acc += s * s;
  const rms = Math.sqrt(acc / samples.length) / 32768;
  return rms === 0 ? -Infinity : 20 * Math.log10(rms);
}

/** Convert PCM16 to float32 in [-1, 1). */
export function toFloat32(samples: Int16Array, out: Float32Array = new Float32Array(samples.length)): Float32Array {
  for (let i = 0; i < samples.length; i++) out[i] = (samples[i] as number) / 32768;
  return out;
}

/** Split a frame into fixed-size chunks; a trailing partial chunk is returned as `rest`. */
export function splitFrame(frame: AudioFrame, chunk: number): { chunks: AudioFrame[]; rest: Int16Array } {
  const chunks: AudioFrame[] = [];
  let off = 0;
  while (off + chunk <= frame.samples.length) {
    chunks.push({ samples: frame.samples.subarray(off, off + chunk), sampleRate: frame.sampleRate });
    off += chunk;
  }
  return { chunks, rest: frame.samples.slice(off) };
}
