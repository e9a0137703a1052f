/**
 * The LlmSession contract: streaming, the strict tool set, schema-fitted arguments, tool
 * results, cancellation, and the plugin's loading through the real plugin loader.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { isAbortError, type ChatMessage, type LlmEvent, type LlmSession, type ToolSpec } from '../../src/plugins/api.js';
import { inspectPlugins, PluginLoadError, startPlugins } from '../../src/plugins/loader.js';
import plugin, { createScriptProvider } from './index.js';
import { chunkText, parseToolContent, type ScriptSession } from './session.js';
import { calledNames, collect, fakeCrm, FakeLoop, scriptSession, toolSpecs } from './testing.js';

const SCENARIO = `
version: 1
name: contract
start: menu
fallback: { say: "Sorry, I can't do that here.", action: transfer, destination: operator }
intents:
  lookup: { examples: [look me up, who am i], keywords: [look me up] }
  status: { examples: [order status, where is my order], slots: [order_id] }
  leave: { examples: [goodbye], keywords: [bye] }
slots:
  order_id: { type: digits, minLength: 3 }
states:
  menu:
    say: Hello. How can I help? I can look you up or check an order.
    intents: { lookup: who, status: ask, leave: bye }
  who:
    tool: { name: lookup_customer, args: { phone: "{{var.callerNumber}}" }, ifUnavailable: anonymous }
    branches:
      - when: ok
        say: "Hello {{result.name}}."
        goto: menu
      - say: I could not find you.
        goto: menu
  anonymous:
    say: I can't look you up on this line.
    next: menu
  ask:
    collect: order_id
    say: What is the number?
    next: check
  check:
    say: Checking.
    tool: { name: get_order_status, args: { order_id: "{{order_id}}" } }
    branches:
      - when: ok
        say: "Status {{result.status}}."
        goto: menu
      - when: error
        say: "Error: {{error}}."
        goto: menu
  bye:
    say: Goodbye.
    end: true
`;

const crm = fakeCrm({ '427': { status: 'out_for_delivery' } });
const ALL = toolSpecs();

async function respondAll(session: LlmSession, messages: ChatMessage[], tools: readonly ToolSpec[], signal?: AbortSignal): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const ev of session.respond({ system: '', messages, tools, signal: signal ?? new AbortController().signal })) events.push(ev);
  return events;
}

describe('streaming', () => {
  it('streams a reply as several deltas that join to the full text, cut between words', async () => {
    const s = await scriptSession(SCENARIO);
    const r = await collect(s, [], ALL);
    expect(r.text).toBe('Hello. How can I help? I can look you up or check an order.');
    expect(r.deltas).toBeGreaterThan(2);
    const deltas = r.events.flatMap((e) => (e.type === 'text' ? [e.delta] : []));
    // sentence ends fall inside deltas, so the loop's sentence splitter is exercised
    expect(deltas.some((d) => /[.?!]\s+\S/.test(d))).toBe(true);
    expect(r.events.at(-1)).toEqual({ type: 'done', reason: 'stop' });
  });

  it('puts tool calls after the text and ends with done(tool_calls)', async () => {
    const s = await scriptSession(SCENARIO);
    await collect(s, [{ role: 'user', content: 'order status' }], ALL);
    const r = await collect(s, [{ role: 'user', content: '427' }], ALL);
    expect(r.text).toBe('Checking.');
    expect(r.events.map((e) => e.type)).toEqual(['text', 'tool_call', 'done']);
    expect(r.events.at(-1)).toEqual({ type: 'done', reason: 'tool_calls' });
  });

  it('chunks text keeping every character', () => {
    const text = 'One two three. Four five, six seven eight nine? Ten.';
    expect(chunkText(text).join('')).toBe(text);
    expect(chunkText('')).toEqual([]);
  });
});

describe('strict tool set', () => {
  it('never calls a tool that was not offered: fallback line, then transfer', async () => {
    const s = await scriptSession(SCENARIO);
    const tools = toolSpecs(['transfer_call', 'end_call']);
    await collect(s, [{ role: 'user', content: 'where is my order' }], tools);
    const r = await collect(s, [{ role: 'user', content: 'four two seven' }], tools);
    expect(r.text).toBe("Sorry, I can't do that here.");
    expect(calledNames(r.calls)).toEqual(['transfer_call']);
    expect(r.calls[0]!.arguments).toMatchObject({ destination: 'operator' });
  });

  it('hangs up instead when transfer_call is not offered either', async () => {
    const s = await scriptSession(SCENARIO);
    const tools = toolSpecs(['end_call']);
    await collect(s, [{ role: 'user', content: 'where is my order' }], tools);
    const r = await collect(s, [{ role: 'user', content: '427' }], tools);
    expect(r.text).toBe("Sorry, I can't do that here.");
    expect(calledNames(r.calls)).toEqual(['end_call']);
  });

  it('hangs up when the fallback destination is not one the agent may transfer to', async () => {
    const s = await scriptSession(SCENARIO);
    const transferBillingOnly: ToolSpec = {
      name: 'transfer_call',
      description: 'transfer',
      parameters: { type: 'object', properties: { destination: { type: 'string', enum: ['billing'] } }, required: ['destination'] },
    };
    const tools = [transferBillingOnly, ...toolSpecs(['end_call'])];
    await collect(s, [{ role: 'user', content: 'where is my order' }], tools);
    const events = await respondAll(s, [{ role: 'user', content: '427' }], tools);
    const calls = events.flatMap((e) => (e.type === 'tool_call' ? [e.call.name] : []));
    expect(calls).toEqual(['end_call']);
  });

  it('only speaks when it may neither act, transfer nor hang up', async () => {
    const s = await scriptSession(SCENARIO);
    await collect(s, [{ role: 'user', content: 'where is my order' }], []);
    const r = await collect(s, [{ role: 'user', content: '427' }], []);
    expect(r.text).toBe("Sorry, I can't do that here.");
    expect(r.calls).toEqual([]);
    expect(r.events.at(-1)).toEqual({ type: 'done', reason: 'stop' });
  });

  it('takes the ifUnavailable path for an optional tool', async () => {
    const s = await scriptSession(SCENARIO, { variables: { callerNumber: '+15550100' } });
    const r = await collect(s, [{ role: 'user', content: 'look me up' }], toolSpecs(['get_order_status', 'end_call']));
    expect(r.text).toBe("I can't look you up on this line. Hello. How can I help? I can look you up or check an order.");
    expect(r.calls).toEqual([]);
  });

  it('fills arguments from call variables and reads the result', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO, { variables: { callerNumber: '+15550100' } }), ALL, crm.handlers);
    const t = await loop.say('who am I');
    expect(t.calls[0]).toMatchObject({ name: 'lookup_customer', arguments: { phone: '+15550100' } });
    expect(t.text).toMatch(/^Hello Ada\. Hello\. How can I help\?/);
  });

  it('does not call a tool with a required argument missing: it takes the error branch', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO), ALL, crm.handlers);
    const t = await loop.say('look me up');
    expect(t.calls).toEqual([]);
    expect(t.text).toMatch(/^I could not find you\./);
  });

  it('fits argument types to the tool schema', async () => {
    const s = await scriptSession(SCENARIO);
    const intStatus: ToolSpec = {
      name: 'get_order_status',
      description: 'status',
      parameters: { type: 'object', properties: { order_id: { type: 'integer' } }, required: ['order_id'], additionalProperties: false },
    };
    await respondAll(s, [{ role: 'user', content: 'order status' }], [intStatus]);
    const events = await respondAll(s, [{ role: 'user', content: 'four two seven' }], [intStatus]);
    const call = events.find((e) => e.type === 'tool_call');
    expect(call).toMatchObject({ type: 'tool_call', call: { name: 'get_order_status', arguments: { order_id: 427 } } });
  });
});

describe('tool results', () => {
  async function atCheck(): Promise<{ s: LlmSession; id: string; messages: ChatMessage[] }> {
    const s = await scriptSession(SCENARIO);
    await collect(s, [{ role: 'user', content: 'order status' }], ALL);
    const messages: ChatMessage[] = [{ role: 'user', content: '427' }];
    const r = await collect(s, messages, ALL);
    const call = r.calls.find((c) => c.name === 'get_order_status')!;
    messages.push({ role: 'assistant', content: r.text, toolCalls: r.calls });
    return { s, id: call.id, messages };
  }

  it('continues the branch for the matching tool call id', async () => {
    const { s, id, messages } = await atCheck();
    messages.push({ role: 'tool', toolCallId: id, name: 'get_order_status', content: JSON.stringify({ ok: true, data: { status: 'out_for_delivery' } }) });
    const r = await collect(s, messages, ALL);
    expect(r.text).toMatch(/^Status out for delivery\. Hello\./);
  });

  it('takes the error branch for an error result and for an unreadable one', async () => {
    const a = await atCheck();
    a.messages.push({ role: 'tool', toolCallId: a.id, name: 'get_order_status', content: JSON.stringify({ ok: false, error: 'no such order' }) });
    expect((await collect(a.s, a.messages, ALL)).text).toMatch(/^Error: no such order\./);
    const b = await atCheck();
    b.messages.push({ role: 'tool', toolCallId: b.id, name: 'get_order_status', content: '<html>502</html>' });
    expect((await collect(b.s, b.messages, ALL)).text).toMatch(/^Error: the tool answered something unreadable\./);
  });

  it('ignores results for calls it did not make', async () => {
    const { s, messages } = await atCheck();
    messages.push({ role: 'tool', toolCallId: 'someone-else', name: 'get_order_status', content: JSON.stringify({ ok: true, data: {} }) });
    const r = await collect(s, messages, ALL);
    expect(r.events).toEqual([{ type: 'done', reason: 'stop' }]);
  });

  it('parses tool content', () => {
    expect(parseToolContent('{"ok":true,"data":{"a":1}}')).toEqual({ ok: true, data: { a: 1 } });
    expect(parseToolContent('{"ok":false,"error":"x"}')).toEqual({ ok: false, error: 'x' });
    expect(parseToolContent('{"ok":false}')).toEqual({ ok: false, error: 'failed' });
    expect(parseToolContent('"just text"').ok).toBe(false);
  });

  it('says the transfer-failed line and hangs up when a transfer fails', async () => {
    const handlers = { ...crm.handlers, transfer_call: () => ({ ok: false as const, error: 'busy' }) };
    const loop = new FakeLoop(await scriptSession(SCENARIO), toolSpecs(['transfer_call', 'end_call']), handlers);
    await loop.say('order status');
    const t = await loop.say('427');
    expect(t.text).toBe("Sorry, I can't do that here. I'm sorry, I couldn't connect you right now. Please call back later. Goodbye.");
    expect(calledNames(t.calls)).toEqual(['transfer_call', 'end_call']);
    expect(loop.ended).toBe('hung_up');
  });

  it('hangs up again if the caller speaks after the end', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO), ALL, crm.handlers);
    await loop.say('bye');
    const t = await loop.say('hello?');
    expect(t.text).toBe('');
    expect(calledNames(t.calls)).toEqual(['end_call']);
  });
});

describe('cancellation', () => {
  it('an already aborted turn throws AbortError and leaves the dialog untouched', async () => {
    const s = (await scriptSession(SCENARIO)) as ScriptSession;
    await collect(s, [], ALL);
    const before = s.snapshot();
    const ac = new AbortController();
    ac.abort();
    await expect(respondAll(s, [{ role: 'user', content: 'order status' }], ALL, ac.signal)).rejects.toSatisfy(isAbortError);
    expect(s.snapshot()).toEqual(before);
    const r = await collect(s, [{ role: 'user', content: 'order status' }], ALL);
    expect(r.text).toBe('What is the number?');
  });

  it('an abort before the first delta restores the state', async () => {
    const s = (await scriptSession(SCENARIO)) as ScriptSession;
    const before = s.snapshot();
    const ac = new AbortController();
    const it = s.respond({ system: '', messages: [{ role: 'user', content: 'order status' }], tools: ALL, signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next();
    ac.abort(); // lands during the first yield to the event loop
    await expect(first).rejects.toSatisfy(isAbortError);
    expect(s.snapshot()).toEqual(before);
  });

  it('an abort mid-reply stops the stream; a tool call never sent is dropped and the next words are taken where it listened', async () => {
    const s = (await scriptSession(SCENARIO)) as ScriptSession;
    await collect(s, [{ role: 'user', content: 'order status' }], ALL);
    const ac = new AbortController();
    const seen: LlmEvent[] = [];
    const run = async (): Promise<void> => {
      for await (const ev of s.respond({ system: '', messages: [{ role: 'user', content: '427' }], tools: ALL, signal: ac.signal })) {
        seen.push(ev);
        if (ev.type === 'text') ac.abort(); // the caller barges in while "Checking." is spoken
      }
    };
    await expect(run()).rejects.toSatisfy(isAbortError);
    expect(seen.map((e) => e.type)).toEqual(['text']);
    expect(s.snapshot().status).toBe('awaiting_tool');
    // the caller corrects the number: the dialog takes it in the number question
    const r = await collect(s, [{ role: 'user', content: 'sorry, four two eight' }], ALL);
    expect(r.calls.find((c) => c.name === 'get_order_status')!.arguments).toEqual({ order_id: '428' });
  });

  it('re-issues a transfer that was cut off when the caller speaks again', async () => {
    const s = (await scriptSession(SCENARIO)) as ScriptSession;
    const tools = toolSpecs(['transfer_call', 'end_call']);
    await collect(s, [{ role: 'user', content: 'order status' }], tools);
    const ac = new AbortController();
    const run = async (): Promise<void> => {
      for await (const ev of s.respond({ system: '', messages: [{ role: 'user', content: '427' }], tools, signal: ac.signal })) {
        if (ev.type === 'text') ac.abort(); // fallback line spoken, transfer_call never sent
      }
    };
    await expect(run()).rejects.toSatisfy(isAbortError);
    const r = await collect(s, [{ role: 'user', content: 'hello?' }], tools);
    expect(calledNames(r.calls)).toEqual(['transfer_call']);
    expect(r.calls[0]!.arguments).toMatchObject({ destination: 'operator' });
  });

  it('refuses to respond after close', async () => {
    const s = await scriptSession(SCENARIO);
    await s.close();
    await expect(respondAll(s, [], ALL)).rejects.toThrow(/closed/);
  });
});

describe('slots in a dialog', () => {
  const BOOKING = `
version: 1
name: booking
start: ask_name
settings: { timeZone: UTC }
slots:
  who: { type: name }
  day: { type: date }
  speed: { type: enum, values: { express: [next day, fast], standard: [normal, regular] } }
states:
  ask_name:
    say: Your name?
    collect: who
    next: ask_day
  ask_day:
    say: "Thanks {{who}}. Which day?"
    collect: day
    next: ask_speed
  ask_speed:
    say: Express or standard?
    collect: speed
    next: done
  done:
    say: "{{who}}, {{speed}} delivery on {{day | date}} ({{day}})."
    end: true
`;

  it('fills name, date (from the injected clock) and enum slots and speaks them', async () => {
    // Friday 1 May 2026, late evening UTC
    const s = await scriptSession(BOOKING, { now: () => new Date('2026-05-01T22:00:00Z') });
    expect((await collect(s, [{ role: 'user', content: 'this is Ann Lee' }], ALL)).text).toBe('Thanks Ann Lee. Which day?');
    expect((await collect(s, [{ role: 'user', content: 'next tuesday' }], ALL)).text).toBe('Express or standard?');
    const r = await collect(s, [{ role: 'user', content: 'the normal one' }], ALL);
    expect(r.text).toBe('Ann Lee, standard delivery on Tuesday the 5th of May (2026-05-05).');
    expect(calledNames(r.calls)).toEqual(['end_call']);
  });
});

describe('plugin', () => {
  it('has a manifest the loader accepts and a strict config schema', () => {
    expect(plugin.manifest).toMatchObject({ name: 'llm-script', kind: 'llm', apiVersion: '^1.0.0' });
    expect(plugin.manifest.configSchema.safeParse({ scenario: 'a.yaml', matchThreshold: 0.6, maxRetries: 3 }).success).toBe(true);
    expect(plugin.manifest.configSchema.safeParse({ scenario: 'a.yaml', matchTreshold: 0.6 }).success).toBe(false);
    expect(plugin.manifest.configSchema.safeParse({}).success).toBe(false);
  });

  it('resolves the scenario against the config directory and applies config overrides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llm-script-'));
    await writeFile(join(dir, 'flow.yaml'), SCENARIO);
    const provider = await createScriptProvider({ scenario: 'flow.yaml', matchThreshold: 0.9, maxRetries: 4 }, { configDir: dir, log: silentLogger });
    expect(provider.engine.threshold).toBe(0.9);
    expect(provider.engine.maxRetries).toBe(4);
    const s = await provider.session({ callId: 'c1', agent: 'a', language: 'en-US', variables: {} });
    expect((await collect(s, [], ALL)).text).toMatch(/^Hello\./);
  });

  it('loads through the plugin loader, and a bad scenario stops startup naming each problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llm-script-'));
    await writeFile(join(dir, 'good.yaml'), SCENARIO);
    await writeFile(join(dir, 'bad.yaml'), SCENARIO.replace('next: check', 'next: chekc').replace('type: digits', 'type: digit'));
    const ctx = { log: silentLogger, signal: new AbortController().signal, cacheDir: dir, configDir: dir };

    const good = await startPlugins(await inspectPlugins({ 'llm-script': { scenario: 'good.yaml' } }), ctx);
    expect(good.llm.get('llm-script')).toBeDefined();
    await good.close();

    const inspected = await inspectPlugins({ 'llm-script': { scenario: 'bad.yaml' } });
    const err = await startPlugins(inspected, ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PluginLoadError);
    const msg = (err as PluginLoadError).message;
    expect(msg).toContain('factory_failed');
    expect(msg).toMatch(/slots\.order_id\.type \(line \d+\): unknown slot type/);
  });
});
