/**
 * stt-pocketsphinx against the real library (Debian's libpocketsphinx3 + pocketsphinx-en-us)
 * with offline synthetic speech (flite voices via test/support/speech.ts), pushed in 20 ms
 * frames exactly as the engine does.
 *
 * Accuracy is asserted as floors on word error rates measured over the call-centre phrase
 * set (testkit.ts); the measured values are printed for the README (see measure.ts for the
 * full matrix). Decoding is deterministic for a given sequence of turns, so the floors are
 * not flaky, yet a broken grammar, rate conversion or decoder state would cross them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger, type Logger } from '../../src/log.js';
import { inspectPlugins } from '../../src/plugins/loader.js';
import { isAbortError, PluginError, type PluginContext, type SttStream } from '../../src/plugins/api.js';
import { packetize } from '../../test/support/speech.js';
import plugin from './index.js';
import { PocketSphinxConfigSchema } from './config.js';
import { loadPocketSphinx } from './native.js';
import { PocketSphinxProvider } from './provider.js';
import type { PocketSphinxStream } from './stream.js';
import { AGENT_PHRASES, IN_GRAMMAR, say, utterance, VOICES, WerTally, type Voice } from './testkit.js';

const TIMEOUT = 180_000;
const RMS = VOICES.find((v) => v.name === 'flite-rms') as Voice;
const NO_ABORT = new AbortController().signal;

let cacheDir: string;
const providers: PocketSphinxProvider[] = [];

function context(log: Logger = silentLogger): PluginContext {
  return { log, signal: new AbortController().signal, cacheDir, configDir: cacheDir };
}

async function makeProvider(config: Record<string, unknown> = {}, log?: Logger): Promise<PocketSphinxProvider> {
  const p = await PocketSphinxProvider.create(PocketSphinxConfigSchema.parse(config), context(log));
  providers.push(p);
  return p;
}

/** A logger whose records the test can read. */
function capturingLogger(): { log: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}

let telephone: PocketSphinxProvider; // defaults: 8 kHz in, image upsampling
let wideband: PocketSphinxProvider; // 16 kHz in

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'sb-pocketsphinx-test-'));
  telephone = await makeProvider({ interimIntervalMs: 100 });
  wideband = await makeProvider({ sampleRate: 16000 });
}, TIMEOUT);

afterAll(async () => {
  await Promise.allSettled(providers.map((p) => p.close()));
  await rm(cacheDir, { recursive: true, force: true });
});

