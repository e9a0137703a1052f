/**
 * Translation of raw ARI JSON into Switchboard's typed events: well-formed payloads of each
 * handled event type (shaped like Asterisk 22's), malformed ones (missing or broken channel,
 * fields of the wrong type, bad DTMF digits), the ignored-on-purpose types versus unknown
 * ones, and a seeded fuzz run: 20 000 random JSON-ish values never throw and always come out
 * well formed.
 */
import { describe, expect, it } from 'vitest';
import { IGNORED_EVENT_TYPES, toAriBridge, toAriChannel, translateAriEvent } from '../../src/ari/events.js';
import type { AriChannel, AriEvent } from '../../src/ari/types.js';

/** A channel object as Asterisk 22 sends it in events. */
function rawChannel(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '1714557600.42',
    name: 'PJSIP/alice-00000001',
    state: 'Ring',
    protocol_id: 'a84f6c1e-0e5b-4c4b-9a2b-5b3c6e1d2f00',
    caller: { name: 'Alice', number: '1001' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'from-internal', exten: '100', priority: 2, app_name: 'Stasis', app_data: 'switchboard' },
    creationtime: '2024-05-01T10:00:00.000+0000',
    language: 'en',
    channelvars: { SWITCHBOARD_AGENT: 'echo' },
    ...over,
  };
}

function rawEvent(type: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type,
    timestamp: '2024-05-01T10:00:01.000+0000',
    asterisk_id: '52:54:00:12:34:56',
    application: 'switchboard',
    channel: rawChannel(),
    ...over,
  };
}

const ALICE: AriChannel = {
  id: '1714557600.42',
  name: 'PJSIP/alice-00000001',
  state: 'Ring',
  caller: { name: 'Alice', number: '1001' },
  dialplan: { context: 'from-internal', exten: '100', priority: 2, appName: 'Stasis', appData: 'switchboard' },
  channelvars: { SWITCHBOARD_AGENT: 'echo' },
};

const HANDLED = ['StasisStart', 'StasisEnd', 'ChannelDtmfReceived', 'ChannelHangupRequest', 'ChannelDestroyed'] as const;

describe('toAriChannel', () => {
  it('maps a real channel object and drops the fields the engine does not use', () => {
    expect(toAriChannel(rawChannel())).toEqual(ALICE);
  });

  it('keeps only string channel variables', () => {
    const c = toAriChannel(rawChannel({ channelvars: { A: 'x', B: 2, C: null, D: { nested: 'y' }, E: '' } }));
    expect(c.channelvars).toEqual({ A: 'x', E: '' });
  });

  it('has no dialplan or variables when Asterisk sent none', () => {
    const c = toAriChannel(rawChannel({ dialplan: undefined, channelvars: undefined }));
    expect(c.dialplan).toBeUndefined();
    expect(c.channelvars).toBeUndefined();
  });

  it('turns wrongly typed fields into neutral defaults', () => {
    const c = toAriChannel({
      id: 42,
      name: null,
      state: ['Up'],
      caller: 'Alice <1001>',
      dialplan: { context: 7, exten: false, priority: 'two' },
      channelvars: 'SWITCHBOARD_AGENT=echo',
    });
    expect(c).toEqual({
      id: '',
      name: '',
      state: '',
      caller: { name: '', number: '' },
      dialplan: { context: '', exten: '', priority: 1 },
      channelvars: undefined,
    });
  });

  it('rejects non-finite priorities', () => {
    for (const priority of [Number.NaN, Number.POSITIVE_INFINITY, '3', null]) {
      expect(toAriChannel(rawChannel({ dialplan: { context: 'c', exten: 'e', priority } })).dialplan?.priority).toBe(1);
    }
  });

  for (const [label, raw] of [
    ['null', null],
    ['undefined', undefined],
    ['a string', 'PJSIP/alice'],
    ['a number', 7],
    ['an array', [rawChannel()]],
  ] as const) {
    it(`gives an empty channel for ${label}`, () => {
      expect(toAriChannel(raw)).toEqual({ id: '', name: '', state: '', caller: { name: '', number: '' }, dialplan: undefined, channelvars: undefined });
    });
  }
});

