/**
 * One recognition stream (one call): audio in, interim and final transcripts out.
 *
 * push() only copies the frame into a pending list and, if none is queued, queues a "pump"
 * job on the decoder; the pump hands everything pending to ps_process_raw on a worker thread
 * in one call, so frames that arrive while the decoder is busy are batched and the event loop
 * never waits for recognition. Interim hypotheses (ps_get_hyp) are taken after a pump at most
 * every `interimIntervalMs`.
 *
 * flush() cuts the turn where it is called: the audio pushed before it belongs to the turn,
 * audio pushed after it to the next one, whatever the decoder is doing at that moment. Each
 * turn is a "segment"; a queued pump whose segment has been flushed does nothing, because the
 * flush job took its audio. The flush job ends the utterance (ps_end_utt), reads the final
 * hypothesis and its posterior, optionally re-decodes the turn with the N-gram model (grammar
 * mode, when the grammar found nothing or only with low confidence), and starts the next
 * utterance.
 *
 * Aborting a flush rejects it at once with an AbortError; the native work already queued still
 * runs to keep the decoder consistent (a C call cannot be interrupted), but the optional LM
 * re-decode is skipped. close() is idempotent: queued work is dropped, the decoder goes back
 * to the pool (which abandons the utterance), and flushes still pending reject.
 */
import type { AudioFrame, SampleRate } from '../../src/audio/frame.js';
import type { Logger } from '../../src/log.js';
import { PluginError, isAbortError, type SttFinal, type SttInterim, type SttStream } from '../../src/plugins/api.js';
import { normalizeHyp, type DecodeResult, type Decoder, type DecoderKind, type DecoderSpec } from './decoder.js';
import { PLUGIN_NAME } from './native.js';
import type { DecoderPool } from './pool.js';
import type { RateConverter } from './rate.js';

export interface FallbackOptions {
  /** The N-gram decoder spec the turn is re-decoded with. */
  spec: DecoderSpec;
  /** Re-decode when the garbage loop took more than this share of the speech. */
  garbageAbove: number;
}

/**
 * Garbage before the first and after the last word, up to this many 10 ms frames, is breath,
 * clicks and line noise rather than unexpected words, and does not count as out-of-grammar.
 */
export const EDGE_GARBAGE_ALLOWANCE_FRAMES = 30;

/** Share of a grammar turn's speech that the garbage loop took (edge allowance deducted). */
export function garbageShare(f: NonNullable<DecodeResult['frames']>, allowance = EDGE_GARBAGE_ALLOWANCE_FRAMES): number {
  const garbage = f.innerGarbage + Math.max(0, f.leadingGarbage - allowance) + Math.max(0, f.trailingGarbage - allowance);
  return garbage + f.words > 0 ? garbage / (garbage + f.words) : 0;
}

export interface StreamOptions {
  decoder: Decoder;
  pool: DecoderPool;
  mode: DecoderKind;
  /** Rate of the frames pushed. */
  sampleRate: SampleRate;
  /** Rate the decoder runs at; `convert` maps pushed audio to it. */
  decoderRate: number;
  convert: RateConverter;
  log: Logger;
  interimIntervalMs: number;
  /** Longest turn kept for the LM re-decode, in decoder-rate samples. */
  maxUtteranceSamples: number;
  /** Most audio allowed to wait for the decoder, in decoder-rate samples, before the oldest is dropped. */
  maxBacklogSamples: number;
  fallback?: FallbackOptions | undefined;
  /** The stream's own signal (the call's): aborting it closes the stream. */
  signal: AbortSignal;
  /** Called once when the stream has released its decoder. */
  onClosed(stream: PocketSphinxStream): void;
}