describe('plugin module', () => {
  it('passes the loader checks and validates its config', async () => {
    const [inspected] = await inspectPlugins({ 'stt-pocketsphinx': { mode: 'grammar', extraArgs: { maxhmmpf: 20000 } } });
    expect(inspected?.kind).toBe('stt');
    expect(inspected?.config).toMatchObject({ mode: 'grammar', sampleRate: 8000 });
    await expect(inspectPlugins({ 'stt-pocketsphinx': { extraArgs: { bogus: 1 } } })).rejects.toThrow(/"bogus" is not a pocketsphinx argument/);
    expect(plugin.manifest.name).toBe('stt-pocketsphinx');
  });

  it('fails start-up with the missing path named', async () => {
    const err = await makeProvider({ modelDir: join(cacheDir, 'no-such-model') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('bad_request');
    expect((err as PluginError).retryable).toBe(false);
    expect((err as PluginError).message).toContain('no-such-model');
  });

  it('fails start-up with the library reason when the decoder refuses an argument value', async () => {
    const err = await makeProvider({ extraArgs: { nfft: 100 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('bad_request');
    expect((err as PluginError).message).toMatch(/must be a power of 2/);
  }, TIMEOUT);
});

describe('open dictation (N-gram model)', () => {
  it('transcribes 16 kHz speech pushed in 20 ms frames, with a confidence', async () => {
    const s = await wideband.stream({ language: 'en-US', signal: NO_ABORT });
    const r = await say(s, await utterance('I would like to book an appointment for tomorrow', RMS, 'wideband', 16000));
    expect(r.text).toContain('appointment');
    expect(r.text).toContain('tomorrow');
    expect(r.confidence).toBeGreaterThan(0);
    expect(r.confidence).toBeLessThanOrEqual(1);
    // The next turn starts clean: only its own words.
    const r2 = await say(s, await utterance('do you deliver on weekends', RMS, 'wideband', 16000));
    expect(r2.text).toBe('do you deliver on weekends');
    await s.close();
  }, TIMEOUT);

  it('transcribes 8 kHz telephone speech (G.711), upsampled inside the plugin', async () => {
    expect(telephone.sampleRate).toBe(8000);
    expect(telephone.modelRate).toBe(16000);
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const r = await say(s, await utterance('my package arrived damaged', RMS, 'telephone', 8000));
    expect(r.text).toBe('my package arrived damaged');
    await s.close();
  }, TIMEOUT);

  it('reports interim hypotheses while the caller speaks', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const interims: string[] = [];
    s.onInterim((r) => interims.push(r.text));
    const clip = await utterance('how much does shipping cost', RMS, 'telephone', 8000);
    for (const f of packetize(clip, 20)) {
      s.push(f);
      await new Promise((r) => setTimeout(r, 20)); // real time
    }
    const final = await s.flush(NO_ABORT);
    expect(final.text).toBe('how much does shipping cost');
    expect(interims.length).toBeGreaterThan(2); // every 100 ms of a ~2.3 s turn, when the text changed
    expect(interims.every((t, i) => i === 0 || t !== interims[i - 1])).toBe(true); // only changes are reported
    expect(interims.some((t) => t.startsWith('how much does'))).toBe(true);
    await s.close();
  }, TIMEOUT);

  it('returns "" for a turn of silence', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const r = await say(s, { samples: new Int16Array(8000), sampleRate: 8000 });
    expect(r).toEqual({ text: '' });
    await s.close();
  }, TIMEOUT);
});

describe('phrase grammar', () => {
  it('recognises the brief\'s phrases and digits exactly (telephone audio)', async () => {
    const s = (await telephone.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: NO_ABORT })) as PocketSphinxStream;
    for (const text of ['check my order status', 'change my address', 'talk to an operator', 'four two seven one']) {
      const r = await say(s, await utterance(text, RMS, 'telephone', 8000));
      expect(r.text).toBe(text);
      expect(r.confidence).toBeGreaterThan(0.8);
      expect(s.lastTurn?.mode).toBe('grammar');
      expect(s.lastTurn?.usedFallback).toBe(false);
    }
    await s.close();
  }, TIMEOUT);

  it('is more accurate than the N-gram model on the phrase set (WER over 3 voices x 16 utterances)', async () => {
    const lmWer = new WerTally();
    const grammarWer = new WerTally();
    const voices = VOICES.filter((v) => ['flite-kal16', 'flite-rms', 'flite-awb'].includes(v.name));
    for (const voice of voices) {
      const lm = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
      const g = await telephone.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: NO_ABORT });
      for (const text of IN_GRAMMAR) {
        const clip = await utterance(text, voice, 'telephone', 8000);
        lmWer.add(text, (await say(lm, clip)).text);
        grammarWer.add(text, (await say(g, clip)).text);
      }
      await Promise.all([lm.close(), g.close()]);
    }
    console.log(`[stt-pocketsphinx] telephone WER on the phrase set: LM ${lmWer.summary}, grammar ${grammarWer.summary}`);
    expect(grammarWer.rate).toBeLessThanOrEqual(0.1);
    expect(grammarWer.rate).toBeLessThan(lmWer.rate);
    expect(lmWer.rate).toBeLessThanOrEqual(0.35); // a broken feature pipeline lands far above
  }, TIMEOUT);

  it('re-decodes out-of-grammar speech with the N-gram model', async () => {
    const s = (await wideband.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: NO_ABORT })) as PocketSphinxStream;
    const r = await say(s, await utterance('how much does shipping cost', RMS, 'wideband', 16000));
    expect(s.lastTurn?.usedFallback).toBe(true);
    expect(s.lastTurn?.garbageShare).toBeGreaterThan(0.2);
    expect(r.text).toBe('how much does shipping cost');
    // and goes back to the grammar for the next turn
    const r2 = await say(s, await utterance('cancel my appointment', RMS, 'wideband', 16000));
    expect(r2.text).toBe('cancel my appointment');
    expect(s.lastTurn?.usedFallback).toBe(false);
    await s.close();
  }, TIMEOUT);

  it('leaves words the dictionary lacks out of the grammar, says which, and still works', async () => {
    const { log, records } = capturingLogger();
    const p = await makeProvider({}, log);
    const s = await p.stream({ language: 'en-US', phrases: ['check my order status', 'talk to zorblax support'], signal: NO_ABORT });
    const warning = records.find((r) => String(r.msg).includes('missing from the dictionary'));
    expect(warning?.words).toEqual(['zorblax']);
    const r = await say(s, await utterance('check my order status', RMS, 'telephone', 8000));
    expect(r.text).toBe('check my order status');
    await s.close();
  }, TIMEOUT);

  it('still understands the caller when no phrase word is pronounceable', async () => {
    // digits on: the grammar is digits + garbage, and other speech is re-decoded
    const s = (await telephone.stream({ language: 'en-US', phrases: ['zorblax', 'qwxz'], signal: NO_ABORT })) as PocketSphinxStream;
    expect((await say(s, await utterance('my package arrived damaged', RMS, 'telephone', 8000))).text).toBe('my package arrived damaged');
    expect(s.lastTurn).toMatchObject({ mode: 'grammar', usedFallback: true });
    await s.close();
    // digits off: nothing left for a grammar, the stream uses the language model
    const p = await makeProvider({ grammar: { digits: false } });
    const s2 = (await p.stream({ language: 'en-US', phrases: ['zorblax', 'qwxz'], signal: NO_ABORT })) as PocketSphinxStream;
    expect((await say(s2, await utterance('my package arrived damaged', RMS, 'telephone', 8000))).text).toBe('my package arrived damaged');
    expect(s2.lastTurn).toMatchObject({ mode: 'lm', usedFallback: false });
    await p.close();
  }, TIMEOUT);
});

