/**
 * CallVad mechanics with a scripted model: rechunking, wire timestamps, ordering under slow
 * inference, the bounded queue, reset and close. Real-model behaviour is in vad-speech.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/audio/frame.js';
import { CallVad, type CallVadOptions } from '../../src/audio/vad/call-vad.js';
import type { VadSampleRate } from '../../src/audio/vad/silero-layout.js';
import type { VadStream, VadStreamSource } from '../../src/audio/vad/silero-stream.js';
import type { TurnEvent } from '../../src/audio/vad/turn-detector.js';
import type { SessionVad } from '../../src/call/session-ports.js';

/** Probability from loudness: RMS above 0.01 is speech. */
function loudness(window: Float32Array): number {
  let acc = 0;
  for (const v of window) acc += v * v;
  return Math.sqrt(acc / window.length) > 0.01 ? 0.95 : 0.02;
}

class ScriptedStream implements VadStream {
  readonly windows: Float32Array[] = [];
  readonly pending: Array<{ resolve: (p: number) => void; reject: (e: Error) => void; window: Float32Array }> = [];
  inFlight = 0;
  maxInFlight = 0;
  resets = 0;
  closed = false;

  constructor(
    readonly sampleRate: VadSampleRate,
    readonly windowSamples: number,
    private readonly manual: boolean,
  ) {}

  infer(window: Float32Array): Promise<number> {
    this.windows.push(window.slice()); // the caller may reuse the buffer once settled
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const done = (): void => {
      this.inFlight--;
    };
    if (!this.manual) {
      done();
      return Promise.resolve(loudness(window));
    }
    return new Promise<number>((resolve, reject) => {
      this.pending.push({
        window,
        resolve: (p) => {
          done();
          resolve(p);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
    });
  }

  /** Complete the oldest pending inference with the loudness probability (or an error). */
  release(error?: Error): void {
    const next = this.pending.shift();
    if (!next) throw new Error('nothing in flight');
    if (error) next.reject(error);
    else next.resolve(loudness(next.window));
  }

  reset(): void {
    this.resets++;
  }

  close(): void {
    this.closed = true;
  }
}

class ScriptedSource implements VadStreamSource {
  stream: ScriptedStream | undefined;
  constructor(private readonly manual = false) {}
  createStream(sampleRate: VadSampleRate, windowSamples?: number): VadStream {
    this.stream = new ScriptedStream(sampleRate, windowSamples ?? (sampleRate === 8000 ? 256 : 512), this.manual);
    return this.stream;
  }
}

/** Samples [from, to) loud (a 1 kHz tone at -12 dBFS), the rest digital silence. */
function audio(rate: VadSampleRate, total: number, loud: Array<[number, number]>): Int16Array {
  const s = new Int16Array(total);
  for (const [from, to] of loud) for (let i = from; i < to; i++) s[i] = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / rate));
  return s;
}

interface Harness {
  vad: CallVad;
  source: ScriptedSource;
  events: TurnEvent[];
  clock: { t: number };
  /** Push `samples` as 20 ms packets; packet i arrives at start + 20 i (the clock follows). */
  pushPackets(samples: Int16Array, start?: number): Promise<void>;
}

function harness(options: Partial<CallVadOptions> & { manual?: boolean } = {}): Harness {
  const rate = options.sampleRate ?? 8000;
  const source = new ScriptedSource(options.manual ?? false);
  const clock = { t: 0 };
  // These tests script "silence" as digital zero: the silence floor is tested on its own below.
  const vad = new CallVad(source, { sampleRate: rate, now: () => clock.t, silenceFloorDbfs: null, ...options });
  const events: TurnEvent[] = [];
  vad.onEvent((e) => events.push(e));
  const packet = rate / 50;
  return {
    vad,
    source,
    events,
    clock,
    async pushPackets(samples, start = 1000) {
      for (let i = 0; i * packet < samples.length; i++) {
        clock.t = start + 20 * i;
        const frame: AudioFrame = { samples: samples.subarray(i * packet, (i + 1) * packet), sampleRate: rate };
        vad.push(frame, clock.t);
        await flush(); // let inference that is ready settle before the next packet "arrives"
      }
    },
  };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CallVad', () => {
  it('satisfies the call session’s SessionVad port', () => {
    const vad: SessionVad = new CallVad(new ScriptedSource(), { sampleRate: 8000 });
    expect(vad.endOfTurnSilenceMs).toBe(600);
    vad.close();
  });

  it('rechunks 20 ms packets into 256-sample windows, carrying the remainder', async () => {
    const h = harness();
    const samples = audio(8000, 1200, [[0, 1200]]);
    // Irregular packet sizes: 100, 300, 7, 793 samples.
    let off = 0;
    for (const size of [100, 300, 7, 793]) {
      h.vad.push({ samples: samples.subarray(off, off + size), sampleRate: 8000 }, off);
      off += size;
    }
    await h.vad.whenIdle();
    const windows = h.source.stream?.windows ?? [];
    expect(windows).toHaveLength(4); // 1200 = 4 × 256 + 176 carried
    windows.forEach((w, k) => {
      expect(w.length).toBe(256);
      for (let i = 0; i < 256; i++) expect(w[i]).toBe((samples[k * 256 + i] as number) / 32768);
    });
    expect(h.vad.stats.windowsProcessed).toBe(4);
  });

  it('stamps events with the arrival of the onset packet and of the last speech packet', async () => {
    const h = harness({ turn: { minSpeechMs: 64, endOfTurnSilenceMs: 64 } });
    // Windows 2 and 3 (samples 512..1023) are loud.
    await h.pushPackets(audio(8000, 2400, [[512, 1024]]));
    await h.vad.whenIdle();
    // Window 2 starts at sample 512, inside packet 3 (samples 480..639): arrives 1060.
    // Window 3 ends at sample 1023, inside packet 6 (960..1119): arrives 1120.
    // Window 5 (1280..1535) completes the 64 ms of silence: packet 9 arrives 1180.
    expect(h.events).toEqual([
      { type: 'speech_start', onsetAt: 1060, decidedAt: 1120 },
      { type: 'speech_end', lastSpeechAt: 1120, decidedAt: 1180, speechMs: 64, tooShort: false },
    ]);
    expect(h.vad.stats).toMatchObject({ speechStarts: 1, speechEnds: 1, windowsProcessed: 9 });
    expect(h.vad.speaking).toBe(false);
  });

  it('at 16 kHz uses 512-sample windows over 320-sample packets', async () => {
    const h = harness({ sampleRate: 16000, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 64 } });
    // Window 1 (samples 512..1023) loud: starts in packet 1 (320..639) and ends in packet 3 (960..1279).
    await h.pushPackets(audio(16000, 3200, [[512, 1024]]));
    await h.vad.whenIdle();
    expect(h.source.stream?.windowSamples).toBe(512);
    expect(h.events).toEqual([
      { type: 'speech_start', onsetAt: 1020, decidedAt: 1060 },
      { type: 'speech_end', lastSpeechAt: 1060, decidedAt: 1120, speechMs: 32, tooShort: false },
    ]);
  });

