import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AudioFrame } from '../../src/audio/frame.js';
import type { TurnContext } from '../../src/agents/agent.js';
import { builtinTools, type CallAction } from '../../src/conversation/builtin-tools.js';
import { ConversationHistory, estimateTokens } from '../../src/conversation/history.js';
import { SentenceSplitter } from '../../src/conversation/sentence-splitter.js';
import { FILLER_AFTER_MS, runTools, ToolRegistry } from '../../src/conversation/tool-runner.js';
import { PhraseCache, prefetch, Voice } from '../../src/conversation/voice.js';
import { silentLogger } from '../../src/log.js';
import { defineTool, PluginError, type ChatMessage, type TtsProvider } from '../../src/plugins/api.js';

describe('SentenceSplitter', () => {
  const split = (deltas: string[]): string[] => {
    const s = new SentenceSplitter();
    const out = deltas.flatMap((d) => s.push(d));
    return [...out, ...s.flush()];
  };

  it('emits each sentence as soon as the next character shows it ended', () => {
    const s = new SentenceSplitter();
    expect(s.push('Your order is on its way')).toEqual([]);
    expect(s.push('.')).toEqual([]); // "3.5" or "e.g." might follow
    expect(s.push(' It')).toEqual(['Your order is on its way.']);
    expect(s.push(' arrives tomorrow! Anything else?')).toEqual(['It arrives tomorrow!']);
    expect(s.flush()).toEqual(['Anything else?']);
  });

  it('does not cut numbers, abbreviations, initials or domains', () => {
    expect(split(['The fee is 3.50 dollars. Call Dr. Smith or J. Brown at example.com today. Bye.'])).toEqual([
      'The fee is 3.50 dollars.',
      'Call Dr. Smith or J. Brown at example.com today.',
      'Bye.',
    ]);
  });

  it('handles deltas split anywhere, quotes, ellipses and newlines', () => {
    const text = 'He said "stop!" Then... nothing.\nNext line';
    const chars = [...text];
    expect(split(chars)).toEqual(['He said "stop!"', 'Then...', 'nothing.', 'Next line']);
  });

  it('cuts a very long unpunctuated run at a comma or space', () => {
    const s = new SentenceSplitter(60);
    const out = s.push('one two three four five six seven, eight nine ten eleven twelve thirteen fourteen fifteen');
    expect(out.length).toBeGreaterThan(0);
    for (const piece of out) expect(piece.length).toBeLessThanOrEqual(60);
  });
});

