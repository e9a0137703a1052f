/**
 * CallStateMachine: the full transition table (every legal move succeeds, every other one
 * throws and leaves the machine untouched), no-op self transitions, the terminal `ended`
 * state, change notifications, and time-in-state accounting on an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { CallStateMachine, IllegalTransitionError, type CallState } from '../../src/call/call-state.js';

const STATES: readonly CallState[] = ['answering', 'listening', 'thinking', 'speaking', 'transferring', 'ended'];

/** The transitions the call engine relies on, written out independently of the source. */
const LEGAL: Record<CallState, readonly CallState[]> = {
  answering: ['listening', 'speaking', 'transferring', 'ended'],
  listening: ['thinking', 'speaking', 'transferring', 'ended'],
  thinking: ['listening', 'speaking', 'transferring', 'ended'],
  speaking: ['listening', 'thinking', 'transferring', 'ended'],
  transferring: ['listening', 'ended'],
  ended: [],
};

/** Shortest legal route from `answering` to each state. */
const ROUTE: Record<CallState, readonly CallState[]> = {
  answering: [],
  listening: ['listening'],
  thinking: ['listening', 'thinking'],
  speaking: ['speaking'],
  transferring: ['transferring'],
  ended: ['ended'],
};

function machineIn(state: CallState, onChange?: (from: CallState, to: CallState) => void): CallStateMachine {
  const m = new CallStateMachine(undefined, onChange);
  for (const s of ROUTE[state]) m.to(s);
  expect(m.state).toBe(state);
  return m;
}

describe('CallStateMachine transitions', () => {
  it('starts in answering', () => {
    expect(new CallStateMachine().state).toBe('answering');
  });

  for (const from of STATES) {
    for (const to of STATES) {
      if (from === to) continue;
      const legal = LEGAL[from].includes(to);
      it(`${from} -> ${to} is ${legal ? 'legal' : 'illegal'}`, () => {
        const changes: [CallState, CallState][] = [];
        const m = machineIn(from, (f, t) => changes.push([f, t]));
        changes.length = 0;
        expect(m.can(to)).toBe(legal);
        if (legal) {
          m.to(to);
          expect(m.state).toBe(to);
          expect(changes).toEqual([[from, to]]);
        } else {
          let thrown: unknown;
          try {
            m.to(to);
          } catch (err) {
            thrown = err;
          }
          expect(thrown).toBeInstanceOf(IllegalTransitionError);
          const e = thrown as IllegalTransitionError;
          expect(e.name).toBe('IllegalTransitionError');
          expect([e.from, e.to]).toEqual([from, to]);
          expect(e.message).toBe(`illegal call state transition ${from} -> ${to}`);
          // An illegal request leaves the machine exactly as it was.
          expect(m.state).toBe(from);
          expect(changes).toEqual([]);
        }
      });
    }
  }

  it('a transition to the current state is a silent no-op, even in ended', () => {
    for (const s of STATES) {
      const changes: [CallState, CallState][] = [];
      const m = machineIn(s, (f, t) => changes.push([f, t]));
      changes.length = 0;
      expect(m.can(s)).toBe(true);
      m.to(s);
      expect(m.state).toBe(s);
      expect(changes).toEqual([]);
    }
  });

  it('ended is terminal: nothing leaves it', () => {
    const m = machineIn('ended');
    for (const s of STATES.filter((x) => x !== 'ended')) {
      expect(m.can(s)).toBe(false);
      expect(() => m.to(s)).toThrow(IllegalTransitionError);
    }
  });

  it('a whole call: listening, thinking, speaking, barge-in back to listening, transfer, end', () => {
    const seen: string[] = [];
    const m = new CallStateMachine(undefined, (f, t) => seen.push(`${f}>${t}`));
    for (const s of ['listening', 'thinking', 'speaking', 'listening', 'speaking', 'thinking', 'transferring', 'listening', 'ended'] as const) m.to(s);
    expect(seen).toEqual([
      'answering>listening',
      'listening>thinking',
      'thinking>speaking',
      'speaking>listening',
      'listening>speaking',
      'speaking>thinking',
      'thinking>transferring',
      'transferring>listening',
      'listening>ended',
    ]);
  });
});

describe('CallStateMachine.timeInStates', () => {
  it('accounts each state from entry to exit, the current one up to now, revisits summed', () => {
    let now = 1000;
    const m = new CallStateMachine(() => now);
    now = 1100;
    m.to('listening'); // answering: 100
    now = 1350;
    m.to('thinking'); // listening: 250
    now = 1400;
    m.to('speaking'); // thinking: 50
    now = 2400;
    m.to('listening'); // speaking: 1000
    now = 2410;
    m.to('listening'); // no-op: must not split or restart the interval
    now = 2500;
    m.to('thinking'); // listening: +100 -> 350
    now = 2530;
    expect(m.timeInStates()).toEqual({ answering: 100, listening: 350, thinking: 80, speaking: 1000, transferring: 0, ended: 0 });
    // The current state keeps growing with the clock.
    now = 2600;
    expect(m.timeInStates().thinking).toBe(150);
  });

  it('sums to the elapsed time since construction', () => {
    let now = 0;
    const m = new CallStateMachine(() => now);
    const path: CallState[] = ['listening', 'speaking', 'thinking', 'speaking', 'listening', 'transferring', 'listening', 'ended'];
    path.forEach((s, i) => {
      now += 7 * (i + 1);
      m.to(s);
    });
    now += 13;
    const t = m.timeInStates();
    expect(Object.values(t).reduce((a, b) => a + b, 0)).toBe(now);
    expect(t.ended).toBe(13);
  });

  it('an illegal transition does not disturb the accounting', () => {
    let now = 0;
    const m = new CallStateMachine(() => now);
    now = 10;
    m.to('transferring');
    now = 20;
    expect(() => m.to('speaking')).toThrow(IllegalTransitionError);
    now = 30;
    expect(m.timeInStates()).toEqual({ answering: 10, listening: 0, thinking: 0, speaking: 0, transferring: 20, ended: 0 });
  });

  it('defaults to performance.now()', async () => {
    const m = new CallStateMachine();
    const before = performance.now();
    await new Promise((r) => setTimeout(r, 30));
    const t = m.timeInStates();
    expect(t.answering).toBeGreaterThanOrEqual(25);
    expect(t.answering).toBeLessThanOrEqual(performance.now() - before + 1);
  });
});