describe('keyword spotting', () => {
  it('spots the phrases in order and nothing in unrelated speech', async () => {
    const p = await makeProvider({ mode: 'keywords' });
    const s = await p.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: NO_ABORT });
    expect((await say(s, await utterance('talk to an operator', RMS, 'telephone', 8000))).text).toBe('talk to an operator');
    expect((await say(s, await utterance('my package arrived damaged', RMS, 'telephone', 8000))).text).toBe('');
    await s.close();
  }, TIMEOUT);
});

describe('streams', () => {
  it('run in parallel without interfering', async () => {
    const a = await telephone.stream({ language: 'en-US', phrases: AGENT_PHRASES, signal: NO_ABORT });
    const b = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const c = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const clips = await Promise.all([
      utterance('change my address', RMS, 'telephone', 8000),
      utterance('do you deliver on weekends', RMS, 'telephone', 8000),
      utterance('my package arrived damaged', RMS, 'telephone', 8000),
    ]);
    const frames = clips.map((clip) => packetize(clip, 20));
    const longest = Math.max(...frames.map((f) => f.length));
    const streams: SttStream[] = [a, b, c];
    for (let i = 0; i < longest; i++) {
      streams.forEach((s, k) => {
        const f = frames[k]?.[i];
        if (f) s.push(f);
      });
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    const [ra, rb, rc] = await Promise.all(streams.map((s) => s.flush(NO_ABORT)));
    expect(ra?.text).toBe('change my address');
    expect(rb?.text).toBe('do you deliver on weekends');
    expect(rc?.text).toBe('my package arrived damaged');
    await Promise.all(streams.map((s) => s.close()));
  }, TIMEOUT);

  it('cut turns where flush is called, even while the decoder is busy', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const first = await utterance('do you deliver on weekends', RMS, 'telephone', 8000);
    const second = await utterance('my package arrived damaged', RMS, 'telephone', 8000);
    for (const f of packetize(first, 20)) s.push(f);
    const p1 = s.flush(NO_ABORT); // nothing decoded yet: all of `first` is queued
    for (const f of packetize(second, 20)) s.push(f);
    const p2 = s.flush(NO_ABORT);
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(r1.text).toBe('do you deliver on weekends');
    expect(r2.text).toBe('my package arrived damaged');
    await s.close();
  }, TIMEOUT);

  it('reject frames at the wrong rate', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    expect(() => s.push({ samples: new Int16Array(320), sampleRate: 16000 })).toThrow(/expects 8000 Hz/);
    await s.close();
  }, TIMEOUT);

  it('abort a flush at once and stay usable', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const long = await utterance('I would like to book an appointment for tomorrow morning please', RMS, 'telephone', 8000);
    for (const f of packetize(long, 20)) s.push(f);
    const ac = new AbortController();
    const pending = s.flush(ac.signal);
    const t = performance.now();
    ac.abort();
    const err = await pending.catch((e: unknown) => e);
    expect(isAbortError(err)).toBe(true);
    expect(performance.now() - t).toBeLessThan(50);
    // already aborted: rejected without queuing anything
    await expect(s.flush(AbortSignal.abort())).rejects.toSatisfy(isAbortError);
    // the aborted turn's audio is gone; the next turn is recognised on its own
    const r = await say(s, await utterance('change my address', RMS, 'telephone', 8000));
    expect(r.text).toBe('change my address');
    await s.close();
  }, TIMEOUT);

  it('close when the stream signal aborts; stream() honours an aborted signal', async () => {
    const ac = new AbortController();
    const s = (await telephone.stream({ language: 'en-US', signal: ac.signal })) as PocketSphinxStream;
    ac.abort();
    await vi.waitFor(() => expect(s.isClosed).toBe(true));
    await expect(s.flush(NO_ABORT)).rejects.toMatchObject({ code: 'unavailable' });
    await expect(telephone.stream({ language: 'en-US', signal: AbortSignal.abort() })).rejects.toSatisfy(isAbortError);
  }, TIMEOUT);

  it('close idempotently, free each native decoder exactly once, and reuse pooled decoders', async () => {
    const lib = loadPocketSphinx();
    const free = vi.spyOn(lib, 'free');
    try {
      const p = await makeProvider({ pool: { maxIdle: 1, prewarm: 1 } });
      const s1 = await p.stream({ language: 'en-US', signal: NO_ABORT });
      const s2 = await p.stream({ language: 'en-US', signal: NO_ABORT }); // a second decoder
      expect(p.stats()).toMatchObject({ created: 2, reused: 1, inUse: 2, idle: 0 });
      s1.push({ samples: new Int16Array(160), sampleRate: 8000 });
      const c1 = s1.close();
      expect(s1.close()).toBe(c1);
      await c1;
      await s1.close();
      s1.push({ samples: new Int16Array(160), sampleRate: 8000 }); // ignored after close
      await expect(s1.flush(NO_ABORT)).rejects.toBeInstanceOf(PluginError);
      await s2.close(); // the pool keeps one idle decoder: this one is freed
      expect(p.stats()).toMatchObject({ inUse: 0, idle: 1 });
      expect(free).toHaveBeenCalledTimes(1);
      // the idle decoder serves the next stream, with a fresh utterance
      const s3 = await p.stream({ language: 'en-US', signal: NO_ABORT });
      expect(p.stats()).toMatchObject({ created: 2, reused: 2 });
      expect((await say(s3, await utterance('do you deliver on weekends', RMS, 'telephone', 8000))).text).toBe('do you deliver on weekends');
      await p.close(); // closes s3, frees its decoder
      await p.close();
      await s3.close();
      expect(free).toHaveBeenCalledTimes(2);
      expect(new Set(free.mock.calls.map((c) => c[0])).size).toBe(2);
      await expect(p.stream({ language: 'en-US', signal: NO_ABORT })).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      free.mockRestore();
    }
  }, TIMEOUT);

  it('refuse other languages and streams past the limit', async () => {
    await expect(telephone.stream({ language: 'uk-UA', signal: NO_ABORT })).rejects.toMatchObject({ code: 'bad_request', retryable: false });
    const p = await makeProvider({ maxStreams: 1 });
    const s = await p.stream({ language: 'en-GB', signal: NO_ABORT });
    await expect(p.stream({ language: 'en-US', signal: NO_ABORT })).rejects.toMatchObject({ code: 'rate_limited', retryable: true });
    await s.close();
    const again = await p.stream({ language: 'en', signal: NO_ABORT });
    await again.close();
  }, TIMEOUT);

  it('decode faster than real time', async () => {
    const s = await telephone.stream({ language: 'en-US', signal: NO_ABORT });
    const clips = await Promise.all(IN_GRAMMAR.slice(0, 6).map((t) => utterance(t, RMS, 'telephone', 8000)));
    const seconds = clips.reduce((n, c) => n + c.samples.length / 8000, 0);
    const t = performance.now();
    for (const c of clips) await say(s, c);
    const elapsed = (performance.now() - t) / 1000;
    console.log(`[stt-pocketsphinx] LM decode: ${seconds.toFixed(1)} s of audio in ${elapsed.toFixed(2)} s`);
    expect(elapsed).toBeLessThan(seconds * 0.6);
    await s.close();
  }, TIMEOUT);
});