describe('ConversationHistory', () => {
  it('keeps the newest messages within the token budget', () => {
    const h = new ConversationHistory(60);
    for (let i = 0; i < 20; i++) h.add({ role: 'user', content: `message number ${i} with some words` });
    const kept = h.trimmed();
    const used = kept.reduce((a, m) => a + estimateTokens(m), 0);
    expect(used).toBeLessThanOrEqual(60);
    expect(kept[kept.length - 1]).toEqual({ role: 'user', content: 'message number 19 with some words' });
    expect(kept.length).toBeLessThan(20);
  });

  it('never separates tool calls from their results and always keeps the newest message', () => {
    const h = new ConversationHistory(40);
    h.add({ role: 'user', content: 'where is order 427' });
    h.add({ role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_order_status', arguments: { order_id: '427' } }] });
    h.add({ role: 'tool', toolCallId: 'c1', name: 'get_order_status', content: JSON.stringify({ ok: true, data: { status: 'shipped', eta: 'tomorrow' } }) });
    h.add({ role: 'user', content: 'x'.repeat(400) }); // alone over budget
    const kept = h.trimmed();
    expect(kept).toHaveLength(1);
    expect((kept[0] as ChatMessage).role).toBe('user');
    const h2 = new ConversationHistory(200);
    for (const m of h.all.slice(0, 3)) h2.add(m);
    const k2 = h2.trimmed();
    const roles = k2.map((m) => m.role);
    if (roles.includes('tool')) expect(roles).toContain('assistant');
  });
});

function turnCtx(overrides: Partial<TurnContext> = {}): TurnContext & { pending: Promise<unknown>[] } {
  const pending: Promise<unknown>[] = [];
  const callCtl = new AbortController();
  const ctx = {
    call: { callId: 'c1', channelId: 'c1', caller: { number: '+15550100', name: '' }, agentName: 'a' },
    signal: new AbortController().signal,
    log: silentLogger,
    variables: new Map<string, string>(),
    turn: 3,
    play: () => Promise.resolve({ completed: true, playedMs: 0, droppedMs: 0 }),
    hangup: () => Promise.resolve(),
    transfer: () => Promise.resolve(),
    beginAgentTurn: () => undefined,
    uninterruptible: <T>(work: (s: AbortSignal) => Promise<T>): Promise<T> => {
      const p = work(callCtl.signal);
      pending.push(p);
      return p;
    },
    pending,
    ...overrides,
  };
  return ctx;
}

describe('runTools', () => {
  const registry = new ToolRegistry();
  const seen: { name: string; key: string; caller: string }[] = [];
  registry.add(
    defineTool({
      name: 'get_order_status',
      description: 'Status of an order by its number.',
      parameters: z.strictObject({ order_id: z.string().regex(/^\d{3,8}$/) }),
      async execute(args, ctx) {
        seen.push({ name: 'get_order_status', key: ctx.idempotencyKey, caller: ctx.callerNumber });
        return { ok: true, data: { order_id: args.order_id, status: 'shipped' } };
      },
    }),
    'test',
  );
  registry.add(
    defineTool({
      name: 'slow_lookup',
      description: 'Takes a while and honours its signal.',
      parameters: z.strictObject({}),
      timeoutMs: 5000,
      async execute(_args, ctx) {
        await new Promise((resolve, reject) => {
          const t = setTimeout(resolve, 1500);
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(t);
            reject(new Error('aborted'));
          });
        });
        return { ok: true, data: {} };
      },
    }),
    'test',
  );
  registry.add(
    defineTool({
      name: 'hangs_forever',
      description: 'Ignores its signal completely.',
      parameters: z.strictObject({}),
      timeoutMs: 100,
      execute: () => new Promise(() => undefined),
    }),
    'test',
  );
  registry.add(
    defineTool({
      name: 'book_slot',
      description: 'A write that must complete even on barge-in.',
      parameters: z.strictObject({ slot: z.string() }),
      interruptible: false,
      async execute(args, ctx) {
        await new Promise((r) => setTimeout(r, 200));
        return { ok: true, data: { booked: args.slot, aborted: ctx.signal.aborted } };
      },
    }),
    'test',
  );
  const allowed = new Set(['get_order_status', 'slow_lookup', 'hangs_forever', 'book_slot']);

  it('refuses tools off the allowlist and unknown tools, and invalid arguments, without running them', async () => {
    seen.length = 0;
    const out = await runTools(
      [
        { id: 'a', name: 'get_order_status', arguments: { order_id: "427'; drop table orders" } },
        { id: 'b', name: 'delete_everything', arguments: {} },
        { id: 'c', name: 'slow_lookup', arguments: {} },
      ],
      { registry, allowed: new Set(['get_order_status']), ctx: turnCtx(), callerNumber: '+15550100', log: silentLogger },
    );
    expect(out.map((o) => o.failure)).toEqual(['invalid', 'refused', 'refused']);
    expect(out.every((o) => !o.result.ok)).toBe(true);
    expect(seen).toEqual([]);
    expect((out[0]!.result as { error: string }).error).toMatch(/order_id/);
  });

  it('runs allowed calls with an idempotency key per call, turn and tool call, and the network caller id', async () => {
    seen.length = 0;
    const out = await runTools([{ id: 'x9', name: 'get_order_status', arguments: { order_id: '427' } }], {
      registry,
      allowed,
      ctx: turnCtx(),
      callerNumber: '+15550100',
      log: silentLogger,
    });
    expect(out[0]!.result).toEqual({ ok: true, data: { order_id: '427', status: 'shipped' } });
    expect(seen).toEqual([{ name: 'get_order_status', key: 'c1:3:x9', caller: '+15550100' }]);
  });

  it('times out a tool that ignores its signal, telling the model so', async () => {
    const out = await runTools([{ id: 't', name: 'hangs_forever', arguments: {} }], { registry, allowed, ctx: turnCtx(), callerNumber: '', log: silentLogger });
    expect(out[0]!.failure).toBe('timeout');
    expect(out[0]!.result).toMatchObject({ ok: false, retryable: true });
  });

  it('plays one filler when a tool is slow, none when it is fast', async () => {
    const fillers: (string | undefined)[] = [];
    await runTools([{ id: 'f', name: 'slow_lookup', arguments: {} }], {
      registry,
      allowed,
      ctx: turnCtx(),
      callerNumber: '',
      log: silentLogger,
      filler: (p) => fillers.push(p),
    });
    expect(fillers).toHaveLength(1);
    const fast: unknown[] = [];
    await runTools([{ id: 'g', name: 'get_order_status', arguments: { order_id: '427' } }], {
      registry,
      allowed,
      ctx: turnCtx(),
      callerNumber: '',
      log: silentLogger,
      filler: (p) => fast.push(p),
    });
    expect(fast).toEqual([]);
    expect(FILLER_AFTER_MS).toBeLessThan(1500);
  });

  it('barge-in cancels an interruptible tool but not a write, which completes under the call signal', async () => {
    const turn = new AbortController();
    const ctx = turnCtx({ signal: turn.signal });
    const running = runTools(
      [
        { id: 'w', name: 'book_slot', arguments: { slot: '10:00' } },
        { id: 's', name: 'slow_lookup', arguments: {} },
      ],
      { registry, allowed, ctx, callerNumber: '', log: silentLogger },
    );
    setTimeout(() => turn.abort(new Error('barge-in')), 50);
    const out = await running;
    expect(out[0]!.result).toEqual({ ok: true, data: { booked: '10:00', aborted: false } });
    expect(ctx.pending).toHaveLength(1); // the write ran as uninterruptible work
    // The interruptible lookup after it never started (or was cancelled).
    expect(out.length === 1 || out[1]!.failure === 'aborted').toBe(true);
  });
});

