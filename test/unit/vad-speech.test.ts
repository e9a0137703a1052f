/**
 * Silero VAD on real (synthesized) speech through the whole per-call pipeline, at the
 * model's native 8 kHz and 16 kHz, in 20 ms packets; plus the WAV parser the speech
 * helper relies on. Needs espeak-ng on the PATH.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallVad } from '../../src/audio/vad/call-vad.js';
import { isVadSampleRate, type VadSampleRate } from '../../src/audio/vad/silero-layout.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import type { VadStreamSource } from '../../src/audio/vad/silero-stream.js';
import type { TurnEvent } from '../../src/audio/vad/turn-detector.js';
import { VadBatcher } from '../../src/audio/vad/vad-batcher.js';
import type { AudioFrame } from '../../src/audio/frame.js';
import { composeClip, packetize, parseWav, whiteNoise, type ComposedClip } from '../support/speech.js';

const PACKET_MS = 20;

let model: SileroVadModel;
beforeAll(async () => {
  model = await SileroVadModel.load();
});
afterAll(async () => {
  await model.close();
});

function twoUtterances(rate: VadSampleRate): Promise<ComposedClip> {
  return composeClip(rate, [
    { kind: 'silence', ms: 500 },
    { kind: 'speech', text: 'Hello, I would like to check my order status.' },
    { kind: 'silence', ms: 1200 },
    { kind: 'speech', text: 'Thank you.' },
    { kind: 'silence', ms: 1500 },
  ]);
}

/**
 * Play a clip into CallVads in real-time order: packet i covers [20i, 20i + 20) ms of the
 * clip and arrives at 20(i + 1) (the moment its last sample exists). Several calls may share
 * one source (the batcher): every call gets its packet before anyone waits for inference.
 */
async function play(source: VadStreamSource, clips: AudioFrame[], windowSamples?: number): Promise<TurnEvent[][]> {
  let now = 0;
  const calls = clips.map((clip) => {
    const rate = clip.sampleRate;
    if (!isVadSampleRate(rate)) throw new Error(`VAD runs at 8 or 16 kHz, not ${rate}`);
    const vad = new CallVad(source, { sampleRate: rate, windowSamples, now: () => now });
    const events: TurnEvent[] = [];
    vad.onEvent((e) => events.push(e));
    return { vad, events, packets: packetize(clip, PACKET_MS) };
  });
  const longest = Math.max(...calls.map((c) => c.packets.length));
  for (let i = 0; i < longest; i++) {
    now = (i + 1) * PACKET_MS;
    for (const c of calls) {
      const p = c.packets[i];
      if (p) c.vad.push(p, now);
    }
    await Promise.all(calls.map((c) => c.vad.whenIdle()));
  }
  for (const c of calls) c.vad.close();
  return calls.map((c) => c.events);
}

/** Wire time of the packet holding the audio at clip time `ms`. */
const packetArrival = (ms: number): number => (Math.floor(ms / PACKET_MS) + 1) * PACKET_MS;

