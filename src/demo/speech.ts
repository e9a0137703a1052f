/**
 * Offline speech for the scripted caller: espeak-ng -> WAV on stdout -> PCM16 -> the engine's
 * resampler -> an AudioFrame at the call's rate (8 kHz), trimmed to where the voice is (TTS
 * pads with silence; a caller's "last speech packet" should be speech).
 *
 * The text goes to espeak-ng on stdin, never on the command line, so a line starting with "-"
 * cannot be taken for an option. Results are cached per (text, voice, rate, sample rate).
 */
import { spawn } from 'node:child_process';
import { isSampleRate, type AudioFrame, type SampleRate } from '../audio/frame.js';
import { resampleFrame } from '../audio/resampler.js';
import { parseWav } from '../audio/wav.js';

export interface SpeechOptions {
  /** espeak-ng voice (default "en-us"). */
  voice?: string;
  /** Words per minute (default 150). */
  wpm?: number;
  /** Output rate (default 8000). */
  sampleRate?: SampleRate;
  /** Cut leading and trailing silence (default true). */
  trim?: boolean;
  /** The espeak-ng binary (default "espeak-ng" on PATH). */
  command?: string;
  /** Kill espeak-ng after this long (default 30 s). */
  timeoutMs?: number;
}

const CACHE_LIMIT = 128;
const cache = new Map<string, Promise<AudioFrame>>();

/** Speak `text` with espeak-ng. */
export function synthesizeSpeech(text: string, options: SpeechOptions = {}): Promise<AudioFrame> {
  if (text.trim().length === 0) return Promise.reject(new Error('synthesizeSpeech: empty text'));
  const key = JSON.stringify([text, options.voice, options.wpm, options.sampleRate, options.trim, options.command]);
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key); // refresh LRU position
    cache.set(key, hit);
    return hit;
  }
  const p = synthesizeUncached(text, options);
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  while (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  return p;
}

async function synthesizeUncached(text: string, o: SpeechOptions): Promise<AudioFrame> {
  const wav = await runEspeak(text, o);
  const pcm = parseWav(wav);
  if (!isSampleRate(pcm.sampleRate)) throw new Error(`espeak-ng produced ${pcm.sampleRate} Hz audio, not a supported rate`);
  let frame = resampleFrame({ samples: pcm.samples, sampleRate: pcm.sampleRate }, o.sampleRate ?? 8000);
  if (o.trim ?? true) {
    frame = trimToVoice(frame);
    if (frame.samples.length === 0) throw new Error(`espeak-ng produced only silence for "${text.slice(0, 60)}"`);
  }
  return frame;
}

function runEspeak(text: string, o: SpeechOptions): Promise<Buffer> {
  const command = o.command ?? 'espeak-ng';
  const args = ['-v', o.voice ?? 'en-us', '-s', String(o.wpm ?? 150), '--stdout'];
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${command} timed out after ${o.timeoutMs ?? 30_000} ms`));
    }, o.timeoutMs ?? 30_000);
    const finish = (e: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) reject(e);
      else resolve(Buffer.concat(out));
    };
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 2000) err += b.toString('utf8');
    });
    child.on('error', (e) => finish(new Error(`cannot run ${command}: ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      if (code === 0) finish(undefined);
      else finish(new Error(`${command} exited with ${code}: ${err.trim().slice(0, 300)}`));
    });
    child.stdin.on('error', () => {
      /* reported through close/error */
    });
    child.stdin.end(`${text}\n`, 'utf8');
  });
}

/**
 * Where the sound is: first and last 10 ms block whose RMS is above `floorDbfs`, in ms from the
 * start of the frame. Undefined when the whole frame is below the floor. The default floor
 * (-60 dBFS) keeps quiet fricatives; TTS padding is digital silence.
 */
export function voicedExtent(frame: AudioFrame, floorDbfs = -60): { startMs: number; endMs: number } | undefined {
  const block = Math.max(1, Math.round(frame.sampleRate / 100));
  const floor = (32768 * 10 ** (floorDbfs / 20)) ** 2;
  let first = -1;
  let last = -1;
  for (let b = 0; b * block < frame.samples.length; b++) {
    const end = Math.min(frame.samples.length, (b + 1) * block);
    let acc = 0;
    for (let i = b * block; i < end; i++) acc += (frame.samples[i] as number) ** 2;
    if (acc / (end - b * block) > floor) {
      if (first < 0) first = b;
      last = b;
    }
  }
  if (first < 0) return undefined;
  const ms = (sample: number): number => (Math.min(sample, frame.samples.length) * 1000) / frame.sampleRate;
  return { startMs: ms(first * block), endMs: ms((last + 1) * block) };
}

/** `frame` cut to its voiced extent (empty when it is all silence). */
export function trimToVoice(frame: AudioFrame, floorDbfs = -60): AudioFrame {
  const v = voicedExtent(frame, floorDbfs);
  if (!v) return { samples: new Int16Array(0), sampleRate: frame.sampleRate };
  const from = Math.round((v.startMs * frame.sampleRate) / 1000);
  const to = Math.round((v.endMs * frame.sampleRate) / 1000);
  return { samples: frame.samples.slice(from, to), sampleRate: frame.sampleRate };
}
