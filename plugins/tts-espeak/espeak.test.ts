/**
 * tts-espeak against the real espeak-ng on this machine.
 */
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concatFrames, durationMs, rmsDbfs, type AudioFrame } from '../../src/audio/frame.js';
import { resampleFrame } from '../../src/audio/resampler.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { isAbortError, PluginError, type PluginContext } from '../../src/plugins/api.js';
import plugin, { configSchema, type EspeakConfig } from './index.js';
import { sanitizeText, type EspeakTts } from './provider.js';

const ctx = (signal = new AbortController().signal): PluginContext => ({ log: pino({ level: 'silent' }), signal, cacheDir: '/tmp', configDir: '/tmp' });
const opts = (language = 'en-US', signal = new AbortController().signal, voice?: string) => ({ language, signal, voice });

async function create(cfg: Record<string, unknown> = {}, c = ctx()): Promise<EspeakTts> {
  return (await plugin.create(configSchema.parse(cfg), c)) as EspeakTts;
}

async function collect(it: AsyncIterable<AudioFrame>): Promise<AudioFrame[]> {
  const out: AudioFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

async function speak(tts: EspeakTts, text: string, language = 'en-US', voice?: string): Promise<AudioFrame> {
  const frames = await collect(tts.synthesize(text, opts(language, undefined, voice)));
  expect(frames.length).toBeGreaterThan(0);
  return concatFrames(frames);
}

/** Children of this process named `name`, zombies included. */
function childProcesses(name: string): string[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=,stat=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.trim().endsWith(name));
  } catch {
    return [];
  }
}

const LONG = Array.from({ length: 30 }, (_, i) => `This is sentence number ${i + 1} of a rather long answer, read aloud to a patient caller.`).join(' ');