describe('toAriBridge', () => {
  it('maps a real bridge object', () => {
    const raw = {
      id: 'switchboard-1714557600.42',
      technology: 'simple_bridge',
      bridge_type: 'mixing',
      bridge_class: 'stasis',
      creator: 'Stasis',
      name: 'switchboard-1714557600.42',
      channels: ['1714557600.42', '1714557600.42-media'],
      creationtime: '2024-05-01T10:00:01.000+0000',
      video_mode: 'none',
    };
    expect(toAriBridge(raw)).toEqual({ id: 'switchboard-1714557600.42', bridgeType: 'mixing', channels: ['1714557600.42', '1714557600.42-media'] });
  });

  it('keeps only string channel ids and defaults the rest', () => {
    expect(toAriBridge({ id: 5, bridge_type: null, channels: ['a', 1, null, { id: 'b' }, 'c'] })).toEqual({ id: '', bridgeType: '', channels: ['a', 'c'] });
    expect(toAriBridge({ id: 'b1', channels: 'a,b' })).toEqual({ id: 'b1', bridgeType: '', channels: [] });
    for (const raw of [null, undefined, 'bridge', 3, []]) expect(toAriBridge(raw)).toEqual({ id: '', bridgeType: '', channels: [] });
  });
});

describe('translateAriEvent: handled types', () => {
  it('StasisStart with its string arguments', () => {
    expect(translateAriEvent(rawEvent('StasisStart', { args: ['echo', 3, 'x', null] }))).toEqual({ type: 'StasisStart', channel: ALICE, args: ['echo', 'x'] });
    expect(translateAriEvent(rawEvent('StasisStart', { args: 'echo' }))).toEqual({ type: 'StasisStart', channel: ALICE, args: [] });
    expect(translateAriEvent(rawEvent('StasisStart'))).toEqual({ type: 'StasisStart', channel: ALICE, args: [] });
  });

  it('StasisEnd', () => {
    expect(translateAriEvent(rawEvent('StasisEnd'))).toEqual({ type: 'StasisEnd', channel: ALICE });
  });

  it('ChannelDtmfReceived for every valid digit, with its duration', () => {
    for (const digit of '0123456789ABCD*#') {
      expect(translateAriEvent(rawEvent('ChannelDtmfReceived', { digit, duration_ms: 120 }))).toEqual({
        type: 'ChannelDtmfReceived',
        channel: ALICE,
        digit,
        durationMs: 120,
      });
    }
    const noDuration = translateAriEvent(rawEvent('ChannelDtmfReceived', { digit: '5', duration_ms: '120' }));
    expect(noDuration).toMatchObject({ type: 'ChannelDtmfReceived', digit: '5', durationMs: 0 });
  });

  it('ChannelDtmfReceived with a bad digit is an unexpected Unhandled, not a DTMF event', () => {
    for (const digit of ['', 'E', 'a', 'd', '12', ' 1', '1 ', '\n', '５', 5, null, undefined, ['1']]) {
      expect(translateAriEvent(rawEvent('ChannelDtmfReceived', { digit, duration_ms: 100 }))).toEqual({
        type: 'Unhandled',
        rawType: 'ChannelDtmfReceived(bad digit)',
        known: false,
      });
    }
  });

  it('ChannelHangupRequest with and without a cause', () => {
    expect(translateAriEvent(rawEvent('ChannelHangupRequest', { cause: 16, soft: true }))).toEqual({ type: 'ChannelHangupRequest', channel: ALICE, cause: 16 });
    expect(translateAriEvent(rawEvent('ChannelHangupRequest'))).toEqual({ type: 'ChannelHangupRequest', channel: ALICE, cause: undefined });
    expect(translateAriEvent(rawEvent('ChannelHangupRequest', { cause: '16' }))).toEqual({ type: 'ChannelHangupRequest', channel: ALICE, cause: undefined });
  });

  it('ChannelDestroyed with its cause, defaulted when missing or wrongly typed', () => {
    expect(translateAriEvent(rawEvent('ChannelDestroyed', { cause: 16, cause_txt: 'Normal Clearing' }))).toEqual({
      type: 'ChannelDestroyed',
      channel: ALICE,
      cause: 16,
      causeText: 'Normal Clearing',
    });
    expect(translateAriEvent(rawEvent('ChannelDestroyed', { cause: 'x', cause_txt: 3 }))).toEqual({ type: 'ChannelDestroyed', channel: ALICE, cause: 0, causeText: '' });
  });

  for (const type of HANDLED) {
    it(`${type} without a usable channel is an unexpected Unhandled`, () => {
      const extra = type === 'ChannelDtmfReceived' ? { digit: '1' } : {};
      for (const channel of [undefined, null, 'PJSIP/alice', 42, [], {}, { id: 42, name: 'PJSIP/alice' }, { id: null }]) {
        expect(translateAriEvent(rawEvent(type, { ...extra, channel }))).toEqual({ type: 'Unhandled', rawType: type, known: false });
      }
    });

    it(`${type} with an empty-string channel id still carries a (defaulted) channel`, () => {
      const extra = type === 'ChannelDtmfReceived' ? { digit: '1' } : {};
      const e = translateAriEvent(rawEvent(type, { ...extra, channel: { id: '' } }));
      expect(e.type).toBe(type);
      expect(e.type !== 'Unhandled' && e.channel).toEqual({ id: '', name: '', state: '', caller: { name: '', number: '' }, dialplan: undefined, channelvars: undefined });
    });
  }
});

