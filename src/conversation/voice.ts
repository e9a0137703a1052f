/**
 * How an agent speaks: text to audio through its TTS plugin, with
 *  - a phrase cache: fixed phrases (greeting, fillers, re-prompts, fallbacks, confirmations)
 *    are rendered once per voice and replayed from memory;
 *  - a fallback provider: when the primary fails before producing any audio, the fallback
 *    speaks the same text (a failure mid-sentence cannot be patched and ends that sentence);
 *  - prefetch: synthesis starts as soon as a sentence is known, while earlier ones play.
 */
import { concatFrames, type AudioFrame } from '../audio/frame.js';
import type { Logger } from '../log.js';
import { isAbortError, type TtsProvider } from '../plugins/api.js';

export interface NamedTts {
  name: string;
  provider: TtsProvider;
}

/** Rendered fixed phrases, shared by every call (keyed by provider, voice, language, text). */
export class PhraseCache {
  private readonly entries = new Map<string, AudioFrame>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 512) {}

  key(provider: string, voice: string | undefined, language: string, text: string): string {
    return `${provider}\u0000${voice ?? ''}\u0000${language}\u0000${text.trim()}`;
  }

  get(key: string): AudioFrame | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      // LRU: move to the end.
      this.entries.delete(key);
      this.entries.set(key, hit);
      this.hits++;
    } else {
      this.misses++;
    }
    return hit;
  }

  set(key: string, audio: AudioFrame): void {
    this.entries.set(key, audio);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface VoiceOptions {
  primary: NamedTts;
  fallback?: NamedTts | undefined;
  voice?: string | undefined;
  language: string;
  cache: PhraseCache;
  log: Logger;
  /** Called when a provider fails (for metrics). */
  onProviderError?: (provider: string, err: unknown) => void;
}

export class Voice {
  constructor(private readonly opts: VoiceOptions) {}

  /** Render fixed phrases ahead of the first call that needs them. */
  async warm(phrases: readonly string[], signal: AbortSignal): Promise<void> {
    for (const p of phrases) {
      if (signal.aborted) return;
      try {
        await this.fixed(p, signal);
      } catch (err) {
        this.opts.log.warn({ err: errText(err) }, 'could not pre-render a fixed phrase');
      }
    }
  }

  /** A fixed phrase: from the cache, or rendered in full, cached and returned. */
  async fixed(text: string, signal: AbortSignal): Promise<AudioFrame> {
    const { primary } = this.opts;
    const key = this.opts.cache.key(primary.name, this.opts.voice, this.opts.language, text);
    const hit = this.opts.cache.get(key);
    if (hit) return hit;
    const frames: AudioFrame[] = [];
    for await (const f of this.live(text, signal)) frames.push(f);
    if (frames.length === 0) return { samples: new Int16Array(0), sampleRate: primary.provider.sampleRate };
    const audio = concatFrames(frames);
    // Only the primary's rendering is cached: a fallback voice should not stick.
    if (!this.usedFallback.has(text)) this.opts.cache.set(key, audio);
    return audio;
  }

  private readonly usedFallback = new Set<string>();

  /** Live synthesis, falling back to the second provider if the first fails before any audio. */
  async *live(text: string, signal: AbortSignal): AsyncIterable<AudioFrame> {
    const { primary, fallback, voice, language } = this.opts;
    let produced = false;
    try {
      for await (const f of primary.provider.synthesize(text, { voice, language, signal })) {
        produced = true;
        yield f;
      }
      this.usedFallback.delete(text);
      return;
    } catch (err) {
      if (signal.aborted || isAbortError(err)) return;
      this.opts.onProviderError?.(primary.name, err);
      if (produced || !fallback) throw err;
      this.opts.log.warn({ err: errText(err), fallback: fallback.name }, 'TTS failed; using the fallback voice');
    }
    this.usedFallback.add(text);
    try {
      yield* fallback.provider.synthesize(text, { language, signal });
    } catch (err) {
      if (signal.aborted || isAbortError(err)) return;
      this.opts.onProviderError?.(fallback.name, err);
      throw err;
    }
  }
}

/**
 * Start consuming `source` now and buffer what it yields, so synthesis of a sentence runs
 * while earlier sentences play. The returned iterable replays the buffer then follows live.
 * An error of the source is rethrown to the consumer at the point it happened.
 */
export function prefetch<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const buffer: T[] = [];
  let done = false;
  let failure: { err: unknown } | undefined;
  let wake: (() => void) | undefined;
  const pump = (async () => {
    try {
      for await (const item of source) {
        buffer.push(item);
        wake?.();
      }
    } catch (err) {
      failure = { err };
    } finally {
      done = true;
      wake?.();
    }
  })();
  return {
    async *[Symbol.asyncIterator]() {
      let i = 0;
      for (;;) {
        if (i < buffer.length) {
          yield buffer[i++]!;
          continue;
        }
        if (done) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      await pump;
      if (failure) throw failure.err;
    },
  };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
