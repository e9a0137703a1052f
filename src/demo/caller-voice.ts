/**
 * The scripted caller's voice: Flite's "rms" voice through the repo's own tts-flite plugin,
 * rendered to 8 kHz. A recogniser hears it far better over a telephone line than espeak-ng's
 * formant voice, so the demo and the conversation tests speak with it.
 */
import fliteModule from '../../plugins/tts-flite/index.js';
import { concatFrames, type AudioFrame } from '../audio/frame.js';
import { createResampler } from '../audio/resampler.js';
import type { Logger } from '../log.js';

export interface CallerVoice {
  render(text: string): Promise<AudioFrame>;
  close(): Promise<void>;
}

export async function createCallerVoice(log: Logger, dir: string): Promise<CallerVoice> {
  const flite = await fliteModule.create(fliteModule.manifest.configSchema.parse({ voice: 'rms' }), {
    log,
    signal: new AbortController().signal,
    cacheDir: dir,
    configDir: dir,
  });
  return {
    async render(text) {
      const frames: AudioFrame[] = [];
      for await (const f of flite.synthesize(text, { language: 'en-US', signal: new AbortController().signal })) frames.push(f);
      const pcm = concatFrames(frames);
      if (pcm.sampleRate === 8000) return pcm;
      const r = createResampler(pcm.sampleRate, 8000);
      return concatFrames([r.process(pcm), r.flush()]);
    },
    close: () => flite.close(),
  };
}
