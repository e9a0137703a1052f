import { describe, expect, it } from 'vitest';
import {
  TurnDetector,
  resolveTurnConfig,
  type TurnDetectorConfig,
  type TurnEvent,
} from '../../src/audio/vad/turn-detector.js';

const WINDOW_MS = 32;

/** Window k: audio [32k, 32k + 32) ms; its first packet arrives at 32k + 20, its last at 32k + 40. */
function timing(k: number): { firstPacketAt: number; lastPacketAt: number; now: number } {
  return { firstPacketAt: WINDOW_MS * k + 20, lastPacketAt: WINDOW_MS * k + 40, now: WINDOW_MS * k + 41 };
}

/** Feed probabilities as consecutive windows; returns the events with the window index that triggered each. */
function run(
  probs: ReadonlyArray<number | undefined>,
  config: Partial<TurnDetectorConfig> = {},
  detector = new TurnDetector(config),
): Array<{ k: number; e: TurnEvent }> {
  const out: Array<{ k: number; e: TurnEvent }> = [];
  probs.forEach((probability, k) => {
    const e = detector.feed({ probability, durationMs: WINDOW_MS, ...timing(k) });
    if (e) out.push({ k, e });
  });
  return out;
}

const rep = (p: number, n: number): number[] => new Array<number>(n).fill(p);

describe('resolveTurnConfig', () => {
  it('fills the documented defaults', () => {
    expect(resolveTurnConfig()).toEqual({
      threshold: 0.5,
      negativeThreshold: 0.35,
      minSpeechMs: 96,
      endOfTurnSilenceMs: 600,
      minUtteranceMs: 0,
    });
    expect(resolveTurnConfig({ threshold: 0.7 }).negativeThreshold).toBeCloseTo(0.55);
  });

  it('names every invalid field', () => {
    expect(() => resolveTurnConfig({ threshold: 1.5, negativeThreshold: -1, minSpeechMs: -5, endOfTurnSilenceMs: NaN })).toThrow(
      /threshold must be in \(0, 1\].*negativeThreshold.*minSpeechMs.*endOfTurnSilenceMs/,
    );
    expect(() => resolveTurnConfig({ threshold: 0.5, negativeThreshold: 0.6 })).toThrow(/negativeThreshold/);
  });
});

