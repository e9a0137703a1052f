/**
 * What the flite provider needs from a synthesis back end, whichever it is (in-process FFI
 * or one `flite` process per chunk), and the helpers both share.
 */
import type { SampleRate } from '../../src/audio/frame.js';
import { PluginError, type PluginErrorCode } from '../../src/plugins/api.js';

export const PLUGIN_NAME = 'tts-flite';

/** One synthesised chunk: PCM16 mono at the voice's native rate. */
export interface Wave {
  samples: Int16Array;
  sampleRate: SampleRate;
}

export interface VoiceInfo {
  /** Short name, e.g. "kal". */
  name: string;
  sampleRate: SampleRate;
}

export interface SynthJob {
  voice: string;
  text: string;
  /** flite's duration_stretch (>1 slower); undefined keeps the voice's own default. */
  durationStretch?: number | undefined;
}

export interface SynthEngine {
  readonly mode: 'ffi' | 'process';
  /** Load (or find) a voice and learn its native rate. Rejects with PluginError if missing. */
  loadVoice(name: string, signal: AbortSignal): Promise<VoiceInfo>;
  /** Synthesise one chunk. Rejects with an AbortError as soon as `signal` aborts. */
  synth(job: SynthJob, signal: AbortSignal): Promise<Wave>;
  close(): Promise<void>;
}

export function fliteError(code: PluginErrorCode, message: string, retryable: boolean, cause?: unknown): PluginError {
  return new PluginError(PLUGIN_NAME, code, message, retryable, cause === undefined ? undefined : { cause });
}

/** The error an aborted synthesis rejects with (isAbortError() recognises it). */
export function abortError(): DOMException {
  return new DOMException('speech synthesis aborted', 'AbortError');
}

