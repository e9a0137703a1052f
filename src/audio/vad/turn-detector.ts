/**
 * Turn-taking from VAD probabilities: pure and synchronous, no timers, no clock of its own.
 *
 * Each window is first classified with hysteresis (a Schmitt trigger): it is voiced when
 * p >= threshold, unvoiced when p < negativeThreshold, and in between it keeps the previous
 * window's class. Then:
 *  - silence -> speech_start once consecutive voiced windows add up to minSpeechMs (shorter
 *    voiced runs are blips and are forgotten). The event carries the arrival time of the
 *    first packet of the run's first window: the onset on the wire. minSpeechMs is what a
 *    barge-in waits for: larger means fewer false barge-ins, smaller a faster reaction.
 *  - speech -> speech_end on an unvoiced window once endOfTurnSilenceMs of audio has passed
 *    since the last window at or above `threshold` (windows in the hysteresis band count
 *    toward that silence but cannot end the turn themselves). The event carries the arrival time of the last packet of
 *    the last window at or above `threshold`: the caller's last speech packet on the wire.
 *    (Windows in the hysteresis band keep the turn open but do not move that time: Silero's
 *    probability decays over ~100 ms after the voice stops, and those tail windows would
 *    make every measured turn latency look shorter than it was.)
 * Both carry `decidedAt`, the time the window that triggered them was fed (`now`).
 */
export interface TurnDetectorConfig {
  /** Probability at or above which a window is speech (default 0.5). */
  threshold: number;
  /** Probability below which a window is silence (default threshold - 0.15). */
  negativeThreshold: number;
  /** Voiced time before speech_start is declared, ms (default 96: three 32 ms windows). */
  minSpeechMs: number;
  /** Silence after speech that ends the turn, ms (default 600). */
  endOfTurnSilenceMs: number;
  /** Utterances with less voiced time than this end with `tooShort: true` (default 0: never). */
  minUtteranceMs: number;
}

export interface WindowObservation {
  /** Speech probability of the window; undefined when the window was not inferred (dropped). */
  probability: number | undefined;
  /** Audio duration of the window, ms. */
  durationMs: number;
  /** Arrival time of the packet holding the window's first sample. */
  firstPacketAt: number;
  /** Arrival time of the packet that completed the window. */
  lastPacketAt: number;
  /** Time the observation is fed: becomes `decidedAt` of any event it triggers. */
  now: number;
}

export interface SpeechStartEvent {
  type: 'speech_start';
  /** Arrival time of the first packet of the first voiced window. */
  onsetAt: number;
  decidedAt: number;
}

export interface SpeechEndEvent {
  type: 'speech_end';
  /** Arrival time of the last packet of the last window at or above the threshold. */
  lastSpeechAt: number;
  decidedAt: number;
  /** Voiced time in the utterance, ms. */
  speechMs: number;
  /** speechMs < minUtteranceMs: probably a cough or a click, not a turn. */
  tooShort: boolean;
}

export type TurnEvent = SpeechStartEvent | SpeechEndEvent;

export type TurnState = 'silence' | 'onset' | 'speech';

export const DEFAULT_TURN_CONFIG: Readonly<Omit<TurnDetectorConfig, 'negativeThreshold'>> = {
  threshold: 0.5,
  minSpeechMs: 96,
  endOfTurnSilenceMs: 600,
  minUtteranceMs: 0,
};