describe('translateAriEvent: types the engine does not act on', () => {
  it('every ignored type is Unhandled with known: true, with or without a channel', () => {
    expect(IGNORED_EVENT_TYPES.size).toBeGreaterThan(20);
    for (const type of IGNORED_EVENT_TYPES) {
      expect(translateAriEvent(rawEvent(type))).toEqual({ type: 'Unhandled', rawType: type, known: true });
      expect(translateAriEvent(rawEvent(type, { channel: undefined, bridge: { id: 'b' } }))).toEqual({ type: 'Unhandled', rawType: type, known: true });
    }
  });

  it('handled types are not in the ignored set', () => {
    for (const type of HANDLED) expect(IGNORED_EVENT_TYPES.has(type)).toBe(false);
  });

  it('unknown, misspelled or missing types are Unhandled with known: false', () => {
    for (const type of ['ChannelRinging', 'stasisstart', 'StasisStart ', 'Unhandled', '__proto__', 'constructor', 'toString', '']) {
      expect(translateAriEvent(rawEvent(type))).toEqual({ type: 'Unhandled', rawType: type, known: false });
    }
    expect(translateAriEvent({ channel: rawChannel() })).toEqual({ type: 'Unhandled', rawType: '<missing type>', known: false });
    expect(translateAriEvent({ type: 7, channel: rawChannel() })).toEqual({ type: 'Unhandled', rawType: '<missing type>', known: false });
  });

  it('non-object payloads are Unhandled', () => {
    for (const raw of [null, undefined, 0, 'StasisStart', true, [], [rawEvent('StasisStart')]]) {
      expect(translateAriEvent(raw)).toEqual({ type: 'Unhandled', rawType: '<missing type>', known: false });
    }
  });
});

// ---------------------------------------------------------------------------------------

/** mulberry32: small, seeded, good enough to drive a fuzzer reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING_STRINGS = ['', ' ', '1', '#', '*', 'A', 'D', 'E', '12', 'ü', '\u0000', '\n', 'PJSIP/x', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'id'];
const INTERESTING_NUMBERS = [0, -0, 1, -1, 16, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_SAFE_INTEGER, 2 ** 53 + 1];
const EVENT_TYPES = [...HANDLED, ...IGNORED_EVENT_TYPES, 'Bogus', ''];
const KEYS = ['type', 'channel', 'id', 'name', 'state', 'caller', 'number', 'dialplan', 'context', 'exten', 'priority', 'channelvars', 'args', 'digit', 'duration_ms', 'cause', 'cause_txt', 'bridge', 'channels', 'bridge_type', '__proto__', 'constructor'];

function fuzzValue(rand: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const r = rand();
  if (depth <= 0 || r < 0.35) {
    const k = Math.floor(rand() * 8);
    switch (k) {
      case 0:
        return null;
      case 1:
        return undefined;
      case 2:
        return rand() < 0.5;
      case 3:
        return pick(INTERESTING_NUMBERS);
      case 4:
        return Math.floor(rand() * 2000) - 1000;
      case 5:
        return pick(INTERESTING_STRINGS);
      case 6:
        return pick(EVENT_TYPES);
      default:
        return String.fromCharCode(...Array.from({ length: Math.floor(rand() * 6) }, () => Math.floor(rand() * 0x3000)));
    }
  }
  if (r < 0.5) return Array.from({ length: Math.floor(rand() * 5) }, () => fuzzValue(rand, depth - 1));
  const o: Record<string, unknown> = rand() < 0.1 ? (Object.create(null) as Record<string, unknown>) : {};
  const n = Math.floor(rand() * 7);
  for (let i = 0; i < n; i++) {
    const key = rand() < 0.8 ? pick(KEYS) : pick(INTERESTING_STRINGS);
    // defineProperty so "__proto__" becomes an own key, as JSON.parse makes it.
    Object.defineProperty(o, key, { value: fuzzValue(rand, depth - 1), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

/** Mostly event-shaped values, so the fuzz reaches past the first checks. */
function fuzzEvent(rand: () => number): unknown {
  const r = rand();
  if (r < 0.15) return fuzzValue(rand, 4);
  const e: Record<string, unknown> = rand() < 0.9 ? { type: EVENT_TYPES[Math.floor(rand() * EVENT_TYPES.length)] } : { type: fuzzValue(rand, 1) };
  const channel: Record<string, unknown> = rand() < 0.85 ? { id: rand() < 0.9 ? `${Math.floor(rand() * 1e6)}.${Math.floor(rand() * 100)}` : fuzzValue(rand, 1) } : {};
  for (const k of ['name', 'state', 'caller', 'dialplan', 'channelvars']) if (rand() < 0.5) channel[k] = fuzzValue(rand, 3);
  if (rand() < 0.3) channel.caller = { name: fuzzValue(rand, 1), number: fuzzValue(rand, 1) };
  if (rand() < 0.3) channel.dialplan = { context: fuzzValue(rand, 1), exten: fuzzValue(rand, 1), priority: fuzzValue(rand, 1) };
  e.channel = rand() < 0.9 ? channel : fuzzValue(rand, 2);
  for (const k of ['args', 'digit', 'duration_ms', 'cause', 'cause_txt']) if (rand() < 0.5) e[k] = fuzzValue(rand, 2);
  if (rand() < 0.3) e.digit = '0123456789ABCD*#'[Math.floor(rand() * 16)];
  return e;
}

