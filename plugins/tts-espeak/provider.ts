/**
 * The espeak-ng TtsProvider: one `espeak-ng --stdout` process per synthesize() call, text on
 * stdin, WAV read from stdout while espeak-ng is still writing it (it synthesises clause by
 * clause, so the first audio arrives ~20-50 ms after spawn however long the text is).
 *
 * Abort (the turn's signal, shutdown, close(), or a consumer that stops iterating) kills the
 * process with SIGKILL and the iteration waits for it to be reaped: nothing outlives it.
 */
import { Framer } from '../../src/audio/framer.js';
import { spawn } from 'node:child_process';
import { isSampleRate, type AudioFrame, type SampleRate } from '../../src/audio/frame.js';
import { createResampler, type Resampler } from '../../src/audio/resampler.js';
import { PluginError, type PluginErrorCode, type SynthesisOptions, type TtsProvider } from '../../src/plugins/api.js';
import { resolveVoiceSpec, voiceForLanguage, type ResolvedVoice, type VoiceInventory } from './voices.js';
import { WavStreamParser } from './wav-stream.js';

export const PLUGIN_NAME = 'tts-espeak';
/** espeak-ng's native rate (every voice but the MBROLA ones, which are resampled to it). */
export const ESPEAK_RATE: SampleRate = 22050;
export const FRAME_MS = 20;

export interface EspeakOptions {
  binary: string;
  inventory: VoiceInventory;
  /** Fixed voice (overrides the language mapping when set). */
  voice?: ResolvedVoice | undefined;
  /** Per-language voices, keys lowercase BCP-47 tags. */
  languages: ReadonlyMap<string, ResolvedVoice>;
  variant?: string | undefined;
  speed: number;
  pitch: number;
  amplitude: number;
  wordGap?: number | undefined;
  shutdown: AbortSignal;
}

export function espeakError(code: PluginErrorCode, message: string, retryable: boolean, cause?: unknown): PluginError {
  return new PluginError(PLUGIN_NAME, code, message, retryable, cause === undefined ? undefined : { cause });
}

export function abortError(): DOMException {
  return new DOMException('speech synthesis aborted', 'AbortError');
}

/** Text as espeak-ng should read it: no control characters, no "[[phoneme]]" input mode. */
export function sanitizeText(text: string): string {
  return (
    text
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, ' ')
      .replace(/\[\[/g, '[ [')
      .replace(/\]\]/g, '] ]')
      .trim()
  );
}

export class EspeakTts implements TtsProvider {
  readonly sampleRate: SampleRate = ESPEAK_RATE;
  private readonly closing = new AbortController();
  private readonly base: AbortSignal;
  private running = 0;
  private readonly exits = new Set<Promise<unknown>>();

  constructor(private readonly opts: EspeakOptions) {
    this.base = AbortSignal.any([opts.shutdown, this.closing.signal]);
  }

  /** espeak-ng processes alive right now (not yet reaped). */
  get live(): number {
    return this.running;
  }

  /** The voice a synthesis in `language` (with an optional per-call voice) uses. */
  voiceFor(language: string, requested?: string): ResolvedVoice {
    if (requested !== undefined && requested.trim() !== '') {
      const r = resolveVoiceSpec(this.opts.inventory, requested, this.opts.variant);
      if (typeof r === 'string') throw espeakError('bad_request', r, false);
      return r;
    }
    const tag = language.trim().toLowerCase().replace(/_/g, '-');
    const mapped = this.opts.languages.get(tag) ?? this.opts.languages.get(tag.split('-')[0] ?? '');
    if (mapped) return mapped;
    if (this.opts.voice) return this.opts.voice;
    const voice = voiceForLanguage(this.opts.inventory.voices, language);
    if (!voice) throw espeakError('bad_request', `espeak-ng has no voice for the language "${language}"`, false);
    const r = resolveVoiceSpec(this.opts.inventory, voice.file, this.opts.variant);
    if (typeof r === 'string') throw espeakError('bad_request', r, false);
    return r;
  }

