/**
 * CallTimings: turn latency closes on the first agent audio after an end of turn (once),
 * a caller who resumes cancels the pending measurement, a newer end of turn replaces an
 * older one, and barge-in records derive reaction and stop-after-decision times.
 */
import { describe, expect, it } from 'vitest';
import { CallTimings } from '../../src/call/turn-timing.js';

describe('CallTimings: turn latency', () => {
  it('caller last speech -> first agent audio, recorded once per turn', () => {
    const t = new CallTimings();
    t.callerTurnEnded(1, 1000, 1620);
    const rec = t.agentAudioStarted(1850);
    expect(rec).toEqual({ turn: 1, callerLastSpeechAt: 1000, endOfTurnDecidedAt: 1620, agentFirstAudioAt: 1850, latencyMs: 850 });
    expect(t.turns).toEqual([rec]);
    // A second talkspurt of the same reply is not a new measurement.
    expect(t.agentAudioStarted(2500)).toBeUndefined();
    expect(t.turns).toHaveLength(1);
  });

  it('agent audio with no caller turn pending (a greeting) records nothing', () => {
    const t = new CallTimings();
    expect(t.agentAudioStarted(10)).toBeUndefined();
    expect(t.turns).toEqual([]);
  });

  it('a caller who resumes before the reply leaves that turn without a figure', () => {
    const t = new CallTimings();
    t.callerTurnEnded(1, 1000, 1600);
    t.callerResumed();
    expect(t.agentAudioStarted(1700)).toBeUndefined();
    t.callerTurnEnded(2, 3000, 3600);
    expect(t.agentAudioStarted(3900)?.turn).toBe(2);
    expect(t.turns.map((r) => [r.turn, r.latencyMs])).toEqual([[2, 900]]);
  });

  it('a newer end of turn replaces a pending older one', () => {
    const t = new CallTimings();
    t.callerTurnEnded(1, 1000, 1600);
    t.callerTurnEnded(2, 2000, 2600);
    expect(t.agentAudioStarted(2700)).toMatchObject({ turn: 2, latencyMs: 700 });
    expect(t.turns).toHaveLength(1);
  });

  it('turns accumulate in order', () => {
    const t = new CallTimings();
    for (let i = 1; i <= 3; i++) {
      t.callerTurnEnded(i, i * 10_000, i * 10_000 + 600);
      t.agentAudioStarted(i * 10_000 + 700 + i);
    }
    expect(t.turns.map((r) => r.latencyMs)).toEqual([701, 702, 703]);
  });
});

describe('CallTimings: barge-in', () => {
  it('reaction = last agent packet - speech onset; stop-after-decision = last agent packet - decision', () => {
    const t = new CallTimings();
    const rec = t.bargeIn({ turn: 3, speechOnsetAt: 5000, decidedAt: 5130, agentLastAudioAt: 5120, playedMs: 2400, droppedMs: 2600 });
    expect(rec).toEqual({
      turn: 3,
      speechOnsetAt: 5000,
      decidedAt: 5130,
      agentLastAudioAt: 5120,
      reactionMs: 120,
      stopAfterDecisionMs: -10,
      playedMs: 2400,
      droppedMs: 2600,
    });
    t.bargeIn({ turn: 4, speechOnsetAt: 9000, decidedAt: 9100, agentLastAudioAt: 9115, playedMs: 0, droppedMs: 100 });
    expect(t.bargeIns.map((b) => b.stopAfterDecisionMs)).toEqual([-10, 15]);
    // Barge-ins do not touch the turn latency list.
    expect(t.turns).toEqual([]);
  });
});