describe('TurnDetector', () => {
  it('declares speech_start on the window that completes minSpeechMs, stamped with the onset packet', () => {
    const events = run([0.1, 0.1, 0.9, 0.8, 0.95, 0.9]);
    expect(events).toHaveLength(1);
    // Windows 2, 3, 4 are voiced: 96 ms is reached on window 4.
    expect(events[0]).toEqual({ k: 4, e: { type: 'speech_start', onsetAt: timing(2).firstPacketAt, decidedAt: timing(4).now } });
  });

  it('ignores voiced blips shorter than minSpeechMs', () => {
    expect(run([0.9, 0.9, 0.1, 0.9, 0.1, 0.9, 0.9, 0.2, ...rep(0.1, 30)])).toEqual([]);
  });

  it('restarts the onset run after a dip, so onsetAt is the start of the run that counted', () => {
    const events = run([0.9, 0.9, 0.2, 0.9, 0.9, 0.9]);
    expect(events).toEqual([{ k: 5, e: { type: 'speech_start', onsetAt: timing(3).firstPacketAt, decidedAt: timing(5).now } }]);
  });

  it('hysteresis: the band between the thresholds neither starts speech nor breaks it', () => {
    // From silence, 0.45 is not speech.
    expect(run(rep(0.45, 20))).toEqual([]);
    // Once voiced, 0.4 keeps the onset run going.
    const events = run([0.6, 0.4, 0.4]);
    expect(events.map((x) => [x.k, x.e.type])).toEqual([[2, 'speech_start']]);
  });

  it('hysteresis: once silence starts, only p >= threshold ends it', () => {
    const silenceWindows = Math.ceil(600 / WINDOW_MS); // 19
    // Speech, then 0.3 (silence starts), then band values that must not reset the count.
    const probs = [...rep(0.9, 4), 0.3, ...rep(0.45, silenceWindows - 1)];
    const events = run(probs);
    expect(events.map((x) => x.e.type)).toEqual(['speech_start', 'speech_end']);
    expect(events[1]?.k).toBe(4 + silenceWindows - 1);
  });

  it('ends the turn after exactly endOfTurnSilenceMs of silence, stamped with the last speech packet', () => {
    const silenceWindows = Math.ceil(600 / WINDOW_MS); // 19 windows = 608 ms
    const probs = [...rep(0.9, 10), ...rep(0.05, silenceWindows + 5)];
    const events = run(probs);
    expect(events.map((x) => x.e)).toEqual([
      { type: 'speech_start', onsetAt: timing(0).firstPacketAt, decidedAt: timing(2).now },
      {
        type: 'speech_end',
        lastSpeechAt: timing(9).lastPacketAt,
        decidedAt: timing(9 + silenceWindows).now,
        speechMs: 10 * WINDOW_MS,
        tooShort: false,
      },
    ]);
  });

  it('does not move lastSpeechAt for trailing windows in the hysteresis band', () => {
    const probs = [...rep(0.9, 5), 0.45, 0.4, ...rep(0.1, 25)];
    const end = run(probs).find((x) => x.e.type === 'speech_end');
    expect(end?.e).toMatchObject({ lastSpeechAt: timing(4).lastPacketAt });
    // Silence is counted from the last confident window (4): the band windows 5 and 6 are
    // part of the 600 ms, so the turn ends at the first unvoiced window 600 ms past window 4.
    expect(end?.k).toBe(4 + Math.ceil(600 / WINDOW_MS));
  });

  it('a pause shorter than endOfTurnSilenceMs keeps one turn', () => {
    const probs = [...rep(0.9, 5), ...rep(0.1, 15), ...rep(0.9, 5), ...rep(0.1, 25)];
    const events = run(probs);
    expect(events.map((x) => x.e.type)).toEqual(['speech_start', 'speech_end']);
    expect(events[1]?.e).toMatchObject({ lastSpeechAt: timing(24).lastPacketAt, speechMs: 10 * WINDOW_MS });
  });

  it('respects custom thresholds and durations', () => {
    const cfg = { threshold: 0.8, negativeThreshold: 0.6, minSpeechMs: 32, endOfTurnSilenceMs: 64 };
    const events = run([0.7, 0.85, 0.7, 0.5, 0.5, 0.1], cfg);
    expect(events).toEqual([
      { k: 1, e: { type: 'speech_start', onsetAt: timing(1).firstPacketAt, decidedAt: timing(1).now } },
      // Window 2 (0.7) is in the band: voiced, and already 32 ms of silence after window 1;
      // window 3 (0.5) is unvoiced and brings the silence to 64 ms: end of turn.
      { k: 3, e: { type: 'speech_end', lastSpeechAt: timing(1).lastPacketAt, decidedAt: timing(3).now, speechMs: 64, tooShort: false } },
    ]);
  });

  it('flags utterances with less voiced time than minUtteranceMs', () => {
    const events = run([...rep(0.9, 4), ...rep(0.1, 20), ...rep(0.9, 12), ...rep(0.1, 20)], { minUtteranceMs: 300 });
    const ends = events.filter((x) => x.e.type === 'speech_end').map((x) => x.e);
    expect(ends).toMatchObject([
      { speechMs: 128, tooShort: true },
      { speechMs: 384, tooShort: false },
    ]);
  });

  it('unobserved (dropped) windows hold the previous class', () => {
    // Speech, then 10 unknown windows: still speech, so no end yet.
    const det = new TurnDetector();
    const events = run([...rep(0.9, 4), ...new Array<undefined>(10).fill(undefined)], {}, det);
    expect(events.map((x) => x.e.type)).toEqual(['speech_start']);
    expect(det.state).toBe('speech');
    // Silence, then unknown windows count as silence.
    const events2 = run([...rep(0.9, 4), 0.1, ...new Array<undefined>(18).fill(undefined)]);
    expect(events2.map((x) => x.e.type)).toEqual(['speech_start', 'speech_end']);
    // Unknown windows never start speech from silence.
    expect(run(new Array<undefined>(10).fill(undefined))).toEqual([]);
  });

  it('reset() returns to silence and forgets an onset in progress', () => {
    const det = new TurnDetector();
    run([0.9, 0.9], {}, det);
    expect(det.state).toBe('onset');
    det.reset();
    expect(det.state).toBe('silence');
    // One more voiced window is not enough after a reset.
    expect(det.feed({ probability: 0.9, durationMs: WINDOW_MS, ...timing(2) })).toBeUndefined();
  });

  it('minSpeechMs 0 starts on the first voiced window', () => {
    expect(run([0.1, 0.7], { minSpeechMs: 0 })).toEqual([
      { k: 1, e: { type: 'speech_start', onsetAt: timing(1).firstPacketAt, decidedAt: timing(1).now } },
    ]);
  });
});
