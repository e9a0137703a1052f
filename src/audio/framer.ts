/** Cutting a stream of PCM into fixed-size frames (TTS output into 20 ms frames, say). */
import type { AudioFrame, SampleRate } from './frame.js';

/** Re-cuts a stream of PCM into frames of exactly `size` samples (the last may be shorter). */
export class Framer {
  private pending: Int16Array = new Int16Array(0);

  constructor(
    readonly sampleRate: SampleRate,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size <= 0) throw new Error(`Framer: bad frame size ${size}`);
  }

  push(samples: Int16Array): AudioFrame[] {
    let data = samples;
    if (this.pending.length > 0) {
      data = new Int16Array(this.pending.length + samples.length);
      data.set(this.pending);
      data.set(samples, this.pending.length);
    }
    const frames: AudioFrame[] = [];
    let off = 0;
    for (; off + this.size <= data.length; off += this.size) {
      // Copy: the frame must not alias a buffer the caller may reuse.
      frames.push({ samples: data.slice(off, off + this.size), sampleRate: this.sampleRate });
    }
    this.pending = data.slice(off);
    return frames;
  }

  /** The remainder, if any, as a final short frame. */
  flush(): AudioFrame[] {
    if (this.pending.length === 0) return [];
    const last = { samples: this.pending, sampleRate: this.sampleRate };
    this.pending = new Int16Array(0);
    return [last];
  }
}
