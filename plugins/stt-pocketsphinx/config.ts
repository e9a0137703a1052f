/**
 * Config of the stt-pocketsphinx plugin (the `plugins.stt-pocketsphinx.config` block).
 *
 * Every key has a default that works with Debian 12's packages (libpocketsphinx3,
 * pocketsphinx-en-us). Relative paths resolve against the config file's directory.
 * `extraArgs` passes tuning flags straight to the decoder; names are checked against the
 * decoder's own argument table here, so a typo fails `config check`, not the first call.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';

export const DEBIAN_MODEL_ROOT = '/usr/share/pocketsphinx/model/en-us';

/** Arguments of Debian's pocketsphinx 0.8+5prealpha (ps_args()). */
export const DECODER_ARGS: readonly string[] = [
  '-agc', '-agcthresh', '-allphone', '-allphone_ci', '-alpha', '-ascale', '-aw', '-backtrace', '-beam', '-bestpath',
  '-bestpathlw', '-ceplen', '-cmn', '-cmninit', '-compallsen', '-debug', '-dict', '-dictcase', '-dither', '-doublebw',
  '-ds', '-fdict', '-feat', '-featparams', '-fillprob', '-frate', '-fsg', '-fsgusealtpron', '-fsgusefiller', '-fwdflat',
  '-fwdflatbeam', '-fwdflatefwid', '-fwdflatlw', '-fwdflatsfwin', '-fwdflatwbeam', '-fwdtree', '-hmm', '-input_endian',
  '-jsgf', '-keyphrase', '-kws', '-kws_delay', '-kws_plp', '-kws_threshold', '-latsize', '-lda', '-ldadim', '-lifter',
  '-lm', '-lmctl', '-lmname', '-logbase', '-logfn', '-logspec', '-lowerf', '-lpbeam', '-lponlybeam', '-lw', '-maxhmmpf',
  '-maxwpf', '-mdef', '-mean', '-mfclogdir', '-min_endfr', '-mixw', '-mixwfloor', '-mllr', '-mmap', '-ncep', '-nfft',
  '-nfilt', '-nwpen', '-pbeam', '-pip', '-pl_beam', '-pl_pbeam', '-pl_pip', '-pl_weight', '-pl_window', '-rawlogdir',
  '-remove_dc', '-remove_noise', '-remove_silence', '-round_filters', '-samprate', '-seed', '-sendump', '-senlogdir',
  '-senmgau', '-silprob', '-smoothspec', '-svspec', '-tmat', '-tmatfloor', '-topn', '-topn_beam', '-toprule',
  '-transform', '-unit_area', '-upperf', '-uw', '-vad_postspeech', '-vad_prespeech', '-vad_startspeech',
  '-vad_threshold', '-var', '-varfloor', '-varnorm', '-verbose', '-warp_params', '-warp_type', '-wbeam', '-wip', '-wlen',
];

/** Arguments owned by other config keys or by the plugin itself. */
export const RESERVED_ARGS: readonly string[] = [
  '-hmm', '-dict', '-lm', '-jsgf', '-fsg', '-kws', '-keyphrase', '-lmctl', '-lmname', '-allphone', '-toprule',
  '-samprate', '-logfn', '-input_endian',
];

const ExtraArgValue = z.union([z.string(), z.number(), z.boolean()]);

const ExtraArgs = z.record(z.string(), ExtraArgValue).superRefine((args, ctx) => {
  for (const name of Object.keys(args)) {
    const flag = name.startsWith('-') ? name : `-${name}`;
    if (!DECODER_ARGS.includes(flag)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a pocketsphinx argument` });
    } else if (RESERVED_ARGS.includes(flag)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is set by the plugin (use modelDir, dictionary, languageModel, sampleRate or mode)` });
    }
  }
});

const GrammarSchema = z.strictObject({
  /** Accept spoken digits ("four two seven one") anywhere in grammar and keyword modes. */
  digits: z.boolean().default(true),
  /** Probability weight of one loose word of the phrases (whole phrases and digits weigh 1). */
  looseWordWeight: z.number().positive().max(1).default(0.01),
  /** Weight of one phone of the garbage loop that absorbs out-of-grammar speech (0: no loop). */
  garbageWeight: z.number().min(0).max(1).default(0.1),
  /** Word insertion penalty of grammar and keyword decoders (pocketsphinx -wip; default there 0.65). */
  wordInsertionPenalty: z.number().positive().max(1).default(0.01),
  /** Re-decode a turn with the N-gram model when the grammar found nothing or mostly garbage. */
  fallbackToLm: z.boolean().default(true),
  /** Share of the turn's speech taken by the garbage loop above which the turn is re-decoded. */
  outOfGrammarThreshold: z.number().min(0).max(1).default(0.2),
});

