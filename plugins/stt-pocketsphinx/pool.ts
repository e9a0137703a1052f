/**
 * Decoder pool: decoders are expensive to build (an N-gram decoder with Debian's en-us model
 * is ~95 MB and ~250 ms of ps_init), so a decoder released by a finished call is kept idle and
 * handed to the next call that needs the same spec (same models, same grammar).
 *
 * - `acquire(spec)` returns an idle decoder with that key (most recently used first) or builds
 *   one; `release(decoder)` abandons its utterance in progress and keeps it idle, unless it is
 *   broken, the pool is closed or the idle cap is reached, in which case it is freed.
 * - At most `maxIdle` decoders are kept idle in all (least recently used evicted first), and
 *   none longer than `idleTimeoutMs`.
 * - Reuse carries over only the live cepstral-mean estimate (CMN) of the previous call, which
 *   the next utterances keep adapting; searches, hypotheses and lattices are per utterance.
 * - `close()` frees every idle decoder and makes later releases free theirs.
 */
import type { Logger } from '../../src/log.js';
import { PluginError } from '../../src/plugins/api.js';
import { Decoder, type DecoderSpec } from './decoder.js';
import { PLUGIN_NAME, type PocketSphinx } from './native.js';

export interface PoolOptions {
  maxIdle: number;
  idleTimeoutMs: number;
}

export interface PoolStats {
  /** Decoders built so far. */
  created: number;
  /** Acquisitions served by an idle decoder. */
  reused: number;
  /** Decoders currently handed out. */
  inUse: number;
  idle: number;
  /** Native decoders currently alive (in use + idle + being built). */
  alive: number;
}

interface IdleEntry {
  decoder: Decoder;
  since: number;
}

export class DecoderPool {
  private readonly idleList: IdleEntry[] = []; // oldest first
  private readonly inUse = new Set<Decoder>();
  private building = 0;
  private created = 0;
  private reused = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly lib: PocketSphinx,
    private readonly log: Logger,
    private readonly options: PoolOptions,
  ) {
    if (options.idleTimeoutMs > 0 && options.maxIdle > 0) {
      const every = Math.max(1000, Math.min(30_000, Math.floor(options.idleTimeoutMs / 2)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  async acquire(spec: DecoderSpec): Promise<Decoder> {
    if (this.closed) throw closedError();
    for (let i = this.idleList.length - 1; i >= 0; i--) {
      const entry = this.idleList[i] as IdleEntry;
      if (entry.decoder.spec.key === spec.key) {
        this.idleList.splice(i, 1);
        this.inUse.add(entry.decoder);
        this.reused++;
        return entry.decoder;
      }
    }
    this.building++;
    const started = performance.now();
    try {
      const d = await Decoder.create(this.lib, spec);
      this.created++;
      this.log.debug({ decoder: d.id, kind: spec.kind, ms: Math.round(performance.now() - started) }, 'pocketsphinx decoder created');
      if (this.closed) {
        d.free();
        throw closedError();
      }
      this.inUse.add(d);
      return d;
    } finally {
      this.building--;
    }
  }

  /** Give a decoder back. Waits for its queued jobs; never rejects. */
  async release(decoder: Decoder): Promise<void> {
    if (!this.inUse.delete(decoder)) return; // not ours, or released already
    await decoder
      .run(async () => {
        if (!decoder.broken) await decoder.abandon();
      })
      .catch(() => {
        decoder.broken = true;
      });
    if (this.closed || decoder.broken || this.options.maxIdle === 0) {
      await decoder.run(() => decoder.free());
      return;
    }
    this.idleList.push({ decoder, since: performance.now() });
    while (this.idleList.length > this.options.maxIdle) {
      const evicted = this.idleList.shift() as IdleEntry;
      evicted.decoder.free();
    }
  }

  /** Build `count` decoders of `spec` in the background and park them idle. */
  async prewarm(spec: DecoderSpec, count: number): Promise<void> {
    const n = Math.min(count, this.options.maxIdle);
    const built = await Promise.allSettled(Array.from({ length: n }, () => this.acquire(spec)));
    for (const r of built) {
      if (r.status === 'fulfilled') await this.release(r.value);
      else this.log.warn({ err: r.reason as unknown }, 'pocketsphinx: prewarming a decoder failed');
    }
  }

  stats(): PoolStats {
    return {
      created: this.created,
      reused: this.reused,
      inUse: this.inUse.size,
      idle: this.idleList.length,
      alive: this.inUse.size + this.idleList.length + this.building,
    };
  }

  /** Free idle decoders; decoders still in use are freed when released. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const idle = this.idleList.splice(0);
    for (const e of idle) e.decoder.free();
  }

  private sweep(): void {
    const cutoff = performance.now() - this.options.idleTimeoutMs;
    for (let i = this.idleList.length - 1; i >= 0; i--) {
      const entry = this.idleList[i] as IdleEntry;
      if (entry.since < cutoff) {
        this.idleList.splice(i, 1);
        entry.decoder.free();
      }
    }
  }
}

function closedError(): PluginError {
  return new PluginError(PLUGIN_NAME, 'unavailable', 'the provider is closed', false);
}
