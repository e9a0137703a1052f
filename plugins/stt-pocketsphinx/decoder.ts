/**
 * One native PocketSphinx decoder (ps_decoder_t) and the job queue that serialises every call
 * made on it.
 *
 * A decoder is not thread-safe, and the heavy calls run on koffi worker threads, so two calls
 * on one decoder must never overlap: every use goes through `run(job)`, which chains jobs. The
 * methods below the queue (`startUtterance`, `process`, ...) may only be called from inside a
 * job. Different decoders are independent and run in parallel.
 *
 * Lifecycle: `Decoder.create` (ps_init on a worker thread, then the search set-up), any number
 * of utterances, `free()` exactly once (ps_free). After a native failure the decoder is marked
 * `broken` and the pool frees it instead of reusing it.
 */
import { PluginError, type PluginErrorCode } from '../../src/plugins/api.js';
import { isGarbageWord } from './grammar.js';
import { PLUGIN_NAME, type PocketSphinx, type Ptr } from './native.js';

export type DecoderKind = 'lm' | 'grammar' | 'keywords';

/** Everything needed to build a decoder; decoders with equal keys are interchangeable. */
export interface DecoderSpec {
  /** Pool key: same key, same models and search. */
  key: string;
  kind: DecoderKind;
  /** pocketsphinx arguments (-hmm, -dict, -samprate, ...). */
  argv: readonly string[];
  /** JSGF source, for kind "grammar". */
  jsgf?: string;
  /** Keyphrase file, for kind "keywords". */
  keyphraseFile?: string;
}

export interface DecodeResult {
  text: string;
  /** 10 ms frames the search saw (PocketSphinx drops silence before the search). */
  speechFrames?: number;
  /** exp(log posterior of the whole best path): P(hypothesis | audio), 0..1 (N-gram search). */
  sentencePosterior?: number;
  /** Mean of the per-word posteriors of the best path, 0..1 (N-gram search). */
  wordPosterior?: number;
  /**
   * Grammar searches: 10 ms frames the garbage loop took before the first word, between words
   * and after the last word, and the frames of real words.
   */
  frames?: { leadingGarbage: number; innerGarbage: number; trailingGarbage: number; words: number };
}

const SEARCH_NAME = 'switchboard';

let nextId = 1;

