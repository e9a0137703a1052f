/**
 * What the flite provider needs from a synthesis back end, whichever it is (in-process FFI
 * or one `flite` process per chunk), and the helpers both share.
 */
import type { AudioFrame, SampleRate } from '../../src/audio/frame.js';
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
