/**
 * tts-flite: offline English text-to-speech with CMU flite (Debian's flite / libflite1).
 *
 * The default voice, kal, is natively 8 kHz: exactly the rate of a G.711 call, so its audio
 * reaches the caller without resampling. The other voices are 16 kHz.
 *
 * Implementation choice, measured on the shared 2-core box (medians of 15 runs, best run in
 * brackets; "CPU RTF" counts flite's own CPU, child processes included):
 *                      first audio        wall RTF   CPU RTF   event-loop cost per chunk
 *   ffi     kal        12 ms  (4 ms)      0.004      0.002     ~0 (runs on a koffi thread)
 *   process kal        36 ms  (16 ms)     0.011      0.005     fork of the server: 2-15 ms
 *   ffi     slt        110 ms (37 ms)     0.035      0.013     ~0
 *   process slt        113 ms (51 ms)     0.035      0.017     fork of the server: 2-15 ms
 * ("fork" = Node forking the whole server to spawn: ~2 ms with a small heap, ~15 ms of
 * event-loop stall with a 200 MB one; calling flite synchronously instead would stall the
 * loop for the whole synthesis: 10-30 ms per kal sentence, 120 ms per slt one.)
 *   mode "ffi" (default): libflite in-process through koffi; each chunk runs via koffi's
 *     async call on a helper thread, through one process-wide queue. Wins on latency, CPU
 *     and event-loop stalls.
 *   mode "process": one `flite` process per chunk, the WAV read back from a temp file. For
 *     deployments that want no native code in the server process: a flite crash (or one of
 *     its cst_error() -> exit() paths) would otherwise take every call down with it.
 *
 * Config:
 *   voice            kal | kal16 | slt | awb | rms (default kal; "cmu_us_kal" also accepted);
 *                    checked at `config check` against the voices this machine has
 *   mode             ffi | process (default ffi)
 *   durationStretch  flite's duration_stretch: >1 slower, <1 faster (default: the voice's
 *                    own, 1.1 for kal, 1.0 for the others)
 *   binary           the flite executable for mode process (default "flite")
 *   maxProcesses     most concurrent flite processes in mode process (default: CPU count)
 */
import { z } from 'zod';
import { defineTtsPlugin, PLUGIN_API_VERSION } from '../../src/plugins/api.js';
import { fliteError, PLUGIN_NAME, type SynthEngine } from './engine.js';
import { FfiEngine } from './ffi-engine.js';
import { ProcessEngine } from './process-engine.js';
import { FliteTts } from './provider.js';
import { availableVoices, KNOWN_VOICES, normalizeVoiceName } from './voices.js';

export const configSchema = z
  .strictObject({
    voice: z.string().min(1).default('kal').transform(normalizeVoiceName),
    mode: z.enum(['ffi', 'process']).default('ffi'),
    durationStretch: z.number().min(0.5).max(3).optional(),
    binary: z.string().min(1).default('flite'),
    maxProcesses: z.int().min(1).max(64).optional(),
  })
  .superRefine((cfg, ctx) => {
    const problem = voiceProblem(cfg.voice, cfg.mode, cfg.binary);
    if (problem) ctx.addIssue({ code: 'custom', path: ['voice'], message: problem });
  });

export type FliteConfig = z.infer<typeof configSchema>;

/** Why `voice` cannot be used in `mode`, or undefined when it can. */
export function voiceProblem(voice: string, mode: 'ffi' | 'process', binary: string): string | undefined {
  if (!Object.hasOwn(KNOWN_VOICES, voice)) {
    const known = Object.entries(KNOWN_VOICES)
      .map(([name, what]) => `${name} (${what})`)
      .join('; ');
    return `"${voice}" is not a flite voice; flite voices: ${known}`;
  }
  const listing = availableVoices(mode, binary);
  if (!listing.ok) return `${listing.problem}; ${listing.hint}`;
  if (!listing.voices.includes(voice)) return `the flite voice "${voice}" is not installed here; installed: ${listing.voices.join(', ')}`;
  return undefined;
}

export default defineTtsPlugin<FliteConfig>({
  manifest: {
    name: PLUGIN_NAME,
    kind: 'tts',
    version: '1.0.0',
    apiVersion: `^${PLUGIN_API_VERSION.split('.')[0]}.0.0`,
    description: 'Offline English text-to-speech with CMU flite; the kal voice speaks natively at 8 kHz',
    configSchema,
  },
  async create(config, ctx) {
    // The schema ran at config check; the machine may have changed since, so check again.
    const problem = voiceProblem(config.voice, config.mode, config.binary);
    if (problem) throw fliteError('bad_request', problem, false);
    const engine: SynthEngine = config.mode === 'ffi' ? FfiEngine.shared() : new ProcessEngine({ binary: config.binary, maxProcesses: config.maxProcesses });
    try {
      const voice = await engine.loadVoice(config.voice, ctx.signal);
      ctx.log.info({ voice: voice.name, sampleRate: voice.sampleRate, mode: engine.mode }, 'flite voice loaded');
      return new FliteTts({ engine, voice, durationStretch: config.durationStretch, shutdown: ctx.signal });
    } catch (err) {
      await engine.close();
      throw err;
    }
  },
});