describe('CallVad on synthesized speech', () => {
  // The default 32 ms windows at both rates, and v4's 64 ms windows at 8 kHz (half the CPU).
  for (const [rate, windowSamples] of [
    [8000, 256],
    [16000, 512],
    [8000, 512],
  ] as const) {
    const windowMs = (windowSamples * 1000) / rate;
    it(`${rate} Hz, ${windowMs} ms windows: two utterances give exactly two turns with wire times near the truth`, async () => {
      const clip = await twoUtterances(rate);
      const [events] = await play(model, [clip.frame], windowSamples);
      expect(events?.map((e) => e.type)).toEqual(['speech_start', 'speech_end', 'speech_start', 'speech_end']);
      const starts = events?.filter((e) => e.type === 'speech_start') ?? [];
      const ends = events?.filter((e) => e.type === 'speech_end') ?? [];
      clip.speech.forEach((truth, i) => {
        const start = starts[i] as Extract<TurnEvent, { type: 'speech_start' }>;
        const end = ends[i] as Extract<TurnEvent, { type: 'speech_end' }>;
        const onsetError = start.onsetAt - packetArrival(truth.startMs);
        const endError = end.lastSpeechAt - packetArrival(truth.endMs - 1);
        // ±100 ms with 32 ms windows; a 64 ms window blurs each boundary by 32 ms more.
        const tolerance = 68 + windowMs;
        expect(Math.abs(onsetError), `utterance ${i} onset error ${onsetError} ms`).toBeLessThanOrEqual(tolerance);
        expect(Math.abs(endError), `utterance ${i} end error ${endError} ms`).toBeLessThanOrEqual(tolerance);
        // Barge-in needs minSpeechMs (96) of voiced windows; end of turn needs 600 ms of silence.
        expect(start.decidedAt - start.onsetAt).toBeGreaterThanOrEqual(96 - PACKET_MS);
        expect(start.decidedAt - start.onsetAt).toBeLessThanOrEqual(96 + 2 * windowMs);
        expect(end.decidedAt - end.lastSpeechAt).toBeGreaterThanOrEqual(600);
        expect(end.decidedAt - end.lastSpeechAt).toBeLessThanOrEqual(600 + 2 * windowMs + 40);
      });
    });
  }

  for (const rate of [8000, 16000] as const) {
    it(`${rate} Hz: digital silence and white noise never start speech`, async () => {
      const quiet = { samples: new Int16Array(rate * 3), sampleRate: rate } satisfies AudioFrame;
      const lowNoise = whiteNoise(rate, 3000, -50, 11);
      const loudNoise = whiteNoise(rate, 3000, -30, 12);
      const results = await play(model, [quiet, lowNoise, loudNoise]);
      expect(results).toEqual([[], [], []]);
    });
  }

  it('batched calls decide exactly as unbatched ones, with real batches', async () => {
    const clip8 = (await twoUtterances(8000)).frame;
    // A second caller who starts talking 300 ms later, and a third who only hisses.
    const delayed = { samples: new Int16Array(clip8.samples.length + 2400), sampleRate: 8000 } satisfies AudioFrame;
    delayed.samples.set(clip8.samples, 2400);
    const hiss = whiteNoise(8000, 4000, -40, 5);
    const clips = [clip8, delayed, hiss];

    const unbatched = await play(model, clips);
    const batcher = new VadBatcher(model, { maxWaitMs: 2 });
    const batched = await play(batcher, clips);
    expect(batched).toEqual(unbatched);
    expect(unbatched[0]).toHaveLength(4);
    expect(unbatched[1]).toHaveLength(4);
    expect(batcher.stats.largestBatch).toBeGreaterThan(1);
  });
});

describe('parseWav', () => {
  function wav(chunks: Array<[string, Buffer]>): Buffer {
    const body = Buffer.concat(
      chunks.map(([id, data]) => {
        const head = Buffer.alloc(8);
        head.write(id, 0, 'ascii');
        head.writeUInt32LE(data.length, 4);
        return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
      }),
    );
    const riff = Buffer.alloc(12);
    riff.write('RIFF', 0, 'ascii');
    riff.writeUInt32LE(4 + body.length, 4);
    riff.write('WAVE', 8, 'ascii');
    return Buffer.concat([riff, body]);
  }
  function fmt(channels: number, rate: number, format = 1, bits = 16): Buffer {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(format, 0);
    b.writeUInt16LE(channels, 2);
    b.writeUInt32LE(rate, 4);
    b.writeUInt32LE(rate * channels * (bits / 8), 8);
    b.writeUInt16LE(channels * (bits / 8), 12);
    b.writeUInt16LE(bits, 14);
    return b;
  }
  const pcm = (values: number[]): Buffer => {
    const b = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => b.writeInt16LE(v, i * 2));
    return b;
  };

  it('walks the chunk list instead of assuming a 44-byte header (odd chunk padded)', () => {
    const buf = wav([
      ['fmt ', fmt(1, 22050)],
      ['LIST', Buffer.from('INFOISFT\x05\x00\x00\x00abcde', 'binary')], // odd length: 17 bytes + pad
      ['data', pcm([1, -2, 32767, -32768])],
    ]);
    expect(buf.indexOf('data')).toBeGreaterThan(44);
    const out = parseWav(buf);
    expect(out.sampleRate).toBe(22050);
    expect(Array.from(out.samples)).toEqual([1, -2, 32767, -32768]);
  });

  it('averages channels and tolerates streaming placeholder sizes', () => {
    const buf = wav([
      ['fmt ', fmt(2, 16000)],
      ['data', pcm([100, 300, -100, -300])],
    ]);
    buf.writeUInt32LE(0xffffffff, buf.indexOf('data') + 4);
    const out = parseWav(buf);
    expect(out.channels).toBe(2);
    expect(Array.from(out.samples)).toEqual([200, -200]);
  });

  it('rejects what it cannot read', () => {
    expect(() => parseWav(Buffer.from('not a wav file at all'))).toThrow(/RIFF/);
    expect(() => parseWav(wav([['fmt ', fmt(1, 8000, 3, 32)], ['data', Buffer.alloc(8)]]))).toThrow(/16-bit PCM/);
    expect(() => parseWav(wav([['fmt ', fmt(1, 8000)]]))).toThrow(/no data chunk/);
  });
});
