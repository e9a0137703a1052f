/** The session document: versioned, validated on read, clear about what is wrong. */
import { describe, expect, it } from 'vitest';
import { InvalidSessionDocument, newSessionDocument, parseSessionDocument, serializeSessionDocument } from '../../src/sessions/document.js';

const base = newSessionDocument({
  callId: '1700000000.7',
  channelId: '1700000000.7',
  agentName: 'support',
  caller: { number: '+15550100', name: 'Ada' },
  dialed: '100',
  media: { bridgeId: 'b1', mediaChannelId: '1700000000.7-media' },
  now: new Date('2030-01-01T10:00:00Z'),
});

describe('session document', () => {
  it('starts a call at turn 0 with an empty conversation', () => {
    expect(base).toEqual({
      v: 1,
      callId: '1700000000.7',
      channelId: '1700000000.7',
      agentName: 'support',
      caller: { number: '+15550100', name: 'Ada' },
      dialed: '100',
      createdAt: '2030-01-01T10:00:00.000Z',
      updatedAt: '2030-01-01T10:00:00.000Z',
      turn: 0,
      phase: 'active',
      history: [],
      variables: {},
      media: { bridgeId: 'b1', mediaChannelId: '1700000000.7-media' },
    });
  });

  it('round-trips through JSON, the LLM snapshot as it was', () => {
    const d = { ...base, turn: 3, llm: { current: 'ask', slots: { order_id: '30552' }, retries: { ask: 1 } }, variables: { a: 'b' } };
    expect(parseSessionDocument(serializeSessionDocument(d))).toEqual(d);
  });

  it('names what is wrong with a document it cannot use', () => {
    const bad = (patch: Record<string, unknown>): string => JSON.stringify({ ...base, ...patch });
    expect(() => parseSessionDocument('nope')).toThrow(InvalidSessionDocument);
    expect(() => parseSessionDocument(bad({ v: 2 }))).toThrow('document version 2 (this Switchboard reads version 1)');
    expect(() => parseSessionDocument(JSON.stringify([1]))).toThrow(/version undefined/);
    expect(() => parseSessionDocument(bad({ turn: -1 }))).toThrow(/turn:/);
    expect(() => parseSessionDocument(bad({ history: [{ role: 'user' }] }))).toThrow(/history\.0\.content/);
    expect(() => parseSessionDocument(bad({ variables: { a: 1 } }))).toThrow(/variables\.a/);
    expect(() => parseSessionDocument(bad({ createdAt: 'yesterday' }))).toThrow(/createdAt: must be an ISO time/);
    expect(() => parseSessionDocument(bad({ extra: true }))).toThrow(/extra/);
  });

  it('refuses to serialise what JSON cannot hold', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => serializeSessionDocument({ ...base, llm: cyclic })).toThrow(/cannot be serialised/);
  });
});
