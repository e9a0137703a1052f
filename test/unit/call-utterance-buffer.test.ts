/**
 * UtteranceBuffer: the pre-roll kept while the caller is silent, capture from the onset,
 * the memory cap (oldest audio dropped and counted), and finish() trimming the tail after
 * the last speech packet. Each 20 ms frame carries its index as a constant sample value, so
 * the returned audio says exactly which frames it is made of.
 */
import { describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/audio/frame.js';
import { UtteranceBuffer } from '../../src/call/utterance-buffer.js';

const RATE = 8000;
const SPF = 160; // samples per 20 ms

/** Frame k: 20 ms of the value k + 1 (never 0, so padding would show). */
function frame(k: number): AudioFrame {
  return { samples: new Int16Array(SPF).fill(k + 1), sampleRate: RATE };
}

/** Frame k arrives at 20 * (k + 1) ms. */
const at = (k: number): number => 20 * (k + 1);

/** Which frame indices an utterance consists of (and that it is whole frames). */
function frameIndices(u: AudioFrame): number[] {
  expect(u.samples.length % SPF).toBe(0);
  const out: number[] = [];
  for (let off = 0; off < u.samples.length; off += SPF) {
    const v = u.samples[off] as number;
    expect(u.samples.subarray(off, off + SPF).every((s) => s === v)).toBe(true);
    out.push(v - 1);
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function feed(b: UtteranceBuffer, from: number, to: number): void {
  for (let k = from; k <= to; k++) b.push(frame(k), at(k));
}

describe('UtteranceBuffer', () => {
  it('keeps a pre-roll before the onset and captures through to the end of turn plus the tail', () => {
    const b = new UtteranceBuffer(RATE); // 300 ms pre-roll, 120 ms tail
    feed(b, 0, 100); // 2 s of silence, then speech from frame 100 (arrives at 2020 ms)
    expect(b.isCapturing).toBe(false);
    b.start(at(100));
    expect(b.isCapturing).toBe(true);
    feed(b, 101, 200); // speech until frame 180, then silence
    const u = b.finish(at(180));
    expect(u.sampleRate).toBe(RATE);
    // Pre-roll: frames arriving at or after onset - 300 ms (frame 85 arrives at 1720 ms).
    // Tail: frames arriving up to lastSpeech + 120 ms (frame 186).
    expect(frameIndices(u)).toEqual(range(85, 186));
    expect(b.isCapturing).toBe(false);
    expect(b.truncatedMs).toBe(0);
  });

  // Was a bug (fixed): while idle, push() prunes to `now - preRollMs - 40`, but VAD can only
  // declare speech after minSpeechMs (96 ms by default) of voiced audio plus window framing,
  // so by the time start(onsetAt) runs the frames between onset - 300 and now - 340 are
  // already gone: the caller's first ~60-120 ms of pre-roll is lost on every turn.
  it('keeps the full pre-roll when VAD declares speech ~120 ms after the onset (as Silero with minSpeechMs 96 does)', () => {
    const b = new UtteranceBuffer(RATE);
    feed(b, 0, 106); // onset at frame 100; the deciding window completes 6 frames later
    b.start(at(100));
    feed(b, 107, 200);
    expect(frameIndices(b.finish(at(180)))).toEqual(range(85, 186));
  });

  it('a custom pre-roll and tail', () => {
    const b = new UtteranceBuffer(RATE, 100);
    feed(b, 0, 40);
    b.start(at(40));
    feed(b, 41, 80);
    expect(frameIndices(b.finish(at(60), 40))).toEqual(range(35, 62));
  });

  it('without enough history the pre-roll is whatever there is', () => {
    const b = new UtteranceBuffer(RATE);
    feed(b, 0, 2);
    b.start(at(1));
    feed(b, 3, 10);
    expect(frameIndices(b.finish(at(10)))).toEqual(range(0, 10));
  });

  it('caps a never-ending utterance, dropping the oldest audio and counting it', () => {
    const b = new UtteranceBuffer(RATE, 300, 1000); // 1 s cap
    feed(b, 0, 9);
    b.start(at(10)); // frames 0..9 are all within the pre-roll: 200 ms captured
    feed(b, 10, 199); // 3.8 s more
    expect(b.truncatedMs).toBe(4000 - 1000);
    const u = b.finish(at(199));
    expect(frameIndices(u)).toEqual(range(150, 199));
    // The count belongs to the utterance it was measured on: a new onset resets it.
    feed(b, 200, 205);
    b.start(at(203));
    expect(b.truncatedMs).toBe(0);
  });

  it('finish() trims the tail: frames after lastSpeech + tail are not part of the utterance', () => {
    const b = new UtteranceBuffer(RATE);
    b.start(at(0));
    feed(b, 0, 99);
    // The VAD decides end of turn 600 ms after the last speech packet (frame 69).
    const u = b.finish(at(69));
    expect(frameIndices(u)).toEqual(range(0, 75));
    expect(u.samples.length).toBe(76 * SPF);
  });

  it('finish() on nothing gives an empty frame at the buffer rate', () => {
    const b = new UtteranceBuffer(16000);
    const u = b.finish(1234);
    expect(u.sampleRate).toBe(16000);
    expect(u.samples.length).toBe(0);
    // Also when everything buffered is after the tail.
    b.start(5000);
    b.push({ samples: new Int16Array(320).fill(1), sampleRate: 16000 }, 5020);
    expect(b.finish(4000).samples.length).toBe(0);
  });

  it('after finish the buffer is back to keeping only a pre-roll for the next turn', () => {
    const b = new UtteranceBuffer(RATE);
    b.start(at(0));
    feed(b, 0, 20);
    expect(frameIndices(b.finish(at(20)))).toEqual(range(0, 20));
    feed(b, 21, 190);
    b.start(at(190));
    feed(b, 191, 210);
    expect(frameIndices(b.finish(at(210)))).toEqual(range(175, 210));
  });

  it('the returned audio is a copy: later pushes and reuse of the input arrays do not change it', () => {
    const b = new UtteranceBuffer(RATE);
    const f = frame(3);
    b.start(0);
    b.push(f, 20);
    const u = b.finish(20);
    f.samples.fill(-1);
    b.push(frame(9), 40);
    expect(frameIndices(u)).toEqual([3]);
  });
});

describe('UtteranceBuffer storage', () => {
  it('gives the same audio across many turns of varying frame sizes (compaction and growth keep order)', () => {
    const b = new UtteranceBuffer(RATE, 300, 20_000);
    let t = 0;
    let v = 1;
    for (let turn = 0; turn < 30; turn++) {
      // Idle stretch of 10 ms and 20 ms frames, then an utterance of varying length.
      const idle = 20 + turn * 7;
      const expected: number[] = [];
      const kept: { at: number; vals: number[] }[] = [];
      for (let i = 0; i < idle; i++) {
        const n = i % 3 === 0 ? 80 : 160;
        t += (n * 1000) / RATE;
        const vals = Array.from({ length: n }, () => v++ % 30000);
        kept.push({ at: t, vals });
        b.push({ samples: Int16Array.from(vals), sampleRate: RATE }, t);
      }
      const onset = t;
      b.start(onset);
      const speech = 50 + turn * 13;
      for (let i = 0; i < speech; i++) {
        t += 20;
        const vals = Array.from({ length: 160 }, () => v++ % 30000);
        kept.push({ at: t, vals });
        b.push({ samples: Int16Array.from(vals), sampleRate: RATE }, t);
      }
      const last = t - 200;
      for (const k of kept) if (k.at >= onset - 300 && k.at <= last + 120) expected.push(...k.vals);
      const u = b.finish(last);
      expect(Array.from(u.samples)).toEqual(expected);
    }
  });

  it('refuses a frame at another sample rate', () => {
    const b = new UtteranceBuffer(RATE);
    expect(() => b.push({ samples: new Int16Array(320), sampleRate: 16000 }, 20)).toThrow(RangeError);
  });
});