/** What a finished turn reports besides the SttFinal (for logs, metrics and tests). */
export interface TurnReport {
  mode: DecoderKind;
  /** The grammar's own result when the LM re-decode replaced it. */
  grammarText?: string;
  usedFallback: boolean;
  sentencePosterior?: number;
  wordPosterior?: number;
  /** Grammar turns: share of the speech the garbage loop took. */
  garbageShare?: number;
  /** Grammar turns: where the garbage loop was (frames). */
  frames?: DecodeResult['frames'];
  audioMs: number;
}

/** The audio of one turn, as flush() takes it. */
interface Turn {
  /** Kept for the LM re-decode (grammar streams only). */
  audio: Int16Array[];
  truncated: boolean;
  /** Samples pushed in the turn (decoder rate). */
  samples: number;
  /** Samples of `audio`. */
  retained: number;
}

interface HeldDecoder {
  decoder: Decoder;
  pool: DecoderPool;
}

/** Streams dropped without close(): give their decoder back rather than leak ~100 MB. */
const leaked = new FinalizationRegistry<HeldDecoder>((held) => {
  void held.pool.release(held.decoder);
});

export class PocketSphinxStream implements SttStream {
  /** Report of the last finished turn. */
  lastTurn: TurnReport | undefined;
  private segment = 0;
  private pending: Int16Array[] = [];
  private pendingSamples = 0;
  private pumpScheduled = false;
  private turnAudio: Int16Array[] = [];
  /** Samples pushed in this turn, and how many of them are kept for a re-decode. */
  private turnSamples = 0;
  private turnRetained = 0;
  private turnTruncated = false;
  private readonly handlers: Array<(r: SttInterim) => void> = [];
  private lastInterimAt = 0;
  private lastInterimText = '';
  private closed = false;
  private closing: Promise<void> | undefined;
  private failure: PluginError | undefined;
  private backlogWarned = false;
  private readonly retainTurn: boolean;

  private readonly onAbort = (): void => void this.close();

  constructor(private readonly o: StreamOptions) {
    this.retainTurn = o.fallback !== undefined;
    leaked.register(this, { decoder: o.decoder, pool: o.pool }, this);
    o.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  push(frame: AudioFrame): void {
    if (this.closed || this.failure) return;
    if (frame.sampleRate !== this.o.sampleRate) {
      throw new PluginError(PLUGIN_NAME, 'bad_request', `expects ${this.o.sampleRate} Hz audio, got a ${frame.sampleRate} Hz frame`, false);
    }
    if (frame.samples.length === 0) return;
    // A copy either way: the engine may reuse its frame buffers.
    const converted = this.o.convert(frame.samples);
    const copy = converted === frame.samples ? converted.slice() : converted;
    const n = copy.length;
    this.pending.push(copy);
    this.pendingSamples += n;
    this.turnSamples += n;
    if (this.retainTurn) {
      if (this.turnRetained + n <= this.o.maxUtteranceSamples) {
        this.turnAudio.push(copy);
        this.turnRetained += n;
      } else this.turnTruncated = true;
    }
    if (this.pendingSamples > this.o.maxBacklogSamples) this.dropBacklog();
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      const seg = this.segment;
      this.o.decoder.run(() => this.pump(seg)).catch((err: unknown) => this.fail(err));
    }
  }

  onInterim(handler: (r: SttInterim) => void): void {
    if (!this.closed) this.handlers.push(handler);
  }

  flush(signal: AbortSignal): Promise<SttFinal> {
    if (this.closed) return Promise.reject(closedError());
    if (signal.aborted) return Promise.reject(abortErrorOf(signal));
    this.segment++;
    const audio = this.takePending();
    const turn = this.takeTurn();
    this.lastInterimText = '';
    const state = { cancelled: false };
    const job = this.o.decoder.run(() => this.finishTurn(audio, turn, state));
    return abortable(job, signal, () => {
      state.cancelled = true;
    });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.pending = [];
    this.pendingSamples = 0;
    this.turnAudio = [];
    this.handlers.length = 0;
    this.o.signal.removeEventListener('abort', this.onAbort);
    leaked.unregister(this);
    this.closing = this.o.pool.release(this.o.decoder).finally(() => this.o.onClosed(this));
    return this.closing;
  }