  it('keeps one window in flight and emits in audio order however slow inference is', async () => {
    const h = harness({ manual: true, maxQueuedWindows: 100, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 32 } });
    await h.pushPackets(audio(8000, 256 * 12, [[256, 512], [1024, 1280], [1792, 2048]]));
    const stream = h.source.stream as ScriptedStream;
    expect(stream.pending).toHaveLength(1);
    for (let i = 0; i < 12; i++) {
      stream.release();
      await flush();
    }
    await h.vad.whenIdle();
    expect(stream.maxInFlight).toBe(1);
    expect(h.events.map((e) => e.type)).toEqual([
      'speech_start',
      'speech_end',
      'speech_start',
      'speech_end',
      'speech_start',
      'speech_end',
    ]);
    const times = h.events.map((e) => (e.type === 'speech_start' ? e.onsetAt : e.lastSpeechAt));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('drops the oldest windows when inference falls behind, coalescing them into one gap', async () => {
    const h = harness({ manual: true, maxQueuedWindows: 4, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 96 } });
    // 20 windows of speech while inference is stalled on the first one.
    await h.pushPackets(audio(8000, 256 * 20, [[0, 256 * 20]]));
    const stream = h.source.stream as ScriptedStream;
    expect(h.vad.stats.windowsDropped).toBe(20 - 1 - 4);
    expect(h.vad.stats.maxQueued).toBe(5);
    while (stream.pending.length > 0) {
      stream.release();
      await flush();
    }
    await h.vad.whenIdle();
    expect(stream.windows).toHaveLength(5);
    expect(h.vad.stats).toMatchObject({ windowsProcessed: 5, windowsDropped: 15 });
    // The gap held "speech", so the turn is still open; silence then ends it.
    expect(h.events.map((e) => e.type)).toEqual(['speech_start']);
    await h.pushPackets(new Int16Array(256 * 4), 2000);
    while (stream.pending.length > 0) {
      stream.release();
      await flush();
    }
    await h.vad.whenIdle();
    expect(h.events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
  });

  it('reset() drops the partial window, queued windows and the in-flight result', async () => {
    const h = harness({ manual: true, turn: { minSpeechMs: 32 } });
    const stream = h.source.stream as ScriptedStream;
    await h.pushPackets(audio(8000, 256 * 3 + 100, [[0, 256 * 3 + 100]]));
    expect(stream.pending).toHaveLength(1);
    h.vad.reset();
    expect(stream.resets).toBe(1);
    stream.release(); // the stale result
    await flush();
    await h.vad.whenIdle();
    expect(h.events).toEqual([]);
    expect(stream.windows).toHaveLength(1);
    // The 100 carried samples are gone: the next window is made only of new audio.
    const fresh = audio(8000, 256, [[0, 256]]);
    h.clock.t = 5000;
    h.vad.push({ samples: fresh, sampleRate: 8000 }, 5000);
    stream.release();
    await h.vad.whenIdle();
    expect(stream.windows[1]?.[0]).toBe((fresh[0] as number) / 32768);
    expect(h.events).toEqual([{ type: 'speech_start', onsetAt: 5000, decidedAt: 5000 }]);
  });

  it('close() releases the stream, stops events and ignores later audio', async () => {
    const h = harness({ manual: true, turn: { minSpeechMs: 32 } });
    const stream = h.source.stream as ScriptedStream;
    await h.pushPackets(audio(8000, 512, [[0, 512]]));
    h.vad.close();
    expect(stream.closed).toBe(true);
    await h.vad.whenIdle();
    stream.release();
    await flush();
    await h.pushPackets(audio(8000, 512, [[0, 512]]));
    expect(stream.windows).toHaveLength(1);
    expect(h.events).toEqual([]);
  });

  it('reports inference failures and listener exceptions without stalling', async () => {
    const h = harness({ manual: true, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 32 } });
    const errors: unknown[] = [];
    h.vad.onError((e) => errors.push(e));
    h.vad.onEvent(() => {
      throw new Error('listener broke');
    });
    const stream = h.source.stream as ScriptedStream;
    await h.pushPackets(audio(8000, 256 * 3, [[256, 512]]));
    stream.release(new Error('session gone'));
    await flush();
    stream.release();
    await flush();
    stream.release();
    await h.vad.whenIdle();
    expect(h.vad.stats).toMatchObject({ inferenceErrors: 1, windowsProcessed: 2 });
    expect(h.events.map((e) => e.type)).toEqual(['speech_start', 'speech_end']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['session gone', 'listener broke', 'listener broke']);
  });

