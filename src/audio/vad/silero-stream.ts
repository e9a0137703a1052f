/**
 * One caller's view of the shared Silero model: its own recurrent state (and, for v5, the
 * tail of its previous window), fed one window at a time. Streams never share state; the
 * model or the batcher gathers it into the batch dimension and scatters the result back.
 */
import type { SileroLayout, VadSampleRate } from './silero-layout.js';

export interface VadStream {
  readonly sampleRate: VadSampleRate;
  /** Samples per window (e.g. 256 at 8 kHz, 512 at 16 kHz: 32 ms). */
  readonly windowSamples: number;
  /**
   * Speech probability of the stream's next window: exactly `windowSamples` float samples
   * in [-1, 1). One window at a time: the previous promise must settle first. The array is
   * read when the inference runs, so it must not be modified until the promise settles.
   */
  infer(window: Float32Array): Promise<number>;
  /** Forget the recurrent state (a result still in flight no longer updates it). */
  reset(): void;
  /** Release the stream; later `infer` calls reject. */
  close(): void;
}

/** Anything that hands out VAD streams: the model itself (unbatched), a VadBatcher, or a WorkerVadSource. */
export interface VadStreamSource {
  createStream(sampleRate: VadSampleRate, windowSamples?: number): VadStream;
}

/** Runs one window of one stream; supplied by whoever owns the session. */
export type WindowRunner = (stream: SileroVadStream, window: Float32Array) => Promise<number>;

export class SileroVadStream implements VadStream {
  /** Recurrent state: each recurrent tensor's `layers × width` floats, in layout order. */
  readonly state: Float32Array;
  /** Last `contextSamples` input samples (v5 only; empty for v4). */
  readonly context: Float32Array;
  /** Bumped by reset(): results of inferences started before it are not scattered back. */
  generation = 0;
  private busy = false;
  private closed = false;

  constructor(
    readonly layout: SileroLayout,
    readonly sampleRate: VadSampleRate,
    readonly windowSamples: number,
    private readonly run: WindowRunner,
  ) {
    const allowed = layout.windows[sampleRate];
    if (!allowed.includes(windowSamples)) {
      throw new Error(
        `Silero ${layout.version} at ${sampleRate} Hz takes windows of ${allowed.join('/')} samples, not ${windowSamples}`,
      );
    }
    this.state = new Float32Array(layout.stateFloats);
    this.context = new Float32Array(layout.contextSamples(sampleRate));
  }

  async infer(window: Float32Array): Promise<number> {
    if (this.closed) throw new Error('VAD stream is closed');
    if (this.busy) throw new Error('VAD stream: previous window still in flight');
    if (window.length !== this.windowSamples) {
      throw new Error(`VAD stream: window of ${window.length} samples, expected ${this.windowSamples}`);
    }
    this.busy = true;
    try {
      return await this.run(this, window);
    } finally {
      this.busy = false;
    }
  }

  reset(): void {
    this.generation++;
    this.state.fill(0);
    this.context.fill(0);
  }

  close(): void {
    this.closed = true;
    this.generation++;
  }
}