/** Fill in defaults and check the values; throws naming every bad field. */
export function resolveTurnConfig(partial: Partial<TurnDetectorConfig> = {}): TurnDetectorConfig {
  const threshold = partial.threshold ?? DEFAULT_TURN_CONFIG.threshold;
  const config: TurnDetectorConfig = {
    threshold,
    negativeThreshold: partial.negativeThreshold ?? Math.max(0, threshold - 0.15),
    minSpeechMs: partial.minSpeechMs ?? DEFAULT_TURN_CONFIG.minSpeechMs,
    endOfTurnSilenceMs: partial.endOfTurnSilenceMs ?? DEFAULT_TURN_CONFIG.endOfTurnSilenceMs,
    minUtteranceMs: partial.minUtteranceMs ?? DEFAULT_TURN_CONFIG.minUtteranceMs,
  };
  const errors: string[] = [];
  if (!(config.threshold > 0 && config.threshold <= 1)) errors.push('threshold must be in (0, 1]');
  if (!(config.negativeThreshold >= 0 && config.negativeThreshold <= config.threshold)) {
    errors.push('negativeThreshold must be in [0, threshold]');
  }
  for (const key of ['minSpeechMs', 'endOfTurnSilenceMs', 'minUtteranceMs'] as const) {
    if (!(config[key] >= 0 && Number.isFinite(config[key]))) errors.push(`${key} must be a finite number >= 0`);
  }
  if (errors.length > 0) throw new Error(`invalid turn detector config: ${errors.join('; ')}`);
  return config;
}

export class TurnDetector {
  readonly config: Readonly<TurnDetectorConfig>;
  private voiced = false;
  private phase: TurnState = 'silence';
  /** Onset candidate or current utterance: arrival time of its first packet. */
  private onsetAt = 0;
  /** Voiced time of the current onset run or utterance. */
  private voicedMs = 0;
  private silenceMs = 0;
  private lastSpeechAt = 0;

  constructor(config: Partial<TurnDetectorConfig> = {}) {
    this.config = resolveTurnConfig(config);
  }

  get state(): TurnState {
    return this.phase;
  }

  /** Classify one window; returns the event it triggers, if any (at most one per window). */
  feed(obs: WindowObservation): TurnEvent | undefined {
    const p = obs.probability;
    if (p !== undefined) {
      if (p >= this.config.threshold) this.voiced = true;
      else if (p < this.config.negativeThreshold) this.voiced = false;
    }

    switch (this.phase) {
      case 'silence':
        if (!this.voiced) return undefined;
        this.phase = 'onset';
        this.onsetAt = obs.firstPacketAt;
        this.voicedMs = 0;
        return this.growOnset(obs);
      case 'onset':
        if (!this.voiced) {
          this.phase = 'silence';
          return undefined;
        }
        return this.growOnset(obs);
      case 'speech':
        // Silence is audio time since the last confidently voiced window (p >= threshold):
        // the model's fade through the hysteresis band after the voice stops is part of the
        // end-of-turn window, not added on top of it. Band windows keep the turn open (the
        // turn ends only on an unvoiced window), and dropped windows count as time passing.
        if (p !== undefined && p >= this.config.threshold) {
          this.voicedMs += obs.durationMs;
          this.silenceMs = 0;
          this.lastSpeechAt = obs.lastPacketAt;
          return undefined;
        }
        if (this.voiced) this.voicedMs += obs.durationMs;
        this.silenceMs += obs.durationMs;
        if (this.voiced || this.silenceMs < this.config.endOfTurnSilenceMs) return undefined;
        this.phase = 'silence';
        return {
          type: 'speech_end',
          lastSpeechAt: this.lastSpeechAt,
          decidedAt: obs.now,
          speechMs: this.voicedMs,
          tooShort: this.voicedMs < this.config.minUtteranceMs,
        };
    }
  }

  reset(): void {
    this.voiced = false;
    this.phase = 'silence';
    this.voicedMs = 0;
    this.silenceMs = 0;
  }

  private growOnset(obs: WindowObservation): TurnEvent | undefined {
    this.voicedMs += obs.durationMs;
    if (obs.probability !== undefined && obs.probability >= this.config.threshold) this.lastSpeechAt = obs.lastPacketAt;
    if (this.voicedMs < this.config.minSpeechMs) return undefined;
    this.phase = 'speech';
    this.silenceMs = 0;
    return { type: 'speech_start', onsetAt: this.onsetAt, decidedAt: obs.now };
  }
}
