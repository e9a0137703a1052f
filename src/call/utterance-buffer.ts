/**
 * Collects the caller's audio for the current utterance: a short pre-roll kept while the
 * caller is silent (VAD decides "speech" a little after the onset), then everything from the
 * onset to the end of turn, capped so a caller who never stops cannot exhaust memory.
 *
 * Samples are copied into one growable Int16Array with per-frame arrival stamps in typed
 * arrays, rather than keeping the frame objects: at 200 calls the frames held here (pre-roll
 * and utterances of several seconds) were the bulk of what survived young-generation GCs, and
 * copying survivors is what made those GC pauses long enough to delay the media clock.
 */
import type { AudioFrame, SampleRate } from '../audio/frame.js';

export class UtteranceBuffer {
  private samples: Int16Array;
  /** Per frame: arrival time and where its samples start in `samples`. */
  private frameAt: Float64Array;
  private frameStart: Int32Array;
  /** Frames [head, count) are held; samples [frameStart[head], fill). */
  private head = 0;
  private count = 0;
  private fill = 0;
  private capturing = false;
  private capturedMs = 0;
  private readonly msPerSample: number;
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
  ) {
    this.msPerSample = 1000 / sampleRate;
    // Room for the idle window plus slack; grows (doubling) while an utterance is captured.
    this.samples = new Int16Array(Math.ceil(((preRollMs + decisionLagMs + 200) * sampleRate) / 1000));
    this.frameAt = new Float64Array(64);
    this.frameStart = new Int32Array(64);
  }

  push(frame: AudioFrame, at: number): void {
    if (frame.sampleRate !== this.sampleRate) {
      throw new RangeError(`utterance buffer holds ${this.sampleRate} Hz audio, got a ${frame.sampleRate} Hz frame`);
    }
    const n = frame.samples.length;
    this.reserve(n);
    this.frameAt[this.count] = at;
    this.frameStart[this.count] = this.fill;
    this.count++;
    this.samples.set(frame.samples, this.fill);
    this.fill += n;
    if (!this.capturing) {
      // Keep only the pre-roll window.
      const keepFrom = at - this.preRollMs - this.decisionLagMs;
      while (this.head < this.count && this.frameAt[this.head]! < keepFrom) this.head++;
      return;
    }
    this.capturedMs += n * this.msPerSample;
    while (this.capturedMs > this.maxUtteranceMs && this.count - this.head > 1) {
      const dms = this.frameSamples(this.head) * this.msPerSample;
      this.head++;
      this.capturedMs -= dms;
      this.truncatedMs += dms;
    }
  }

  /** Speech began at `onsetAt` (arrival time of its first packet). */
  start(onsetAt: number): void {
    this.capturing = true;
    const keepFrom = onsetAt - this.preRollMs;
    while (this.head < this.count && this.frameAt[this.head]! < keepFrom) this.head++;
    this.capturedMs = (this.fill - this.headSample()) * this.msPerSample;
    this.truncatedMs = 0;
  }

  /** End of turn: returns the utterance up to `lastSpeechAt` plus a short tail. */
  finish(lastSpeechAt: number, tailMs = 120): AudioFrame {
    const cutoff = lastSpeechAt + tailMs;
    let total = 0;
    for (let i = this.head; i < this.count; i++) if (this.frameAt[i]! <= cutoff) total += this.frameSamples(i);
    const out = new Int16Array(total);
    let off = 0;
    for (let i = this.head; i < this.count; i++) {
      if (this.frameAt[i]! > cutoff) continue;
      const s = this.frameStart[i]!;
      const e = s + this.frameSamples(i);
      out.set(this.samples.subarray(s, e), off);
      off += e - s;
    }
    this.head = 0;
    this.count = 0;
    this.fill = 0;
    this.capturing = false;
    this.capturedMs = 0;
    return { samples: out, sampleRate: this.sampleRate };
  }

  get isCapturing(): boolean {
    return this.capturing;
  }

  private frameSamples(i: number): number {
    return (i + 1 < this.count ? this.frameStart[i + 1]! : this.fill) - this.frameStart[i]!;
  }

  private headSample(): number {
    return this.head < this.count ? this.frameStart[this.head]! : this.fill;
  }

  /** Make room for one more frame of `n` samples: compact away dropped frames, else grow. */
  private reserve(n: number): void {
    if (this.count < this.frameAt.length && this.fill + n <= this.samples.length) return;
    const from = this.headSample();
    const liveFrames = this.count - this.head;
    const liveSamples = this.fill - from;
    // Compact when at least half of either array is dropped frames; otherwise grow.
    if (this.head > 0 && (this.head * 2 >= this.count || from * 2 >= this.fill)) {
      this.samples.copyWithin(0, from, this.fill);
      this.frameAt.copyWithin(0, this.head, this.count);
      this.frameStart.copyWithin(0, this.head, this.count);
      for (let i = 0; i < liveFrames; i++) this.frameStart[i] = this.frameStart[i]! - from;
      this.head = 0;
      this.count = liveFrames;
      this.fill = liveSamples;
    }
    if (this.fill + n > this.samples.length) {
      const grown = new Int16Array(Math.max(this.samples.length * 2, this.fill + n));
      grown.set(this.samples.subarray(0, this.fill));
      this.samples = grown;
    }
    if (this.count >= this.frameAt.length) {
      const at = new Float64Array(this.frameAt.length * 2);
      at.set(this.frameAt.subarray(0, this.count));
      const st = new Int32Array(this.frameStart.length * 2);
      st.set(this.frameStart.subarray(0, this.count));
      this.frameAt = at;
      this.frameStart = st;
    }
  }
}