function assertWellFormed(ev: AriEvent): void {
  const isStr = (v: unknown): boolean => typeof v === 'string';
  switch (ev.type) {
    case 'Unhandled':
      expect(isStr(ev.rawType)).toBe(true);
      expect(typeof ev.known).toBe('boolean');
      if (ev.known) expect(IGNORED_EVENT_TYPES.has(ev.rawType)).toBe(true);
      return;
    case 'StasisStart':
      expect(ev.args.every(isStr)).toBe(true);
      break;
    case 'ChannelDtmfReceived':
      expect(ev.digit).toMatch(/^[0-9A-D*#]$/);
      expect(Number.isFinite(ev.durationMs)).toBe(true);
      break;
    case 'ChannelHangupRequest':
      expect(ev.cause === undefined || Number.isFinite(ev.cause)).toBe(true);
      break;
    case 'ChannelDestroyed':
      expect(Number.isFinite(ev.cause)).toBe(true);
      expect(isStr(ev.causeText)).toBe(true);
      break;
    case 'StasisEnd':
      break;
  }
  const c = ev.channel;
  expect([c.id, c.name, c.state, c.caller.name, c.caller.number].every(isStr)).toBe(true);
  if (c.dialplan) {
    expect(isStr(c.dialplan.context) && isStr(c.dialplan.exten)).toBe(true);
    expect(Number.isFinite(c.dialplan.priority)).toBe(true);
  }
  if (c.channelvars) expect(Object.values(c.channelvars).every(isStr)).toBe(true);
}

describe('translateAriEvent fuzz', () => {
  it('20 000 random JSON-ish values: never throws, always a well-formed event, and reaches every event type', () => {
    const rand = prng(0x5b0a2d);
    const seen = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const raw = fuzzEvent(rand);
      let ev: AriEvent;
      try {
        ev = translateAriEvent(raw);
      } catch (err) {
        throw new Error(`translateAriEvent threw on case ${i}: ${String(err)}`, { cause: err });
      }
      assertWellFormed(ev);
      const key = ev.type === 'Unhandled' ? `Unhandled/${ev.known}` : ev.type;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      // The building blocks must hold up on their own too.
      const e = raw as { channel?: unknown; bridge?: unknown } | null;
      expect(() => toAriChannel(e?.channel)).not.toThrow();
      expect(() => toAriBridge(raw)).not.toThrow();
    }
    // The fuzzer is only worth something if it exercised every branch.
    for (const key of [...HANDLED, 'Unhandled/true', 'Unhandled/false']) {
      expect(seen.get(key) ?? 0, `${key} reached`).toBeGreaterThan(50);
    }
  });
});