describe('built-in call-control tools', () => {
  const actions: CallAction[] = [];
  const tools = builtinTools({ operator: { context: 'switchboard-handoff', extension: 'operator', description: 'a human agent' } }, (a) => actions.push(a));
  const byName = new Map(tools.map((t) => [t.name, t]));
  const ctx = turnCtx();
  const toolCtx = { callId: 'c1', turn: 1, idempotencyKey: 'k', callerNumber: '', variables: ctx.variables, signal: ctx.signal, log: silentLogger };

  it('transfers only to allowlisted destinations', async () => {
    const t = byName.get('transfer_call')!;
    expect(await t.execute({ destination: 'sip:+1900premium@evil.example' }, toolCtx)).toMatchObject({ ok: false });
    expect(actions).toEqual([]);
    expect(await t.execute({ destination: 'operator', reason: 'complaint' }, toolCtx)).toMatchObject({ ok: true });
    expect(actions).toEqual([{ kind: 'transfer', destination: 'operator', target: { context: 'switchboard-handoff', extension: 'operator', description: 'a human agent' }, reason: 'complaint' }]);
    expect(t.description).toContain('operator (a human agent)');
  });

  it('end_call requests a hang-up; variables round-trip and names are validated', async () => {
    actions.length = 0;
    await byName.get('end_call')!.execute({}, toolCtx);
    expect(actions).toEqual([{ kind: 'hangup', reason: 'completed' }]);
    expect(byName.get('set_variable')!.parameters.safeParse({ name: 'Bad Name', value: 'x' }).success).toBe(false);
    await byName.get('set_variable')!.execute({ name: 'order_id', value: '427' }, toolCtx);
    expect(await byName.get('get_variable')!.execute({ name: 'order_id' }, toolCtx)).toEqual({ ok: true, data: { order_id: '427' } });
    expect(await byName.get('get_variable')!.execute({ name: 'missing' }, toolCtx)).toMatchObject({ ok: false });
  });
});

/** A TTS that renders a tone; or fails, to exercise the fallback. */
function toneTts(name: string, opts: { failBeforeAudio?: boolean; rate?: 8000 | 16000 } = {}): TtsProvider & { calls: number } {
  const rate = opts.rate ?? 8000;
  const p = {
    calls: 0,
    sampleRate: rate,
    async *synthesize(text: string): AsyncIterable<AudioFrame> {
      p.calls++;
      if (opts.failBeforeAudio) throw new PluginError(name, 'unavailable', 'engine down', true);
      const n = Math.max(1, text.length) * (rate / 100);
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate));
      yield { samples, sampleRate: rate };
    },
    close: () => Promise.resolve(),
  };
  return p;
}

describe('Voice', () => {
  it('renders a fixed phrase once and serves it from the cache afterwards', async () => {
    const tts = toneTts('tts-a');
    const cache = new PhraseCache();
    const v = new Voice({ primary: { name: 'tts-a', provider: tts }, language: 'en-US', cache, log: silentLogger });
    const a = await v.fixed('One moment please.', new AbortController().signal);
    const b = await v.fixed('One moment please.', new AbortController().signal);
    expect(tts.calls).toBe(1);
    expect(b).toBe(a);
    expect(cache.hits).toBe(1);
  });

  it('falls back to the second provider when the first fails before any audio; the fallback rendering is not cached', async () => {
    const bad = toneTts('tts-bad', { failBeforeAudio: true });
    const good = toneTts('tts-good', { rate: 16000 });
    const errors: string[] = [];
    const cache = new PhraseCache();
    const v = new Voice({
      primary: { name: 'tts-bad', provider: bad },
      fallback: { name: 'tts-good', provider: good },
      language: 'en-US',
      cache,
      log: silentLogger,
      onProviderError: (p) => errors.push(p),
    });
    const audio = await v.fixed('Hello.', new AbortController().signal);
    expect(audio.sampleRate).toBe(16000);
    expect(errors).toEqual(['tts-bad']);
    expect(cache.size).toBe(0);
    const noFallback = new Voice({ primary: { name: 'tts-bad', provider: bad }, language: 'en-US', cache, log: silentLogger });
    await expect(noFallback.fixed('Hello.', new AbortController().signal)).rejects.toThrow(/engine down/);
  });

  it('prefetch starts consuming at once, replays in order and rethrows a source error at its point', async () => {
    let produced = 0;
    async function* source(): AsyncIterable<number> {
      for (let i = 0; i < 3; i++) {
        produced++;
        yield i;
      }
      throw new Error('boom');
    }
    const it = prefetch(source());
    await new Promise((r) => setTimeout(r, 10));
    expect(produced).toBe(3); // consumed before anyone iterated
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const x of it) got.push(x);
      })(),
    ).rejects.toThrow('boom');
    expect(got).toEqual([0, 1, 2]);
  });
});
