/**
 * tts-flite against the real flite on this machine (Debian libflite1 + flite), in both modes.
 */
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatFrames, durationMs, rmsDbfs, type AudioFrame } from '../../src/audio/frame.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { isAbortError, PluginError, type PluginContext, type TtsProvider } from '../../src/plugins/api.js';
import type { SynthEngine, SynthJob, Wave } from './engine.js';
import { FfiEngine } from './ffi-engine.js';
import plugin, { configSchema, type FliteConfig } from './index.js';
import { ProcessEngine } from './process-engine.js';
import { FliteTts } from './provider.js';

const ctx = (): PluginContext => ({ log: pino({ level: 'silent' }), signal: new AbortController().signal, cacheDir: '/tmp', configDir: '/tmp' });
const en = (signal = new AbortController().signal) => ({ language: 'en-US', signal });

async function collect(it: AsyncIterable<AudioFrame>): Promise<AudioFrame[]> {
  const out: AudioFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

async function speak(tts: TtsProvider, text: string, opts: { voice?: string } = {}): Promise<AudioFrame> {
  const frames = await collect(tts.synthesize(text, { ...en(), ...opts }));
  expect(frames.length).toBeGreaterThan(0);
  return concatFrames(frames);
}

/** Children of this process whose command is `name` (zombies included: `ps` lists them). */
function childProcesses(name: string): string[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=,stat=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.trim().endsWith(name));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

const LONG = Array.from({ length: 16 }, (_, i) => `This is sentence number ${i + 1} of a rather long answer, read aloud to a patient caller.`).join(' ');

async function create(cfg: Partial<FliteConfig> & Record<string, unknown>): Promise<FliteTts> {
  return (await plugin.create(configSchema.parse(cfg), ctx())) as FliteTts;
}

/** Wraps an engine to count the chunks it finished. */
class CountingEngine implements SynthEngine {
  done = 0;
  started = 0;
  constructor(private readonly inner: SynthEngine) {}
  get mode(): SynthEngine['mode'] {
    return this.inner.mode;
  }
  loadVoice(name: string, signal: AbortSignal) {
    return this.inner.loadVoice(name, signal);
  }
  async synth(job: SynthJob, signal: AbortSignal): Promise<Wave> {
    this.started++;
    const w = await this.inner.synth(job, signal);
    this.done++;
    return w;
  }
  close() {
    return this.inner.close();
  }
}

for (const mode of ['ffi', 'process'] as const) {
  describe(`tts-flite, mode ${mode}`, () => {
    let kal: FliteTts;
    beforeAll(async () => {
      kal = await create({ mode });
    });
    afterAll(async () => {
      await kal.close();
    });

    it('kal declares 8 kHz and speaks a phrase: loud enough, plausible length, 20 ms frames', async () => {
      expect(kal.sampleRate).toBe(8000);
      const frames = await collect(kal.synthesize('Hello, thank you for calling. How can I help you today?', en()));
      for (const f of frames) expect(f.sampleRate).toBe(8000);
      for (const f of frames.slice(0, -1)) expect(f.samples.length).toBe(160);
      expect(frames.at(-1)!.samples.length).toBeLessThanOrEqual(160);
      const audio = concatFrames(frames);
      const ms = durationMs(audio);
      // 11 words: between 0.2 and 0.5 s a word, pauses included.
      expect(ms).toBeGreaterThan(2200);
      expect(ms).toBeLessThan(5500);
      expect(rmsDbfs(audio.samples)).toBeGreaterThan(-30);
    });

    it('streams: the first frame comes after the first chunk, long before the text is done', async () => {
      const engine = new CountingEngine(mode === 'ffi' ? FfiEngine.shared() : new ProcessEngine({ binary: 'flite' }));
      const voice = await engine.loadVoice('kal', new AbortController().signal);
      const tts = new FliteTts({ engine, voice, shutdown: new AbortController().signal });
      const t0 = performance.now();
      let first = -1;
      let doneAtFirst = -1;
      let samples = 0;
      for await (const f of tts.synthesize(LONG, en())) {
        if (first < 0) {
          first = performance.now() - t0;
          doneAtFirst = engine.done;
        }
        samples += f.samples.length;
      }
      const total = performance.now() - t0;
      expect(engine.done).toBe(16);
      // Only the first chunk (and perhaps the one synthesised ahead) was done.
      expect(doneAtFirst).toBeLessThanOrEqual(2);
      expect(first).toBeLessThan(total / 3);
      expect(samples / 8000).toBeGreaterThan(30); // 16 sentences of ~3 s
      await tts.close();
    });

    it('abort mid-synthesis: no frame after it, an AbortError, no flite left running', async () => {
      const engine = new CountingEngine(mode === 'ffi' ? FfiEngine.shared() : new ProcessEngine({ binary: 'flite' }));
      const voice = await engine.loadVoice('kal', new AbortController().signal);
      const tts = new FliteTts({ engine, voice, shutdown: new AbortController().signal });
      const ac = new AbortController();
      const got: AudioFrame[] = [];
      let afterAbort = 0;
      let caught: unknown;
      let abortedAt = 0;
      try {
        for await (const f of tts.synthesize(LONG, en(ac.signal))) {
          if (ac.signal.aborted) afterAbort++;
          got.push(f);
          // Abort once the second chunk's audio starts, i.e. mid-text.
          if (got.length === 200) {
            ac.abort();
            abortedAt = performance.now();
          }
        }
      } catch (err) {
        caught = err;
      }
      expect(performance.now() - abortedAt).toBeLessThan(250);
      expect(isAbortError(caught)).toBe(true);
      expect(afterAbort).toBe(0);
      expect(engine.started).toBeLessThan(16);
      if (mode === 'ffi') {
        expect(await waitFor(() => FfiEngine.shared().pending === 0, 1000)).toBe(true);
      }
      expect(childProcesses('flite')).toEqual([]);
      await tts.close();
    });

    it('abort while a chunk is being synthesised releases the caller at once', async () => {
      const ac = new AbortController();
      const it = kal.synthesize(LONG, en(ac.signal))[Symbol.asyncIterator]();
      const pending = it.next();
      setTimeout(() => ac.abort(), 2);
      const t0 = performance.now();
      const res = await pending.then(
        (r) => r,
        (err: unknown) => err,
      );
      // Either the abort beat the first chunk (AbortError) or the chunk won the race.
      if (!('value' in (res as object))) expect(isAbortError(res)).toBe(true);
      else await expect(it.next()).rejects.toSatisfy(isAbortError);
      expect(performance.now() - t0).toBeLessThan(300);
      expect(await waitFor(() => childProcesses('flite').length === 0, 500)).toBe(true);
    });

    it('a consumer that stops early cancels the chunks still queued', async () => {
      const engine = new CountingEngine(mode === 'ffi' ? FfiEngine.shared() : new ProcessEngine({ binary: 'flite' }));
      const voice = await engine.loadVoice('kal', new AbortController().signal);
      const tts = new FliteTts({ engine, voice, shutdown: new AbortController().signal });
      let n = 0;
      for await (const _ of tts.synthesize(LONG, en())) {
        if (++n === 5) break;
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(engine.started).toBeLessThanOrEqual(2);
      expect(childProcesses('flite')).toEqual([]);
      await tts.close();
    });

    it('an already-aborted signal rejects before any work', async () => {
      const ac = new AbortController();
      ac.abort();
      await expect(collect(kal.synthesize('Hello there.', en(ac.signal)))).rejects.toSatisfy(isAbortError);
    });

    it('empty, whitespace and punctuation-only text yield nothing', async () => {
      for (const text of ['', '   ', '\n\t ', '... !? --', '🙂']) {
        expect(await collect(kal.synthesize(text, en()))).toEqual([]);
      }
    });

    it('numbers, times and symbols are spoken as words', async () => {
      const bare = durationMs(await speak(kal, 'Call me at home.'));
      const numbers = durationMs(await speak(kal, 'Call me at 555-1234 at 10:30, it costs $5.50, 42% off.'));
      // "five five five one two three four ... ten thirty ... five dollars fifty cents ... forty two per cent"
      expect(numbers - bare).toBeGreaterThan(3000);
    });

    it('Unicode typography sounds like its ASCII equivalent', async () => {
      const fancy = durationMs(await speak(kal, 'It’s a café — naïve, isn’t it?'));
      const plain = durationMs(await speak(kal, "It's a cafe, naive, isn't it?"));
      expect(Math.abs(fancy - plain) / plain).toBeLessThan(0.1);
    });

    it('refuses other languages and non-Latin text with a non-retryable PluginError', async () => {
      const uk = collect(kal.synthesize('Hello.', { language: 'uk-UA', signal: new AbortController().signal }));
      await expect(uk).rejects.toBeInstanceOf(PluginError);
      await expect(uk).rejects.toMatchObject({ code: 'bad_request', retryable: false });
      await expect(collect(kal.synthesize('Добрий день', en()))).rejects.toMatchObject({ code: 'bad_request', retryable: false });
      expect((await collect(kal.synthesize('Hi.', { language: 'en-GB', signal: new AbortController().signal }))).length).toBeGreaterThan(0);
    });

    it('a per-call 16 kHz voice is resampled to the declared 8 kHz', async () => {
      const audio = await speak(kal, 'Hello, thank you for calling.', { voice: 'slt' });
      expect(audio.sampleRate).toBe(8000);
      expect(durationMs(audio)).toBeGreaterThan(1500);
      expect(durationMs(audio)).toBeLessThan(3500);
      expect(rmsDbfs(audio.samples)).toBeGreaterThan(-30);
      await expect(collect(kal.synthesize('Hello.', { ...en(), voice: 'alloy' }))).rejects.toMatchObject({ code: 'bad_request' });
    });

    it('durationStretch slows speech down, on diphone and clustergen voices alike', async () => {
      for (const voice of ['kal', 'slt']) {
        const normal = await create({ mode, voice, durationStretch: 1 });
        const slow = await create({ mode, voice, durationStretch: 1.5 });
        const a = durationMs(await speak(normal, 'Your appointment is confirmed for Tuesday morning.'));
        const b = durationMs(await speak(slow, 'Your appointment is confirmed for Tuesday morning.'));
        expect(b / a, voice).toBeGreaterThan(1.3);
        expect(b / a, voice).toBeLessThan(1.7);
        await normal.close();
        await slow.close();
      }
    });

    it('slt declares 16 kHz', async () => {
      const slt = await create({ mode, voice: 'cmu_us_slt' });
      expect(slt.sampleRate).toBe(16000);
      const audio = await speak(slt, 'Good morning.');
      expect(audio.sampleRate).toBe(16000);
      await slt.close();
    });

    it('after close, synthesize fails with a PluginError', async () => {
      const tts = await create({ mode });
      await tts.close();
      await expect(collect(tts.synthesize('Hello.', en()))).rejects.toBeInstanceOf(PluginError);
      // Other providers (sharing the FFI engine) keep working.
      expect((await collect(kal.synthesize('Still here.', en()))).length).toBeGreaterThan(0);
    });
  });
}

describe('tts-flite config and errors', () => {
  it('defaults to kal over FFI', () => {
    expect(configSchema.parse({})).toMatchObject({ voice: 'kal', mode: 'ffi', binary: 'flite' });
  });

  it('validates the voice at config-check time against the installed voices', () => {
    const bad = configSchema.safeParse({ voice: 'nope' });
    expect(bad.success).toBe(false);
    const msg = bad.error!.issues[0]!;
    expect(msg.path).toEqual(['voice']);
    expect(msg.message).toMatch(/not a flite voice.*kal.*slt/);
    expect(configSchema.safeParse({ voice: 'awb_time', mode: 'process' }).success).toBe(false);
    expect(configSchema.safeParse({ voice: 'KAL16', mode: 'process' }).data?.voice).toBe('kal16');
    expect(configSchema.safeParse({ durationStretch: 9 }).success).toBe(false);
    expect(configSchema.safeParse({ colour: 'blue' }).success).toBe(false);
  });

  it('a missing flite binary is a config error and a PluginError at create()', async () => {
    const bad = configSchema.safeParse({ mode: 'process', binary: '/nonexistent/flite' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.message).toMatch(/not found.*apt-get install flite/);
    const raw = { voice: 'kal', mode: 'process', binary: '/nonexistent/flite' } as FliteConfig;
    await expect(plugin.create(raw, ctx())).rejects.toMatchObject({ name: 'PluginError', code: 'bad_request', retryable: false });
  });

  it('an unknown voice fails create() with a PluginError naming the voices', async () => {
    for (const mode of ['ffi', 'process'] as const) {
      const raw = { voice: 'hal9000', mode, binary: 'flite' } as FliteConfig;
      const err = await plugin.create(raw, ctx()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PluginError);
      expect((err as PluginError).message).toMatch(/hal9000.*kal/);
    }
  });

  it('survives garbage collection between syntheses (voice libraries stay loaded)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const tts = await create({ mode: 'ffi', voice: 'rms' });
    for (let i = 0; i < 5; i++) {
      gc();
      const audio = await speak(tts, `Round ${i + 1}, still speaking clearly.`);
      expect(rmsDbfs(audio.samples)).toBeGreaterThan(-30);
    }
    await tts.close();
  });

  it('what it says is speech to Silero VAD', async () => {
    const model = await SileroVadModel.load();
    try {
      const tts = await create({ mode: 'ffi' });
      const audio = await speak(tts, 'Hello, thank you for calling. Your order has shipped and will arrive on Friday.');
      const noise = new Int16Array(audio.samples.length).map(() => Math.round((Math.random() - 0.5) * 2000));
      const speechShare = async (samples: Int16Array): Promise<number> => {
        const stream = model.createStream(8000);
        let voiced = 0;
        let windows = 0;
        for (let off = 0; off + stream.windowSamples <= samples.length; off += stream.windowSamples) {
          const w = new Float32Array(stream.windowSamples);
          for (let i = 0; i < w.length; i++) w[i] = (samples[off + i] as number) / 32768;
          if ((await stream.infer(w)) > 0.5) voiced++;
          windows++;
        }
        stream.close();
        return voiced / windows;
      };
      expect(await speechShare(audio.samples)).toBeGreaterThan(0.5);
      expect(await speechShare(noise)).toBeLessThan(0.1);
      await tts.close();
    } finally {
      await model.close();
    }
  });
});
