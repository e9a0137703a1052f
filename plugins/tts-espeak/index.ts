/**
 * tts-espeak: offline multilingual text-to-speech with espeak-ng (100+ languages, including
 * Ukrainian and Russian), 22050 Hz. Robotic but always available and very cheap (real-time
 * factor ~0.002-0.01 on the 2-core box), which makes it the natural fallback provider and
 * the voice of last resort for languages no other plugin speaks.
 *
 * Each synthesis picks its voice in this order:
 *   1. the per-call voice (the agent's `voice`), if given;
 *   2. `languages[<call language>]`, then `languages[<primary subtag>]`;
 *   3. `voice`, when configured (one fixed voice for every language);
 *   4. espeak-ng's best voice for the call's BCP-47 language (en-US -> en-us, uk-UA -> uk,
 *      ru-RU -> ru, en-AU -> en-gb, es-MX -> es-419, zh-CN -> cmn).
 *
 * Config:
 *   voice       fixed voice: language code ("en-us"), voice file ("gmw/en-US") or name, with
 *               an optional "+variant" ("en-us+f3")
 *   variant     variant applied to every voice that names none ("f3", "m2", "Alicia", ...)
 *   languages   map of BCP-47 tag -> voice, e.g. { "uk-UA": "uk", "en": "en-gb-x-rp" }
 *   speed       words per minute, 80-450 (default 175)
 *   pitch       0-99 (default 50)
 *   amplitude   0-200 (default 100)
 *   wordGap     extra pause between words, in units of 10 ms (default none)
 *   binary      the espeak-ng executable (default "espeak-ng")
 * Every voice and variant named is checked at `config check` against this espeak-ng.
 */
import { z } from 'zod';
import { defineTtsPlugin, PLUGIN_API_VERSION } from '../../src/plugins/api.js';
import { espeakError, EspeakTts, PLUGIN_NAME } from './provider.js';
import { findVariant, resolveVoiceSpec, variantProblem, voiceInventory, type ResolvedVoice, type VoiceInventory } from './voices.js';

const BCP47 = /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/;

export const configSchema = z
  .strictObject({
    voice: z.string().min(1).optional(),
    variant: z.string().min(1).optional(),
    languages: z.record(z.string(), z.string().min(1)).default({}),
    speed: z.int().min(80).max(450).default(175),
    pitch: z.int().min(0).max(99).default(50),
    amplitude: z.int().min(0).max(200).default(100),
    wordGap: z.int().min(0).max(100).optional(),
    binary: z.string().min(1).default('espeak-ng'),
  })
  .superRefine((cfg, ctx) => {
    const listing = voiceInventory(cfg.binary);
    if (!listing.ok) {
      ctx.addIssue({ code: 'custom', path: ['binary'], message: `${listing.problem}; ${listing.hint}` });
      return;
    }
    for (const p of voiceProblems(cfg, listing.inventory)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });

export type EspeakConfig = z.infer<typeof configSchema>;

interface Resolved {
  voice?: ResolvedVoice | undefined;
  languages: Map<string, ResolvedVoice>;
}

function resolveAll(cfg: EspeakConfig, inv: VoiceInventory): { resolved: Resolved; problems: { path: (string | number)[]; message: string }[] } {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const resolved: Resolved = { languages: new Map() };
  const variantOk = cfg.variant === undefined || findVariant(inv, cfg.variant) !== undefined;
  if (!variantOk) problems.push({ path: ['variant'], message: variantProblem(inv, cfg.variant as string) });
  const check = (spec: string, path: (string | number)[]): ResolvedVoice | undefined => {
    const r = resolveVoiceSpec(inv, spec, variantOk ? cfg.variant : undefined);
    if (typeof r === 'string') {
      problems.push({ path, message: r });
      return undefined;
    }
    return r;
  };
  if (cfg.voice !== undefined) resolved.voice = check(cfg.voice, ['voice']);
  for (const [tag, spec] of Object.entries(cfg.languages)) {
    const r = check(spec, ['languages', tag]);
    if (!BCP47.test(tag)) problems.push({ path: ['languages', tag], message: `"${tag}" is not a BCP-47 language tag (such as "uk-UA" or "en")` });
    if (r) resolved.languages.set(tag.toLowerCase().replace(/_/g, '-'), r);
  }
  return { resolved, problems };
}

function voiceProblems(cfg: EspeakConfig, inv: VoiceInventory): { path: (string | number)[]; message: string }[] {
  return resolveAll(cfg, inv).problems;
}

export default defineTtsPlugin<EspeakConfig>({
  manifest: {
    name: PLUGIN_NAME,
    kind: 'tts',
    version: '1.0.0',
    apiVersion: `^${PLUGIN_API_VERSION.split('.')[0]}.0.0`,
    description: 'Offline multilingual text-to-speech with espeak-ng (uk, ru and 100+ other languages), 22050 Hz',
    configSchema,
  },
  async create(config, ctx) {
    const listing = voiceInventory(config.binary);
    if (!listing.ok) throw espeakError('unavailable', `${listing.problem}; ${listing.hint}`, false);
    const { resolved, problems } = resolveAll(config, listing.inventory);
    if (problems.length > 0) throw espeakError('bad_request', problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '), false);
    ctx.log.info({ voices: listing.inventory.voices.length, voice: resolved.voice?.spec }, 'espeak-ng ready');
    return new EspeakTts({
      binary: config.binary,
      inventory: listing.inventory,
      voice: resolved.voice,
      languages: resolved.languages,
      variant: config.variant,
      speed: config.speed,
      pitch: config.pitch,
      amplitude: config.amplitude,
      wordGap: config.wordGap,
      shutdown: ctx.signal,
    });
  },
});