describe('tts-espeak', () => {
  let tts: EspeakTts;
  beforeAll(async () => {
    tts = await create();
  });
  afterAll(async () => {
    await tts.close();
  });

  it('declares 22050 Hz and speaks a phrase: loud enough, plausible length, 20 ms frames', async () => {
    expect(tts.sampleRate).toBe(22050);
    const frames = await collect(tts.synthesize('Hello, thank you for calling. How can I help you today?', opts()));
    for (const f of frames) expect(f.sampleRate).toBe(22050);
    for (const f of frames.slice(0, -1)) expect(f.samples.length).toBe(441);
    const audio = concatFrames(frames);
    expect(durationMs(audio)).toBeGreaterThan(2200);
    expect(durationMs(audio)).toBeLessThan(5500);
    expect(rmsDbfs(audio.samples)).toBeGreaterThan(-30);
  });

  it('maps the call language to a voice: Ukrainian and Russian speak', async () => {
    expect(tts.voiceFor('uk-UA').spec).toBe('zle/uk');
    expect(tts.voiceFor('ru-RU').spec).toBe('zle/ru');
    expect(tts.voiceFor('en-US').spec).toBe('gmw/en-US');
    const uk = await speak(tts, 'Добрий день! Ваше замовлення вже в дорозі.', 'uk-UA');
    const ru = await speak(tts, 'Здравствуйте! Чем я могу вам помочь?', 'ru-RU');
    for (const a of [uk, ru]) {
      expect(durationMs(a)).toBeGreaterThan(1200);
      expect(rmsDbfs(a.samples)).toBeGreaterThan(-30);
    }
  });

  it('streams: the first frame arrives while espeak-ng is still running, long before the end', async () => {
    const t0 = performance.now();
    let first = -1;
    let liveAtFirst = -1;
    let samples = 0;
    for await (const f of tts.synthesize(LONG, opts())) {
      if (first < 0) {
        first = performance.now() - t0;
        liveAtFirst = tts.live;
      }
      samples += f.samples.length;
    }
    const total = performance.now() - t0;
    expect(liveAtFirst).toBe(1);
    expect(first).toBeLessThan(total / 3);
    expect(samples / 22050).toBeGreaterThan(60); // 30 sentences of ~3 s
  });

  it('abort mid-synthesis: no frame after it, an AbortError, espeak-ng killed and reaped', async () => {
    const ac = new AbortController();
    let n = 0;
    let afterAbort = 0;
    let caught: unknown;
    let abortedAt = 0;
    try {
      for await (const _ of tts.synthesize(LONG, opts('en-US', ac.signal))) {
        if (ac.signal.aborted) afterAbort++;
        if (++n === 50) {
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
    expect(tts.live).toBe(0);
    expect(childProcesses('espeak-ng')).toEqual([]);
  });

  it('abort while waiting for audio releases the caller at once', async () => {
    const ac = new AbortController();
    const iter = tts.synthesize(LONG, opts('en-US', ac.signal))[Symbol.asyncIterator]();
    const first = iter.next();
    ac.abort();
    const t0 = performance.now();
    await expect(first).rejects.toSatisfy(isAbortError);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(tts.live).toBe(0);
    expect(childProcesses('espeak-ng')).toEqual([]);
  });

  it('a consumer that stops early leaves no process behind', async () => {
    let n = 0;
    for await (const _ of tts.synthesize(LONG, opts())) {
      if (++n === 10) break;
    }
    expect(tts.live).toBe(0);
    expect(childProcesses('espeak-ng')).toEqual([]);
  });

  it('shutdown (the context signal) stops a synthesis in progress', async () => {
    const shutdown = new AbortController();
    const p = await create({}, ctx(shutdown.signal));
    const iter = p.synthesize(LONG, opts())[Symbol.asyncIterator]();
    expect((await iter.next()).done).toBe(false);
    shutdown.abort();
    await expect(iter.next()).rejects.toSatisfy(isAbortError);
    await p.close();
    expect(p.live).toBe(0);
  });

  it('an already-aborted signal rejects before spawning', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(collect(tts.synthesize('Hello.', opts('en-US', ac.signal)))).rejects.toSatisfy(isAbortError);
    expect(tts.live).toBe(0);
  });

  it('empty, whitespace and punctuation-only text yield nothing', async () => {
    for (const text of ['', '   ', '\n\t', '... !?', '\u0007']) expect(await collect(tts.synthesize(text, opts()))).toEqual([]);
  });

  it('numbers and times are spoken as words', async () => {
    const bare = durationMs(await speak(tts, 'Call me at home.'));
    const numbers = durationMs(await speak(tts, 'Call me at 555-1234 at 10:30, it costs 42 dollars.'));
    expect(numbers - bare).toBeGreaterThan(2500);
  });

  it('"[[...]]" in the text is read as text, not as phoneme input', () => {
    expect(sanitizeText("say [[h@l'oU]] now\u0000")).toBe("say [ [h@l'oU] ] now");
  });

  it('per-call voices and variants; unknown ones are a non-retryable PluginError', async () => {
    const plain = await speak(tts, 'Good morning.', 'en-US');
    const female = await speak(tts, 'Good morning.', 'en-US', 'en-us+f3');
    expect(female.samples).not.toEqual(plain.samples);
    await expect(collect(tts.synthesize('Hi.', opts('en-US', undefined, 'alloy')))).rejects.toMatchObject({ name: 'PluginError', code: 'bad_request', retryable: false });
    await expect(collect(tts.synthesize('Hi.', opts('tlh-001')))).rejects.toMatchObject({ code: 'bad_request', retryable: false });
  });

  it('config: languages map and fixed voice take precedence over the automatic mapping', async () => {
    const p = await create({ voice: 'en-gb', languages: { 'uk-UA': 'ru', de: 'en-us' } });
    expect(p.voiceFor('uk-UA').spec).toBe('zle/ru');
    expect(p.voiceFor('de-AT').spec).toBe('gmw/en-US');
    expect(p.voiceFor('fr-FR').spec).toBe('gmw/en');
    expect(p.voiceFor('fr-FR', 'uk').spec).toBe('zle/uk');
    await p.close();
  });

  it('speed changes the pace', async () => {
    const slow = await create({ speed: 120 });
    const fast = await create({ speed: 320 });
    const text = 'Your appointment is confirmed for Tuesday morning at nine.';
    const a = durationMs(await speak(slow, text));
    const b = durationMs(await speak(fast, text));
    expect(a / b).toBeGreaterThan(1.8);
    await slow.close();
    await fast.close();
  });

  it('what it says is speech to Silero VAD', async () => {
    const model = await SileroVadModel.load();
    try {
      const audio = resampleFrame(await speak(tts, 'Hello, thank you for calling. Your order has shipped and will arrive on Friday.'), 16000);
      const stream = model.createStream(16000);
      let voiced = 0;
      let windows = 0;
      for (let off = 0; off + stream.windowSamples <= audio.samples.length; off += stream.windowSamples) {
        const w = new Float32Array(stream.windowSamples);
        for (let i = 0; i < w.length; i++) w[i] = (audio.samples[off + i] as number) / 32768;
        if ((await stream.infer(w)) > 0.5) voiced++;
        windows++;
      }
      stream.close();
      expect(voiced / windows).toBeGreaterThan(0.5);
    } finally {
      await model.close();
    }
  });

  it('after close, synthesize fails with a PluginError', async () => {
    const p = await create();
    await p.close();
    await expect(collect(p.synthesize('Hello.', opts()))).rejects.toBeInstanceOf(PluginError);
  });
});

describe('tts-espeak config', () => {
  it('has working defaults', () => {
    expect(configSchema.parse({})).toMatchObject({ speed: 175, pitch: 50, amplitude: 100, binary: 'espeak-ng', languages: {} });
  });

  it('names every bad voice, variant and language tag at config-check time, all at once', () => {
    const r = configSchema.safeParse({ voice: 'martian2', variant: 'nobody', languages: { 'uk-UA': 'uk', 'ru-RU': 'martian', 'not a tag': 'ru' }, speed: 5 });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      expect.stringMatching(/^speed: /),
      expect.stringMatching(/^variant: .*no voice variant "nobody"/),
      expect.stringMatching(/^voice: .*no voice "martian2"/),
      expect.stringMatching(/^languages\.ru-RU: .*no voice "martian"/),
      expect.stringMatching(/^languages\.not a tag: .*BCP-47/),
    ]);
    expect(configSchema.safeParse({ voice: 'uk+f3', languages: { 'ru-RU': 'ru' } }).success).toBe(true);
  });

  it('a missing binary is a config error and a PluginError at create()', async () => {
    const r = configSchema.safeParse({ binary: '/nonexistent/espeak-ng' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toMatch(/not found.*apt-get install espeak-ng/);
    const raw = { binary: '/nonexistent/espeak-ng', languages: {}, speed: 175, pitch: 50, amplitude: 100 } as EspeakConfig;
    await expect(plugin.create(raw, ctx())).rejects.toMatchObject({ name: 'PluginError', code: 'unavailable', retryable: false });
  });

  it('an unknown voice fails create() with a PluginError', async () => {
    const raw = { voice: 'martian2', binary: 'espeak-ng', languages: {}, speed: 175, pitch: 50, amplitude: 100 } as EspeakConfig;
    const err = await plugin.create(raw, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).message).toMatch(/martian2/);
  });
});