export class Decoder {
  readonly id = nextId++;
  /** True between ps_start_utt and ps_end_utt. */
  inUtterance = false;
  /** A native call failed: do not reuse. */
  broken = false;
  /** Utterances decoded (for pool statistics and tests). */
  utterances = 0;
  private ptr: Ptr | null;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly lib: PocketSphinx,
    readonly spec: DecoderSpec,
    ptr: Ptr,
  ) {
    this.ptr = ptr;
  }

  /** Load the models and set up the spec's search. Rejects with PluginError. */
  static async create(lib: PocketSphinx, spec: DecoderSpec): Promise<Decoder> {
    const config = lib.parseConfig(spec.argv);
    if (config === null) throw nativeError(lib, 'bad_request', `invalid decoder arguments (${spec.argv.join(' ')})`, false);
    let ptr: Ptr | null;
    try {
      ptr = await lib.init(config);
    } finally {
      // ps_init keeps its own reference to the config.
      lib.freeConfig(config);
    }
    if (ptr === null) throw nativeError(lib, 'bad_request', 'could not load the acoustic model, dictionary or language model', false);
    const d = new Decoder(lib, spec, ptr);
    try {
      if (spec.kind === 'grammar') {
        if (!spec.jsgf) throw new PluginError(PLUGIN_NAME, 'internal', 'grammar decoder without a grammar', false);
        if ((await lib.setJsgfString(ptr, SEARCH_NAME, spec.jsgf)) !== 0) {
          throw nativeError(lib, 'bad_request', 'the phrase grammar did not compile', false);
        }
      } else if (spec.kind === 'keywords') {
        if (!spec.keyphraseFile) throw new PluginError(PLUGIN_NAME, 'internal', 'keyword decoder without keyphrases', false);
        if ((await lib.setKws(ptr, SEARCH_NAME, spec.keyphraseFile)) !== 0) {
          throw nativeError(lib, 'bad_request', 'the keyphrase list was rejected', false);
        }
      }
      if (spec.kind !== 'lm' && lib.setSearch(ptr, SEARCH_NAME) !== 0) {
        throw nativeError(lib, 'internal', 'could not select the search', false);
      }
    } catch (err) {
      d.free();
      throw err;
    }
    return d;
  }

  get freed(): boolean {
    return this.ptr === null;
  }

  /** Run `job` after every job queued before it (whatever their outcome). */
  run<T>(job: () => Promise<T> | T): Promise<T> {
    const p = this.tail.then(job, job);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Resolves when every job queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  startUtterance(): void {
    const ptr = this.live();
    if (this.inUtterance) return;
    if (this.lib.startUtt(ptr) < 0) {
      this.broken = true;
      throw nativeError(this.lib, 'internal', 'ps_start_utt failed', true);
    }
    this.inUtterance = true;
  }

  /** Feed audio (PCM16 at the decoder's rate) into the current utterance. */
  async process(samples: Int16Array): Promise<void> {
    const ptr = this.live();
    if (!this.inUtterance) this.startUtterance();
    if (samples.length === 0) return;
    const rc = await this.lib.processRaw(ptr, samples, false);
    if (rc < 0) {
      this.broken = true;
      throw nativeError(this.lib, 'internal', 'ps_process_raw failed', true);
    }
  }

  /** Partial hypothesis of the utterance in progress ("" when none yet). */
  async partial(): Promise<string> {
    const ptr = this.live();
    if (!this.inUtterance) return '';
    return (await this.lib.getHyp(ptr)).text;
  }

  /**
   * End the utterance and return its final hypothesis. N-gram decoders also compute the
   * lattice posteriors (when `withPosteriors`); grammar decoders report how much of the speech
   * their garbage loop took. Keyword spotting has neither.
   */
  async finish(withPosteriors: boolean): Promise<DecodeResult> {
    const ptr = this.live();
    if (!this.inUtterance) return { text: '' };
    this.inUtterance = false;
    this.utterances++;
    const rc = await this.lib.endUtt(ptr);
    if (rc < 0) {
      this.broken = true;
      throw nativeError(this.lib, 'internal', 'ps_end_utt failed', true);
    }
    const raw = (await this.lib.getHyp(ptr)).text;
    const speechFrames = this.lib.frameCount(ptr);
    if (this.spec.kind === 'keywords') {
      // Keyword spotting lists its detections newest first; put them in spoken order.
      if (!raw) return { text: '', speechFrames };
      const spotted = this.lib.segments(ptr).filter((s) => isWord(s.word));
      spotted.sort((a, b) => a.startFrame - b.startFrame);
      return { text: normalizeHyp(spotted.map((s) => s.word).join(' ')), speechFrames };
    }
    const text = normalizeHyp(raw);
    if (this.spec.kind === 'grammar') {
      if (!raw) return { text, speechFrames };
      const frames = { leadingGarbage: 0, innerGarbage: 0, trailingGarbage: 0, words: 0 };
      let pending = 0; // garbage since the last word
      for (const s of this.lib.segments(ptr)) {
        const n = Math.max(0, s.endFrame - s.startFrame + 1);
        if (isGarbageWord(s.word)) pending += n;
        else if (isWord(s.word)) {
          if (frames.words === 0) frames.leadingGarbage += pending;
          else frames.innerGarbage += pending;
          pending = 0;
          frames.words += n;
        }
      }
      if (frames.words === 0) frames.leadingGarbage += pending;
      else frames.trailingGarbage += pending;
      return { text, speechFrames, frames };
    }
    if (!text || !withPosteriors || this.spec.kind !== 'lm') return { text, speechFrames };
    const logProb = await this.lib.getProb(ptr);
    const sentencePosterior = clamp01(this.lib.logToLinear(ptr, logProb));
    const posts = this.lib
      .segments(ptr)
      .filter((s) => isWord(s.word))
      .map((s) => clamp01(this.lib.logToLinear(ptr, s.logPosterior)));
    const wordPosterior = posts.length > 0 ? posts.reduce((a, b) => a + b, 0) / posts.length : undefined;
    return wordPosterior === undefined ? { text, speechFrames, sentencePosterior } : { text, speechFrames, sentencePosterior, wordPosterior };
  }

  /** Abandon the utterance in progress (its result is discarded). */
  async abandon(): Promise<void> {
    const ptr = this.live();
    if (!this.inUtterance) return;
    this.inUtterance = false;
    if ((await this.lib.endUtt(ptr)) < 0) this.broken = true;
  }

  /** Release the native decoder. Idempotent; must not run while a job is in flight. */
  free(): void {
    const ptr = this.ptr;
    if (ptr === null) return;
    this.ptr = null;
    this.inUtterance = false;
    this.lib.free(ptr);
  }

  private live(): Ptr {
    if (this.ptr === null) throw new PluginError(PLUGIN_NAME, 'internal', `decoder ${this.id} used after free`, false);
    return this.ptr;
  }
}

/** A PluginError carrying the library's own recent ERROR lines. */
export function nativeError(lib: PocketSphinx, code: PluginErrorCode, message: string, retryable: boolean): PluginError {
  const details = lib.recentErrors(3);
  return new PluginError(PLUGIN_NAME, code, details.length ? `${message}: ${details.join('; ')}` : message, retryable);
}

/** Words only: fillers (<sil>, [NOISE]), sentence markers and garbage phones are not words. */
function isWord(w: string): boolean {
  return w.length > 0 && !w.startsWith('<') && !w.startsWith('[') && !w.startsWith('+') && !isGarbageWord(w);
}

/** Hypothesis text without fillers, garbage phones, alternate-pronunciation markers and extra spaces. */
export function normalizeHyp(text: string): string {
  return text
    .split(/\s+/)
    .map((w) => w.replace(/\(\d+\)$/, ''))
    .filter(isWord)
    .join(' ');
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