  async *synthesize(text: string, opts: SynthesisOptions): AsyncIterable<AudioFrame> {
    if (this.closing.signal.aborted) throw espeakError('unavailable', 'the provider is closed', false);
    if (opts.signal.aborted) throw abortError();
    const voice = this.voiceFor(opts.language, opts.voice);
    const input = sanitizeText(text);
    if (!/[\p{L}\p{N}]/u.test(input)) return; // nothing to say

    const own = new AbortController();
    const signal = AbortSignal.any([opts.signal, this.base, own.signal]);
    const args = ['--stdout', '-b', '1', '-v', voice.spec, '-s', String(this.opts.speed), '-p', String(this.opts.pitch), '-a', String(this.opts.amplitude)];
    if (this.opts.wordGap !== undefined) args.push('-g', String(this.opts.wordGap));

    const child = spawn(this.opts.binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.running++;
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 2000) stderr += d;
    });
    const exit = new Promise<{ code: number | null; sig: NodeJS.Signals | null; err?: Error }>((resolve) => {
      child.once('error', (err) => resolve({ code: null, sig: null, err }));
      child.once('close', (code, sig) => resolve({ code, sig }));
    });
    const tracked = exit.finally(() => {
      this.running--;
      this.exits.delete(tracked);
    });
    this.exits.add(tracked);
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    signal.addEventListener('abort', kill, { once: true });
    child.stdin.on('error', () => undefined); // EPIPE if it died first: the exit status tells why
    child.stdin.end(input);

    const parser = new WavStreamParser();
    let framer: Framer | undefined;
    let resampler: Resampler | undefined;
    try {
      for await (const piece of child.stdout as AsyncIterable<Buffer>) {
        let samples: Int16Array;
        try {
          samples = parser.push(piece);
        } catch (err) {
          throw espeakError('bad_response', `espeak-ng wrote an unreadable WAV stream: ${(err as Error).message}`, true, err);
        }
        if (!framer && parser.format) {
          const rate = parser.format.sampleRate;
          if (!isSampleRate(rate)) throw espeakError('bad_response', `espeak-ng produced an unsupported rate of ${rate} Hz`, false);
          if (rate !== this.sampleRate) resampler = createResampler(rate, this.sampleRate);
          framer = new Framer(this.sampleRate, Math.round((this.sampleRate * FRAME_MS) / 1000));
        }
        if (!framer || samples.length === 0) continue;
        const pcm = resampler ? resampler.process({ samples, sampleRate: resampler.fromRate }).samples : samples;
        for (const frame of framer.push(pcm)) {
          if (signal.aborted) throw abortError();
          yield frame;
        }
      }
      const result = await exit;
      if (signal.aborted) throw abortError();
      if (result.err) {
        const missing = (result.err as { code?: unknown }).code === 'ENOENT';
        throw espeakError('unavailable', missing ? `the espeak-ng binary "${this.opts.binary}" was not found` : `could not run espeak-ng: ${result.err.message}`, !missing, result.err);
      }
      if (result.code !== 0) {
        const why = result.sig ? `was killed by ${result.sig}` : `exited with code ${result.code}`;
        const bad = /voice does not exist/i.test(stderr);
        throw espeakError(bad ? 'bad_request' : 'internal', `espeak-ng ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`, !bad);
      }
      try {
        parser.end();
      } catch (err) {
        throw espeakError('bad_response', `espeak-ng wrote no audio: ${(err as Error).message}`, true, err);
      }
      const tail = resampler && framer ? framer.push(resampler.flush().samples) : [];
      for (const frame of [...tail, ...(framer?.flush() ?? [])]) {
        if (signal.aborted) throw abortError();
        yield frame;
      }
    } catch (err) {
      if (signal.aborted && !own.signal.aborted) throw abortError();
      throw err;
    } finally {
      own.abort(); // a consumer that stopped early, or an error: stop espeak-ng
      kill();
      signal.removeEventListener('abort', kill);
      await exit; // reaped: no zombie outlives the iteration
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.exits]);
  }
}

