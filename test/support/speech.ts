/**
 * Offline test speech: espeak-ng (or flite) -> WAV -> PCM16 -> the engine's resampler ->
 * AudioFrame, plus helpers to compose speech, silence and noise into one clip whose true
 * speech boundaries are known, and to cut it into RTP-sized packets.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isSampleRate, type AudioFrame, type SampleRate } from '../../src/audio/frame.js';
import { resampleFrame } from '../../src/audio/resampler.js';

const run = promisify(execFile);

// One WAV reader for the whole project (src/audio/wav.ts); re-exported for the tests.
export { parseWav, type WavPcm } from '../../src/audio/wav.js';
import { parseWav } from '../../src/audio/wav.js';

export type TtsEngine = 'espeak-ng' | 'flite';

export interface SynthOptions {
  engine?: TtsEngine;
  /** espeak-ng voice (default "en-us") or flite voice (default "slt"). */
  voice?: string;
  /** espeak-ng speaking rate, words per minute (default 160). */
  wpm?: number;
}

const synthCache = new Map<string, Promise<AudioFrame>>();

/** Speak `text` offline at the engine's native rate (espeak-ng: 22050 Hz). Cached per text. */
export function synthesize(text: string, options: SynthOptions = {}): Promise<AudioFrame> {
  const engine = options.engine ?? 'espeak-ng';
  const key = JSON.stringify([engine, options.voice, options.wpm, text]);
  let p = synthCache.get(key);
  if (!p) {
    p = synthesizeUncached(text, engine, options);
    synthCache.set(key, p);
    p.catch(() => synthCache.delete(key));
  }
  return p;
}

async function synthesizeUncached(text: string, engine: TtsEngine, options: SynthOptions): Promise<AudioFrame> {
  const dir = await mkdtemp(join(tmpdir(), 'sb-speech-'));
  const wav = join(dir, 'speech.wav');
  try {
    if (engine === 'espeak-ng') {
      await run('espeak-ng', ['-v', options.voice ?? 'en-us', '-s', String(options.wpm ?? 160), '-w', wav, text]);
    } else {
      await run('flite', ['-voice', options.voice ?? 'slt', '-t', text, '-o', wav]);
    }
    const pcm = parseWav(await readFile(wav));
    if (!isSampleRate(pcm.sampleRate)) throw new Error(`${engine} produced ${pcm.sampleRate} Hz, not a SampleRate`);
    return { samples: pcm.samples, sampleRate: pcm.sampleRate };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Speak `text` and convert it to `rate` with the engine's own resampler. */
export async function speechAt(text: string, rate: SampleRate, options: SynthOptions = {}): Promise<AudioFrame> {
  return resampleFrame(await synthesize(text, options), rate);
}

/** Deterministic white noise at `dbfs` RMS (uniform, seeded). */
export function whiteNoise(rate: SampleRate, ms: number, dbfs: number, seed = 1): AudioFrame {
  const n = Math.round((rate * ms) / 1000);
  const rms = 32768 * 10 ** (dbfs / 20);
  const peak = rms * Math.sqrt(3); // uniform on [-a, a] has RMS a / sqrt(3)
  let state = seed >>> 0 || 1;
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    samples[i] = Math.round((state / 4294967296) * 2 * peak - peak);
  }
  return { samples, sampleRate: rate };
}

// Where the sound is in a frame: the same function the demo caller uses.
export { voicedExtent } from '../../src/demo/speech.js';
import { voicedExtent } from '../../src/demo/speech.js';

export type ClipPart =
  /** Speech, trimmed to its voiced extent unless `keepPadding` (TTS adds silence around it). */
  | { kind: 'speech'; text: string; options?: SynthOptions; keepPadding?: boolean }
  | { kind: 'silence'; ms: number }
  | { kind: 'noise'; ms: number; dbfs: number; seed?: number };

export interface ClipSegment {
  kind: ClipPart['kind'];
  /** Position of the part in the clip, ms. */
  startMs: number;
  endMs: number;
  /** Speech parts: where the voice itself starts and ends in the clip (TTS pads with silence). */
  voiceStartMs?: number;
  voiceEndMs?: number;
}

export interface ComposedClip {
  frame: AudioFrame;
  segments: ClipSegment[];
  /** The speech parts' voiced extents, in clip order. */
  speech: Array<{ startMs: number; endMs: number }>;
}

/** Concatenate speech, silence and noise at `rate`, recording where each part landed. */
export async function composeClip(rate: SampleRate, parts: readonly ClipPart[]): Promise<ComposedClip> {
  const pieces: AudioFrame[] = [];
  const segments: ClipSegment[] = [];
  let at = 0;
  for (const part of parts) {
    let piece: AudioFrame;
    let voice: { startMs: number; endMs: number } | undefined;
    if (part.kind === 'speech') {
      piece = await speechAt(part.text, rate, part.options);
      voice = voicedExtent(piece);
      if (!voice) throw new Error(`synthesized "${part.text}" is silent`);
      if (!part.keepPadding) {
        const from = Math.round((voice.startMs * rate) / 1000);
        const to = Math.round((voice.endMs * rate) / 1000);
        piece = { samples: piece.samples.slice(from, to), sampleRate: rate };
        voice = { startMs: 0, endMs: ((to - from) * 1000) / rate };
      }
    } else if (part.kind === 'silence') {
      piece = { samples: new Int16Array(Math.round((rate * part.ms) / 1000)), sampleRate: rate };
    } else {
      piece = whiteNoise(rate, part.ms, part.dbfs, part.seed);
    }
    const startMs = (at * 1000) / rate;
    const endMs = ((at + piece.samples.length) * 1000) / rate;
    const seg: ClipSegment = { kind: part.kind, startMs, endMs };
    if (voice) {
      seg.voiceStartMs = startMs + voice.startMs;
      seg.voiceEndMs = startMs + voice.endMs;
    }
    segments.push(seg);
    pieces.push(piece);
    at += piece.samples.length;
  }
  const samples = new Int16Array(at);
  let off = 0;
  for (const p of pieces) {
    samples.set(p.samples, off);
    off += p.samples.length;
  }
  const speech = segments
    .filter((s) => s.kind === 'speech')
    .map((s) => ({ startMs: s.voiceStartMs as number, endMs: s.voiceEndMs as number }));
  return { frame: { samples, sampleRate: rate }, segments, speech };
}

/** Cut a frame into consecutive packets of `ms` (the last one may be shorter). */
export function packetize(frame: AudioFrame, ms = 20): AudioFrame[] {
  const size = Math.round((frame.sampleRate * ms) / 1000);
  const out: AudioFrame[] = [];
  for (let off = 0; off < frame.samples.length; off += size) {
    out.push({ samples: frame.samples.subarray(off, off + size), sampleRate: frame.sampleRate });
  }
  return out;
}