  it('rejects frames at another rate', () => {
    const h = harness();
    expect(() => h.vad.push({ samples: new Int16Array(320), sampleRate: 16000 }, 0)).toThrow(/8000 Hz/);
  });

  describe('silence floor', () => {
    /** Samples [from, to) as low white-ish noise at about `dbfs` RMS (deterministic), elsewhere zero. */
    function quietNoise(total: number, dbfs: number): Int16Array {
      const s = new Int16Array(total);
      const amp = 32768 * 10 ** (dbfs / 20) * Math.sqrt(3); // uniform in [-a, a] has RMS a / sqrt(3)
      let x = 12345;
      for (let i = 0; i < total; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        s[i] = Math.round(((x / 0x7fffffff) * 2 - 1) * amp);
      }
      return s;
    }

    it('decides quiet windows unvoiced without the model, in audio order, and counts them', async () => {
      const h = harness({ silenceFloorDbfs: -60, turn: { minSpeechMs: 64, endOfTurnSilenceMs: 64 } });
      // Windows 0-1 silent, 2-3 loud, 4-8 silent (9 windows of 256 samples).
      await h.pushPackets(audio(8000, 2304, [[512, 1024]]));
      await h.vad.whenIdle();
      const stream = h.source.stream as ScriptedStream;
      // The model saw the two loud windows plus one primer (window 1, the last quiet one before them).
      expect(stream.windows).toHaveLength(3);
      expect(stream.windows[0]!.every((v) => v === 0)).toBe(true);
      expect(h.vad.stats).toMatchObject({ windowsProcessed: 2, windowsPrimed: 1, windowsQuiet: 7 });
      // The same events, at the same wire times, as with every window inferred (test above).
      expect(h.events).toEqual([
        { type: 'speech_start', onsetAt: 1060, decidedAt: 1120 },
        { type: 'speech_end', lastSpeechAt: 1120, decidedAt: 1180, speechMs: 64, tooShort: false },
      ]);
    });

    it('lets through windows above the floor: line noise at -50 dBFS is inferred, -70 dBFS is not', async () => {
      const loud = harness({ silenceFloorDbfs: -60 });
      await loud.pushPackets(quietNoise(256 * 6, -50));
      await loud.vad.whenIdle();
      expect(loud.vad.stats).toMatchObject({ windowsProcessed: 6, windowsQuiet: 0 });
      const hushed = harness({ silenceFloorDbfs: -60 });
      await hushed.pushPackets(quietNoise(256 * 6, -70));
      await hushed.vad.whenIdle();
      expect(hushed.vad.stats).toMatchObject({ windowsProcessed: 0, windowsQuiet: 6 });
      expect(hushed.source.stream?.windows).toHaveLength(0);
    });

    it('keeps the model state across quiet runs and primes it with the last quiet window after a long one', async () => {
      const h = harness({ silenceFloorDbfs: -60, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 64 } });
      // 3 quiet windows (cold start: primed), loud, 12 quiet (a long run: primed), loud, quiet tail.
      const w = 256;
      await h.pushPackets(audio(8000, w * 20, [[3 * w, 4 * w], [16 * w, 17 * w]]));
      await h.vad.whenIdle();
      const stream = h.source.stream as ScriptedStream;
      expect(stream.resets).toBe(0);
      expect(h.vad.stats.windowsPrimed).toBe(2);
      // Each primer is the quiet window just before its loud one (all zeros here), inferred right before it.
      const loudAt = stream.windows.findIndex((w) => w.some((v) => v !== 0));
      expect(stream.windows[loudAt - 1]!.every((v) => v === 0)).toBe(true);
      expect(h.events.map((e) => e.type)).toEqual(['speech_start', 'speech_end', 'speech_start', 'speech_end']);
    });

    it('primes only a cold model: a short pause in warm speech goes straight to the model', async () => {
      const h = harness({ silenceFloorDbfs: -60, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 64 } });
      const w = 256;
      // loud, 3 quiet (under the reset run), loud: the second loud window needs no primer.
      await h.pushPackets(audio(8000, w * 6, [[0, w], [4 * w, 5 * w]]));
      await h.vad.whenIdle();
      expect(h.vad.stats).toMatchObject({ windowsPrimed: 0, windowsQuiet: 4, windowsProcessed: 2 });
      expect((h.source.stream as ScriptedStream).resets).toBe(0);
    });

    it('never turns a primer into a gap when inference falls behind; every window is accounted for', async () => {
      const h = harness({ manual: true, silenceFloorDbfs: -60, maxQueuedWindows: 1, turn: { minSpeechMs: 32, endOfTurnSilenceMs: 32 } });
      const w = 256;
      await h.pushPackets(audio(8000, w * 8, [[2 * w, 5 * w]]));
      const stream = h.source.stream as ScriptedStream;
      while (stream.pending.length > 0) {
        stream.release();
        await flush();
      }
      await h.vad.whenIdle();
      expect(h.vad.stats.windowsPrimed).toBe(1);
      // 8 windows: 2 quiet before + 3 loud (some dropped: queue of 1) + 3 quiet after; every one decided or dropped.
      const s = h.vad.stats;
      expect(s.windowsQuiet + s.windowsProcessed + s.windowsDropped).toBe(8);
    });

    it('rejects a floor that is not a negative dBFS value', () => {
      expect(() => new CallVad(new ScriptedSource(), { sampleRate: 8000, silenceFloorDbfs: 3 })).toThrow(/silenceFloorDbfs/);
    });
  });
});