  // --- decoder jobs (run one at a time, in order, by the decoder's queue) ---------------

  private async pump(seg: number): Promise<void> {
    if (this.closed || this.failure || seg !== this.segment) return; // flushed or closed meanwhile
    this.pumpScheduled = false;
    const audio = this.takePending();
    await this.o.decoder.process(audio);
    if (this.handlers.length === 0 || this.o.interimIntervalMs <= 0) return;
    const now = performance.now();
    if (now - this.lastInterimAt < this.o.interimIntervalMs) return;
    this.lastInterimAt = now;
    const text = normalizeHyp(await this.o.decoder.partial());
    if (this.closed || seg !== this.segment || !text || text === this.lastInterimText) return;
    this.lastInterimText = text;
    for (const h of [...this.handlers]) {
      try {
        h({ text });
      } catch (err) {
        this.o.log.warn({ err }, 'pocketsphinx: interim handler threw');
      }
    }
  }

  private async finishTurn(audio: Int16Array, turn: Turn, state: { cancelled: boolean }): Promise<SttFinal> {
    if (this.closed) throw closedError();
    if (this.failure) throw this.failure;
    const d = this.o.decoder;
    try {
      await d.process(audio);
      const r = await d.finish(this.o.mode !== 'keywords');
      const audioMs = (turn.samples * 1000) / this.o.decoderRate;
      const report: TurnReport = { mode: this.o.mode, usedFallback: false, audioMs, ...posteriors(r) };
      let final: SttFinal = toFinal(r);
      const fb = this.o.fallback;
      if (fb && !state.cancelled && !this.closed && turn.retained > 0 && needsFallback(r, fb.garbageAbove)) {
        // A failed re-decode is not a failed turn: the grammar's answer stands.
        const lm = await this.decodeWithLm(fb.spec, turn.audio).catch((err: unknown): DecodeResult => {
          this.o.log.warn({ err }, 'pocketsphinx: LM re-decode of a grammar turn failed');
          return { text: '' };
        });
        if (lm.text) {
          report.grammarText = final.text;
          report.usedFallback = true;
          Object.assign(report, posteriors(lm));
          final = toFinal(lm);
        }
        if (turn.truncated) this.o.log.warn({ audioMs }, 'pocketsphinx: turn longer than maxUtteranceSeconds; the LM re-decode saw only its start');
      }
      this.lastTurn = report;
      return final;
    } catch (err) {
      if (isAbortError(err)) throw err;
      throw this.fail(err);
    } finally {
      if (!this.closed && !this.failure) {
        try {
          d.startUtterance();
        } catch (err) {
          this.fail(err);
        }
      }
    }
  }

  /** Re-decode a turn with a pooled N-gram decoder. */
  private async decodeWithLm(spec: DecoderSpec, audio: readonly Int16Array[]): Promise<DecodeResult> {
    const lm = await this.o.pool.acquire(spec);
    try {
      return await lm.run(async () => {
        lm.startUtterance();
        // About a second per native call: bounded copies, and a fair share of the workers.
        for (const piece of regroup(audio, this.o.decoderRate)) await lm.process(piece);
        return lm.finish(true);
      });
    } finally {
      await this.o.pool.release(lm);
    }
  }

  // --- helpers ---------------------------------------------------------------------------

  private takePending(): Int16Array {
    const out = concat(this.pending, this.pendingSamples);
    this.pending = [];
    this.pendingSamples = 0;
    this.pumpScheduled = false;
    return out;
  }

  private takeTurn(): Turn {
    const t = { audio: this.turnAudio, truncated: this.turnTruncated, samples: this.turnSamples, retained: this.turnRetained };
    this.turnAudio = [];
    this.turnSamples = 0;
    this.turnRetained = 0;
    this.turnTruncated = false;
    return t;
  }

