/**
 * The callers' audio: offline speech (espeak-ng through test/support/speech.ts) composed with
 * silences whose positions are known, written as 8 kHz 16-bit WAV for SIPp.
 */
import { writeFile } from 'node:fs/promises';
import type { SampleRate } from '../../src/audio/frame.js';
import { composeClip, type ClipPart, type ComposedClip } from '../../test/support/speech.js';

/** 16-bit mono PCM WAV. */
export function wavBytes(samples: Int16Array, sampleRate: number): Buffer {
  const data = samples.length * 2;
  const b = Buffer.alloc(44 + data);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + data, 4);
  b.write('WAVE', 8, 'ascii');
  b.write('fmt ', 12, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(data, 40);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i] as number, 44 + 2 * i);
  return b;
}

export interface WrittenClip extends ComposedClip {
  path: string;
  durationMs: number;
}

async function writeClip(path: string, rate: SampleRate, parts: ClipPart[]): Promise<WrittenClip> {
  const clip = await composeClip(rate, parts);
  await writeFile(path, wavBytes(clip.frame.samples, rate));
  return { ...clip, path, durationMs: (clip.frame.samples.length * 1000) / rate };
}

const speech = (text: string): ClipPart => ({ kind: 'speech', text });
const pause = (ms: number): ClipPart => ({ kind: 'silence', ms });

/**
 * Concurrency caller, looped for the whole call: four utterances of about 1-2 s, with 1.5 s
 * and 3 s pauses. After a 1.5 s pause the caller speaks again while the echo of the previous
 * utterance is still playing (a barge-in); after 3 s the echo plays out.
 */
export function concurrencyClip(path: string): Promise<WrittenClip> {
  return writeClip(path, 8000, [
    pause(500),
    speech('I would like to check my order.'),
    pause(1500),
    speech('It was placed last Tuesday.'),
    pause(3000),
    speech('Can you tell me when it arrives?'),
    pause(1500),
    speech('Thank you very much.'),
    pause(3000),
  ]);
}

/** Sentences of the latency caller: A (about 2 s, then silence until its echo is playing), B (the barge-in). */
export const LATENCY_CYCLES: ReadonlyArray<{ a: string; b: string }> = [
  { a: 'I need to change my booking for tomorrow.', b: 'Sorry, one more thing.' },
  { a: 'My scooter will not unlock at the station.', b: 'Wait, let me check.' },
  { a: 'Please send the invoice to my email.', b: 'Actually, hold on.' },
];

/**
 * Latency caller, played once: lead-in silence (call setup), then per cycle
 * A, `gapMs` silence (end of turn; the echo of A starts ~630 ms after A), B while the echo of
 * A plays (barge-in), then `tailMs` silence so the echo of B plays out in full.
 */
export function latencyClip(path: string, opts: { cycles: number; gapMs: number; tailMs: number; leadMs: number }): Promise<WrittenClip> {
  const parts: ClipPart[] = [pause(opts.leadMs)];
  for (let i = 0; i < opts.cycles; i++) {
    const c = LATENCY_CYCLES[i % LATENCY_CYCLES.length] as { a: string; b: string };
    parts.push(speech(c.a), pause(opts.gapMs), speech(c.b), pause(opts.tailMs));
  }
  return writeClip(path, 8000, parts);
}
