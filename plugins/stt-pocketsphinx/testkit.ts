/**
 * Shared by the plugin's tests and its measurement script (measure.ts): the call-centre phrase
 * set, synthetic test speech (offline TTS, optionally through a telephone channel), word error
 * rate, and a helper that plays a clip into a stream in 20 ms frames. Not used at run time.
 */
import { ulawDecode, ulawEncode } from '../../src/audio/g711.js';
import type { AudioFrame, SampleRate } from '../../src/audio/frame.js';
import { resampleFrame } from '../../src/audio/resampler.js';
import type { SttFinal, SttStream } from '../../src/plugins/api.js';
import { packetize, speechAt, type SynthOptions } from '../../test/support/speech.js';
import { phraseWords } from './grammar.js';

/** What a call-centre agent expects at its "how can I help" prompt. */
export const AGENT_PHRASES: readonly string[] = [
  'check my order status',
  'where is my order',
  'change my address',
  'update my phone number',
  'talk to an operator',
  'speak to a human',
  'I want to make a complaint',
  'I want a refund',
  'book an appointment',
  'cancel my appointment',
  'reschedule my appointment',
  'yes',
  'no',
  'thank you',
  'goodbye',
  'my order number is',
];

/** Utterances inside the grammar (phrases, digits, both). */
export const IN_GRAMMAR: readonly string[] = [
  'check my order status',
  'change my address',
  'talk to an operator',
  'four two seven one',
  'where is my order',
  'I want to make a complaint',
  'cancel my appointment',
  'speak to a human',
  'my order number is five five three eight',
  'I want a refund',
  'reschedule my appointment',
  'yes',
  'no',
  'book an appointment',
  'update my phone number',
  'nine zero one six two',
];

/** Utterances outside it: the grammar must not force them into phrases. */
export const OUT_OF_GRAMMAR: readonly string[] = [
  'what time do you close today',
  'do you deliver on weekends',
  'my package arrived damaged',
  'how much does shipping cost',
];

export interface Voice {
  name: string;
  synth: SynthOptions;
}

/** Offline voices: flite's four (natural-ish) and espeak-ng (formant, robotic). */
export const VOICES: readonly Voice[] = [
  { name: 'flite-slt', synth: { engine: 'flite', voice: 'slt' } },
  { name: 'flite-kal16', synth: { engine: 'flite', voice: 'kal16' } },
  { name: 'flite-rms', synth: { engine: 'flite', voice: 'rms' } },
  { name: 'flite-awb', synth: { engine: 'flite', voice: 'awb' } },
  { name: 'espeak-ng', synth: { engine: 'espeak-ng', voice: 'en-us', wpm: 150 } },
];

export type Channel = 'wideband' | 'telephone';

/**
 * `text` spoken at `rate`. "telephone": what a call actually delivers — 8 kHz G.711 mu-law
 * (then the engine's resampler when `rate` is 16000: no energy above 4 kHz). "wideband": the
 * voice at `rate` straight from the synthesiser. 300 ms of silence is added on each side, as
 * the engine's pre-roll and end-of-turn silence would.
 */
export async function utterance(text: string, voice: Voice, channel: Channel, rate: SampleRate = 16000): Promise<AudioFrame> {
  let speech: AudioFrame;
  if (channel === 'telephone') {
    const narrow = await speechAt(text, 8000, voice.synth);
    speech = resampleFrame({ samples: ulawDecode(ulawEncode(narrow.samples)), sampleRate: 8000 }, rate);
  } else {
    speech = await speechAt(text, rate, voice.synth);
  }
  const pad = Math.round(rate * 0.3);
  const samples = new Int16Array(speech.samples.length + 2 * pad);
  samples.set(speech.samples, pad);
  return { samples, sampleRate: rate };
}

/** Push `clip` in 20 ms frames (yielding to the event loop every `yieldEvery` frames), then flush. */
export async function say(stream: SttStream, clip: AudioFrame, signal: AbortSignal = new AbortController().signal, yieldEvery = 5): Promise<SttFinal> {
  let i = 0;
  for (const f of packetize(clip, 20)) {
    stream.push(f);
    if (++i % yieldEvery === 0) await new Promise((r) => setImmediate(r));
  }
  return stream.flush(signal);
}

/** Word-level edit distance between reference and hypothesis (after the grammar's normalisation). */
export function wordErrors(reference: string, hypothesis: string): { errors: number; words: number } {
  const r = phraseWords(reference);
  const h = phraseWords(hypothesis);
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (r[i - 1] === h[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return { errors: prev[h.length] as number, words: r.length };
}

export class WerTally {
  errors = 0;
  words = 0;
  add(reference: string, hypothesis: string): number {
    const e = wordErrors(reference, hypothesis);
    this.errors += e.errors;
    this.words += e.words;
    return e.errors;
  }
  get rate(): number {
    return this.words === 0 ? 0 : this.errors / this.words;
  }
  get summary(): string {
    return `${(100 * this.rate).toFixed(1)}% (${this.errors}/${this.words})`;
  }
}