  /** The decoder cannot keep up: drop the oldest waiting audio instead of growing forever. */
  private dropBacklog(): void {
    while (this.pendingSamples > this.o.maxBacklogSamples && this.pending.length > 1) {
      const dropped = this.pending.shift() as Int16Array;
      this.pendingSamples -= dropped.length;
    }
    if (!this.backlogWarned) {
      this.backlogWarned = true;
      this.o.log.warn(
        { backlogMs: Math.round((this.pendingSamples * 1000) / this.o.decoderRate) },
        'pocketsphinx: recognition is falling behind real time (CPU saturated?); dropping the oldest audio',
      );
    }
  }

  /** Record the stream's first native failure; every later flush reports it. */
  private fail(err: unknown): PluginError {
    const pe =
      err instanceof PluginError ? err : new PluginError(PLUGIN_NAME, 'internal', err instanceof Error ? err.message : String(err), true, { cause: err });
    if (!this.failure) {
      this.failure = pe;
      this.o.log.error({ err: pe }, 'pocketsphinx: stream failed');
    }
    return this.failure;
  }
}

/** Less speech than this (10 ms frames) is a click or a breath: nothing to re-decode. */
const MIN_FALLBACK_SPEECH_FRAMES = 30;

function needsFallback(r: DecodeResult, garbageAbove: number): boolean {
  if (!r.text) return (r.speechFrames ?? MIN_FALLBACK_SPEECH_FRAMES) >= MIN_FALLBACK_SPEECH_FRAMES;
  return r.frames !== undefined && garbageShare(r.frames) > garbageAbove;
}

/**
 * Confidence: for N-gram turns the mean word posterior of the best path; for grammar turns
 * the share of the speech the grammar's words (not its garbage loop) explain. Keyword
 * spotting reports none.
 */
export function confidenceOf(r: DecodeResult): number | undefined {
  if (!r.text) return undefined;
  if (r.wordPosterior !== undefined) return r.wordPosterior;
  if (r.frames !== undefined) return 1 - garbageShare(r.frames);
  return r.sentencePosterior;
}

function toFinal(r: DecodeResult): SttFinal {
  const c = confidenceOf(r);
  return c === undefined ? { text: r.text } : { text: r.text, confidence: round3(c) };
}

function posteriors(r: DecodeResult): Pick<TurnReport, 'sentencePosterior' | 'wordPosterior' | 'garbageShare' | 'frames'> {
  const out: Pick<TurnReport, 'sentencePosterior' | 'wordPosterior' | 'garbageShare' | 'frames'> = {};
  if (r.sentencePosterior !== undefined) out.sentencePosterior = r.sentencePosterior;
  if (r.wordPosterior !== undefined) out.wordPosterior = r.wordPosterior;
  if (r.frames !== undefined) {
    out.garbageShare = garbageShare(r.frames);
    out.frames = r.frames;
  }
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function concat(parts: readonly Int16Array[], total: number): Int16Array {
  if (parts.length === 1) return parts[0] as Int16Array;
  const out = new Int16Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Regroup chunks into arrays of about `size` samples. */
function* regroup(parts: readonly Int16Array[], size: number): Generator<Int16Array> {
  let group: Int16Array[] = [];
  let n = 0;
  for (const p of parts) {
    group.push(p);
    n += p.length;
    if (n >= size) {
      yield concat(group, n);
      group = [];
      n = 0;
    }
  }
  if (n > 0) yield concat(group, n);
}

function closedError(): PluginError {
  return new PluginError(PLUGIN_NAME, 'unavailable', 'the recognition stream is closed', false);
}

export function abortErrorOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (isAbortError(reason) && reason instanceof Error) return reason;
  return new DOMException('The operation was aborted', 'AbortError');
}

/** `p`, or an AbortError as soon as `signal` aborts (then `onAbort` runs). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort();
      reject(abortErrorOf(signal));
    };
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
