/**
 * Packet loss concealment for decoded PCM16: repeat the last good frame with a linear
 * fade that reaches silence after `fadeFrames` frames, then plain silence. Cheap and
 * click-free at the fade; meant for speech recognition and VAD, not hi-fi.
 */
export class PacketLossConcealer {
  private last: Int16Array;
  private lastLength = 0;
  private consecutive = 0;

  constructor(
    private readonly samplesPerFrame: number,
    private readonly fadeFrames = 3,
  ) {
    if (!Number.isInteger(samplesPerFrame) || samplesPerFrame <= 0) throw new RangeError(`samplesPerFrame must be a positive integer, got ${samplesPerFrame}`);
    if (!Number.isInteger(fadeFrames) || fadeFrames < 1) throw new RangeError(`fadeFrames must be a positive integer, got ${fadeFrames}`);
    this.last = new Int16Array(samplesPerFrame);
  }

  /** Samples in the next concealment frame: the last good frame's length. */
  get frameLength(): number {
    return this.lastLength > 0 ? this.lastLength : this.samplesPerFrame;
  }

  /** Note a good frame (copied); the next concealment starts from it at full level. */
  remember(samples: Int16Array): void {
    if (samples.length > this.last.length) this.last = new Int16Array(samples.length);
    this.last.set(samples);
    this.lastLength = samples.length;
    this.consecutive = 0;
  }

  /**
   * The next concealment frame, written into `out` when given (at least `frameLength`
   * samples), else into a new array. Owned by the caller either way.
   */
  conceal(out: Int16Array = new Int16Array(this.frameLength)): Int16Array {
    const length = this.frameLength;
    const k = this.consecutive++;
    if (k >= this.fadeFrames || this.lastLength === 0) return out.fill(0, 0, length);
    // Gain falls linearly from 1 - k/F at the first sample to 1 - (k+1)/F after the last.
    const start = 1 - k / this.fadeFrames;
    const step = 1 / (this.fadeFrames * length);
    const last = this.last;
    for (let i = 0; i < length; i++) out[i] = Math.round((last[i] as number) * (start - step * i));
    return out;
  }

  /** Forget the last frame (a new stream): concealment is silence until `remember`. */
  reset(): void {
    this.lastLength = 0;
    this.consecutive = 0;
  }
}
