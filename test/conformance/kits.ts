/**
 * Plugin conformance kits: the same contract tests for every plugin of a kind. A plugin
 * that passes its kit can be dropped into any agent. The kits use real audio (espeak-ng
 * speech) and real signals; they assert the contract, not a provider's quality.
 */
import { expect, it } from 'vitest';
import { isSampleRate, type AudioFrame } from '../../src/audio/frame.js';
import { createResampler } from '../../src/audio/resampler.js';
import { z } from 'zod';
import type { LlmEvent, LlmProvider, SttProvider, ToolsProvider, TtsProvider } from '../../src/plugins/api.js';
import { speechAt } from '../support/speech.js';

const within = <T>(ms: number, p: Promise<T>, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what} did not settle within ${ms} ms`)), ms))]);

function frames20ms(frame: AudioFrame): AudioFrame[] {
  const n = Math.round(frame.sampleRate / 50);
  const out: AudioFrame[] = [];
  for (let i = 0; i < frame.samples.length; i += n) out.push({ samples: frame.samples.subarray(i, i + n), sampleRate: frame.sampleRate });
  return out;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export function sttKit(get: () => SttProvider): void {
  it('declares a supported sample rate', () => {
    expect(isSampleRate(get().sampleRate)).toBe(true);
  });

  it('recognises speech pushed in 20 ms frames and returns it on flush', async () => {
    const stt = get();
    const stream = await stt.stream({ language: 'en-US', signal: new AbortController().signal });
    try {
      // A natural voice: the kit checks the contract, not how a recogniser copes with espeak's formant voice.
      const speech = await speechAt('Hello, I would like to check my order status.', stt.sampleRate, { engine: 'flite', voice: 'rms' });
      for (const f of frames20ms(speech)) stream.push(f);
      const final = await within(15_000, stream.flush(new AbortController().signal), 'flush');
      expect(typeof final.text).toBe('string');
      expect(final.text.toLowerCase()).toMatch(/order|status|check|hello/);
      if (final.confidence !== undefined) expect(final.confidence).toBeGreaterThanOrEqual(0);
    } finally {
      await stream.close();
    }
  }, 60_000);

  it('flush with no audio gives an empty transcript, and a stream serves several turns', async () => {
    const stt = get();
    const stream = await stt.stream({ language: 'en-US', signal: new AbortController().signal });
    try {
      const empty = await within(10_000, stream.flush(new AbortController().signal), 'empty flush');
      expect(empty.text.trim()).toBe('');
      const speech = await speechAt('Talk to an operator.', stt.sampleRate, { engine: 'flite', voice: 'rms' });
      for (const f of frames20ms(speech)) stream.push(f);
      const second = await within(15_000, stream.flush(new AbortController().signal), 'second flush');
      expect(second.text.trim().length).toBeGreaterThan(0);
    } finally {
      await stream.close();
    }
  }, 60_000);

  it('an aborted flush rejects promptly; close is idempotent and push after close is harmless', async () => {
    const stt = get();
    const stream = await stt.stream({ language: 'en-US', signal: new AbortController().signal });
    const ctl = new AbortController();
    ctl.abort();
    await expect(within(2000, stream.flush(ctl.signal), 'aborted flush')).rejects.toThrow();
    await stream.close();
    await stream.close();
    expect(() => stream.push({ samples: new Int16Array(stt.sampleRate / 50), sampleRate: stt.sampleRate })).not.toThrow();
  }, 30_000);
}

export function ttsKit(get: () => TtsProvider): void {
  it('declares a supported sample rate', () => {
    expect(isSampleRate(get().sampleRate)).toBe(true);
  });

  it('synthesises speech at its declared rate, non-silent, of plausible length', async () => {
    const tts = get();
    const frames = await collect(tts.synthesize('Hello, your order is on its way.', { language: 'en-US', signal: new AbortController().signal }));
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) expect(f.sampleRate).toBe(tts.sampleRate);
    const samples = frames.reduce((a, f) => a + f.samples.length, 0);
    const seconds = samples / tts.sampleRate;
    expect(seconds).toBeGreaterThan(0.5);
    expect(seconds).toBeLessThan(8);
    let peak = 0;
    for (const f of frames) for (const s of f.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeGreaterThan(1000);
  }, 30_000);

  it('yields nothing for empty text and stops promptly when aborted', async () => {
    const tts = get();
    expect(await collect(tts.synthesize('   ', { language: 'en-US', signal: new AbortController().signal }))).toEqual([]);
    const ctl = new AbortController();
    const long = 'This is a long answer that keeps going. '.repeat(30);
    let got = 0;
    const run = (async () => {
      try {
        for await (const f of tts.synthesize(long, { language: 'en-US', signal: ctl.signal })) {
          got += f.samples.length;
          ctl.abort();
        }
      } catch {
        // an abort may surface as an AbortError: allowed by the contract
      }
    })();
    await within(5000, run, 'aborted synthesis');
    expect(got).toBeGreaterThan(0);
    expect(got / tts.sampleRate).toBeLessThan(30); // nowhere near the whole text
  }, 30_000);
}

export function llmKit(get: () => LlmProvider): void {
  const opts = { callId: 'conformance', agent: 'conformance', language: 'en-US', variables: { caller_number: '+15550100' } };

  it('answers a user message with events that end in done; tool calls only name offered tools', async () => {
    const llm = get();
    const session = await llm.session(opts);
    try {
      const events = await within(
        20_000,
        collect(session.respond({ system: 'You are a helpful assistant.', messages: [{ role: 'user', content: 'Hello, I need help with my order.' }], tools: [], signal: new AbortController().signal })),
        'respond',
      );
      expect(events.length).toBeGreaterThan(0);
      expect(events[events.length - 1]!.type).toBe('done');
      for (const e of events) if (e.type === 'text') expect(typeof e.delta).toBe('string');
      // No tools were offered: none may be called.
      expect(events.filter((e) => e.type === 'tool_call')).toEqual([]);
      expect(events.filter((e): e is Extract<LlmEvent, { type: 'text' }> => e.type === 'text').map((e) => e.delta).join('').trim().length).toBeGreaterThan(0);
    } finally {
      await session.close();
    }
  }, 30_000);

  it('stops when the signal aborts, and close is idempotent', async () => {
    const llm = get();
    const session = await llm.session(opts);
    const ctl = new AbortController();
    ctl.abort();
    const run = (async () => {
      const out: LlmEvent[] = [];
      try {
        for await (const e of session.respond({ system: '', messages: [{ role: 'user', content: 'Hi' }], tools: [], signal: ctl.signal })) out.push(e);
      } catch {
        // an AbortError is allowed
      }
      return out;
    })();
    const out = await within(5000, run, 'aborted respond');
    expect(out.filter((e) => e.type === 'text').length).toBeLessThanOrEqual(1);
    await session.close();
    await session.close();
  }, 30_000);
}

export function toolsKit(get: () => ToolsProvider): void {
  it('every tool has a unique snake_case name, a description and a JSON-schema-able parameter schema', () => {
    const tools = get().tools;
    expect(tools.length).toBeGreaterThan(0);
    const names = tools.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const t of tools) {
      expect(t.name).toMatch(/^[a-z][a-z0-9_]{1,63}$/);
      expect(t.description.length).toBeGreaterThan(10);
      const js = z.toJSONSchema(t.parameters, { io: 'input', unrepresentable: 'any' }) as { type?: string };
      expect(js.type).toBe('object');
      if (t.timeoutMs !== undefined) expect(t.timeoutMs).toBeGreaterThan(0);
    }
  });

  it('rejects malformed arguments through the schema (nothing reaches execute)', () => {
    for (const t of get().tools) {
      expect(t.parameters.safeParse('not an object').success).toBe(false);
      expect(t.parameters.safeParse([1, 2, 3]).success).toBe(false);
    }
  });
}

/** Resample helper for kits that need another rate. */
export function atRate(frame: AudioFrame, rate: AudioFrame['sampleRate']): AudioFrame {
  if (frame.sampleRate === rate) return frame;
  const r = createResampler(frame.sampleRate, rate);
  const a = r.process(frame);
  const b = r.flush();
  const out = new Int16Array(a.samples.length + b.samples.length);
  out.set(a.samples);
  out.set(b.samples, a.samples.length);
  return { samples: out, sampleRate: rate };
}
