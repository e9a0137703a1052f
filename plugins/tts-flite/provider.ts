/**
 * The flite TtsProvider: text -> ASCII -> chunks (sentences, long ones cut at clauses) ->
 * one synthesis per chunk -> 20 ms frames. Chunk i+1 is synthesised while chunk i's frames
 * are consumed, so audio starts after the first chunk, not after the whole text.
 *
 * The declared rate is the configured voice's native rate (8 kHz for kal: no resampling on
 * a G.711 call). A per-call voice of another rate is resampled to the declared one.
 */
import type { AudioFrame, SampleRate } from '../../src/audio/frame.js';
import { createResampler, type Resampler } from '../../src/audio/resampler.js';
import type { SynthesisOptions, TtsProvider } from '../../src/plugins/api.js';
import { Framer } from '../../src/audio/framer.js';
import { abortError, fliteError, type SynthEngine, type VoiceInfo, type Wave } from './engine.js';
import { foldToAscii, splitIntoChunks } from './text.js';
import { normalizeVoiceName } from './voices.js';

/** Frames the provider yields: the engine's pacing unit. */
export const FRAME_MS = 20;
/** Longest chunk handed to flite at once (bounds the wait for a chunk and for an abort). */
export const MAX_CHUNK_CHARS = 200;

export interface FliteProviderOptions {
  engine: SynthEngine;
  voice: VoiceInfo;
  durationStretch?: number | undefined;
  /** Aborts every synthesis (Switchboard shutting down). */
  shutdown: AbortSignal;
}

export class FliteTts implements TtsProvider {
  readonly sampleRate: SampleRate;
  private readonly engine: SynthEngine;
  private readonly voice: VoiceInfo;
  private readonly durationStretch: number | undefined;
  private readonly closing = new AbortController();
  private readonly signalBase: AbortSignal;
  private readonly extraVoices = new Map<string, Promise<VoiceInfo>>();

  constructor(opts: FliteProviderOptions) {
    this.engine = opts.engine;
    this.voice = opts.voice;
    this.sampleRate = opts.voice.sampleRate;
    this.durationStretch = opts.durationStretch;
    this.signalBase = AbortSignal.any([opts.shutdown, this.closing.signal]);
  }

  async *synthesize(text: string, opts: SynthesisOptions): AsyncIterable<AudioFrame> {
    if (this.closing.signal.aborted) throw fliteError('unavailable', 'the provider is closed', false);
    if (opts.signal.aborted) throw abortError();
    checkLanguage(opts.language);
    const folded = foldToAscii(text);
    if (folded.foreign.length > 0) {
      throw fliteError(
        'bad_request',
        `flite speaks English only and cannot read "${folded.foreign.join('')}" (use a multilingual voice such as tts-espeak for this text)`,
        false,
      );
    }
    const chunks = splitIntoChunks(folded.ascii, MAX_CHUNK_CHARS);
    if (chunks.length === 0) return;

    // Our own controller too: when the consumer stops early, queued chunks are cancelled.
    const own = new AbortController();
    const signal = AbortSignal.any([opts.signal, this.signalBase, own.signal]);
    let next: Promise<Wave> | undefined;
    try {
      const voice = await this.resolveVoice(opts.voice, signal);
      const resampler: Resampler | undefined = voice.sampleRate === this.sampleRate ? undefined : createResampler(voice.sampleRate, this.sampleRate);
      const framer = new Framer(this.sampleRate, Math.round((this.sampleRate * FRAME_MS) / 1000));
      const synth = (chunk: string): Promise<Wave> => this.engine.synth({ voice: voice.name, text: chunk, durationStretch: this.durationStretch }, signal);

      next = synth(chunks[0] as string);
      for (let i = 0; next; i++) {
        const wave: Wave = await next;
        if (wave.sampleRate !== voice.sampleRate) {
          throw fliteError('bad_response', `voice ${voice.name} changed rate mid-text (${voice.sampleRate} -> ${wave.sampleRate} Hz)`, false);
        }
        next = i + 1 < chunks.length ? synth(chunks[i + 1] as string) : undefined;
        // If we stop before awaiting it, its rejection (an abort) must not go unhandled.
        next?.catch(() => undefined);
        const pcm = resampler ? resampler.process(wave).samples : wave.samples;
        for (const frame of framer.push(pcm)) {
          if (signal.aborted) throw abortError();
          yield frame;
        }
      }
      const tail = resampler ? framer.push(resampler.flush().samples) : [];
      for (const frame of [...tail, ...framer.flush()]) {
        if (signal.aborted) throw abortError();
        yield frame;
      }
    } catch (err) {
      // Whatever an abort (the turn's, or shutdown) interrupted, the caller sees an AbortError.
      if (signal.aborted && !own.signal.aborted) throw abortError();
      throw err;
    } finally {
      own.abort();
      // Let the chunk synthesised ahead settle: for a child process that means killed and
      // reaped, so nothing outlives the iteration (the FFI engine settles at once).
      await next?.catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.engine.close();
  }

  private resolveVoice(requested: string | undefined, signal: AbortSignal): Promise<VoiceInfo> {
    if (requested === undefined || requested.trim() === '') return Promise.resolve(this.voice);
    const name = normalizeVoiceName(requested);
    if (name === this.voice.name) return Promise.resolve(this.voice);
    let p = this.extraVoices.get(name);
    if (!p) {
      p = this.engine.loadVoice(name, new AbortController().signal);
      this.extraVoices.set(name, p);
      p.catch(() => this.extraVoices.delete(name));
    }
    return signal.aborted ? Promise.reject(abortError()) : p;
  }
}

/** flite's voices are English: refuse other languages so the fallback provider speaks them. */
function checkLanguage(language: string): void {
  const primary = language.trim().toLowerCase().split(/[-_]/)[0] ?? '';
  if (primary === '' || primary === 'en' || primary === 'und') return;
  throw fliteError('bad_request', `flite speaks English only, not "${language}"`, false);
}