const PoolSchema = z.strictObject({
  /** Decoders kept idle between calls (an N-gram decoder holds ~80-95 MB). */
  maxIdle: z.number().int().min(0).max(64).default(2),
  /** Idle decoders older than this are freed. */
  idleTimeoutMs: z.number().int().min(1000).default(300_000),
  /** N-gram decoders built at start-up, so the first call does not wait ~250 ms for one. */
  prewarm: z.number().int().min(0).max(64).default(1),
});

export const PocketSphinxConfigSchema = z.strictObject({
  /** Acoustic model directory (mdef, means, variances, feat.params...). */
  modelDir: z.string().min(1).default(`${DEBIAN_MODEL_ROOT}/en-us`),
  /** Pronunciation dictionary. */
  dictionary: z.string().min(1).default(`${DEBIAN_MODEL_ROOT}/cmudict-en-us.dict`),
  /** N-gram language model (ARPA, DMP or binary trie). */
  languageModel: z.string().min(1).default(`${DEBIAN_MODEL_ROOT}/en-us.lm.bin`),
  /**
   * lm: open dictation with the N-gram model. grammar: a JSGF grammar built from the
   * stream's phrases (plus digits). keywords: keyword spotting of the phrases.
   * Unset: grammar when the stream brings phrases, else lm.
   */
  mode: z.enum(['lm', 'grammar', 'keywords']).optional(),
  /** Keyword mode: detection threshold of a 10-phone keyphrase (scaled with length: 1e-20 -> 1e-2 for one phone). */
  keywordThreshold: z.number().positive().max(1).default(1e-20),
  grammar: GrammarSchema.prefault({}),
  /**
   * Rate of the audio the plugin takes from the engine. Calls are 8 kHz G.711: 8000 (default)
   * takes them as they are; 16000 suits wideband calls. The decoder always runs at the
   * acoustic model's own rate (16 kHz for Debian's en-us; read from feat.params).
   */
  sampleRate: z.union([z.literal(8000), z.literal(16000)]).default(8000),
  /**
   * How 8 kHz audio is brought to a 16 kHz model: "image" repeats samples, leaving a mirrored
   * image of the 0-4 kHz band where the wideband model expects energy (fewer errors on
   * telephone speech, see README); "filter" is a clean band-limited interpolation.
   */
  upsampling: z.enum(['image', 'filter']).default('image'),
  /** Primary language subtags this model serves; streams for other languages are refused. */
  languages: z.array(z.string().regex(/^[a-zA-Z]{2,3}$/)).min(1).default(['en']),
  /** How often partial hypotheses are sent while the caller speaks (0: never). */
  interimIntervalMs: z.number().int().min(0).default(300),
  /** Longest turn kept for the LM re-decode of grammar turns. */
  maxUtteranceSeconds: z.number().min(1).max(300).default(30),
  /** Concurrent streams allowed; past it stream() fails with rate_limited (the caller goes to a human). */
  maxStreams: z.number().int().min(1).default(32),
  /** Load only the dictionary words the N-gram model knows (smaller, faster LM decoders). */
  trimDictionary: z.boolean().default(true),
  pool: PoolSchema.prefault({}),
  /** Extra decoder arguments, e.g. { maxhmmpf: 10000, pl_window: 5 } (with or without the dash). */
  extraArgs: ExtraArgs.default({}),
  /** Shared libraries (sonames or paths). */
  libraries: z
    .strictObject({
      pocketsphinx: z.string().min(1).default('libpocketsphinx.so.3'),
      sphinxbase: z.string().min(1).default('libsphinxbase.so.3'),
    })
    .prefault({}),
});

export type PocketSphinxConfig = z.infer<typeof PocketSphinxConfigSchema>;

/** The config with its file paths made absolute (relative ones against the config's folder). */
export function resolvePaths(config: PocketSphinxConfig, configDir: string): PocketSphinxConfig {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(configDir, p));
  return { ...config, modelDir: abs(config.modelDir), dictionary: abs(config.dictionary), languageModel: abs(config.languageModel) };
}

/** `extraArgs` as an argv fragment (booleans as yes/no, as the decoder expects). */
export function extraArgv(extra: PocketSphinxConfig['extraArgs']): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(extra)) {
    out.push(name.startsWith('-') ? name : `-${name}`, typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value));
  }
  return out;
}
