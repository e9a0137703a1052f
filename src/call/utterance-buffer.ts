/**
 * Collects the caller's audio for the current utterance: a short pre-roll kept while the
 * caller is silent (VAD decides "speech" a little after the onset), then everything from the
 * onset to the end of turn, capped so a caller who never stops cannot exhaust memory.
 */
import { concatFrames, type AudioFrame, type SampleRate } from '../audio/frame.js';

interface Stamped {
  frame: AudioFrame;
  at: number;
}

export class UtteranceBuffer {
  private frames: Stamped[] = [];
  private capturing = false;
  private capturedMs = 0;
  truncatedMs = 0;

  /**
   * @param decisionLagMs how long after the onset VAD may declare speech (minimum speech
   *   plus a window plus inference); the idle buffer keeps preRollMs + this much, so the
   *   full pre-roll is still there when start(onsetAt) arrives.
   */
  constructor(
    private readonly sampleRate: SampleRate,
    private readonly preRollMs = 300,
    private readonly maxUtteranceMs = 20_000,
    private readonly decisionLagMs = 400,
  ) {}

  push(frame: AudioFrame, at: number): void {
    this.frames.push({ frame, at });
    const ms = (frame.samples.length * 1000) / frame.sampleRate;
    if (!this.capturing) {
      // Keep only the pre-roll window.
      while (this.frames.length > 0 && this.frames[0]!.at < at - this.preRollMs - this.decisionLagMs) this.frames.shift();
      return;
    }
    this.capturedMs += ms;
    while (this.capturedMs > this.maxUtteranceMs && this.frames.length > 1) {
      const dropped = this.frames.shift()!;
      const dms = (dropped.frame.samples.length * 1000) / dropped.frame.sampleRate;
      this.capturedMs -= dms;
      this.truncatedMs += dms;
    }
  }

  /** Speech began at `onsetAt` (arrival time of its first packet). */
  start(onsetAt: number): void {
    this.capturing = true;
    this.frames = this.frames.filter((f) => f.at >= onsetAt - this.preRollMs);
    this.capturedMs = this.frames.reduce((acc, f) => acc + (f.frame.samples.length * 1000) / f.frame.sampleRate, 0);
    this.truncatedMs = 0;
  }

  /** End of turn: returns the utterance up to `lastSpeechAt` plus a short tail. */
  finish(lastSpeechAt: number, tailMs = 120): AudioFrame {
    const kept = this.frames.filter((f) => f.at <= lastSpeechAt + tailMs).map((f) => f.frame);
    this.frames = [];
    this.capturing = false;
    this.capturedMs = 0;
    return kept.length > 0 ? concatFrames(kept) : { samples: new Int16Array(0), sampleRate: this.sampleRate };
  }

  get isCapturing(): boolean {
    return this.capturing;
  }
}
