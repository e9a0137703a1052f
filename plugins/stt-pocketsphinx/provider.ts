/**
 * The SttProvider: validates the models at start-up (one decoder is built, so a wrong path or
 * a broken model fails `start`, not the first call), owns the decoder pool, turns a stream's
 * phrases into a grammar or keyphrase decoder spec (cached per phrase set), and enforces the
 * stream limit.
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SampleRate } from '../../src/audio/frame.js';
import type { Logger } from '../../src/log.js';
import { PluginError, type PluginContext, type SttProvider, type SttStream, type SttStreamOptions } from '../../src/plugins/api.js';
import { extraArgv, resolvePaths, type PocketSphinxConfig } from './config.js';
import { nativeError, type DecoderKind, type DecoderSpec } from './decoder.js';
import { entryPhones, fileIdentity, hashOf, PronunciationDictionary, writeCached, writeCompactDictionary, writeTrimmedDictionary } from './dictionary.js';
import { buildJsgf, buildKeyphraseList, compilePhrases, DIGIT_WORDS, garbageDictionary, phraseWords } from './grammar.js';
import { loadPocketSphinx, maintainLog, PLUGIN_NAME, type PocketSphinx } from './native.js';
import { DecoderPool, type PoolStats } from './pool.js';
import { modelSampleRate, rateConverter } from './rate.js';
import { abortable, abortErrorOf, PocketSphinxStream } from './stream.js';

const MAX_CACHED_PHRASE_SETS = 64;
/** Audio allowed to wait for a busy decoder before the oldest is dropped. */
const MAX_BACKLOG_SECONDS = 10;

export interface ProviderStats extends PoolStats {
  streams: number;
}

export class PocketSphinxProvider implements SttProvider {
  private readonly streams = new Set<PocketSphinxStream>();
  private reserved = 0;
  private closed = false;
  private readonly phraseSpecs = new Map<string, Promise<{ spec: DecoderSpec; mode: DecoderKind } | undefined>>();
  private readonly dictionary: PronunciationDictionary;
  private readonly logTimer: NodeJS.Timeout;

  private constructor(
    private readonly cfg: PocketSphinxConfig,
    /** Rate the acoustic model (and so every decoder) runs at. */
    readonly modelRate: 8000 | 16000,
    private readonly lib: PocketSphinx,
    readonly pool: DecoderPool,
    private readonly lmSpec: DecoderSpec,
    private readonly baseArgv: readonly string[],
    private readonly cacheDir: string,
    private readonly log: Logger,
  ) {
    this.dictionary = new PronunciationDictionary(cfg.dictionary);
    this.logTimer = setInterval(() => maintainLog(lib), 60_000);
    this.logTimer.unref();
  }

  static async create(config: PocketSphinxConfig, ctx: PluginContext): Promise<PocketSphinxProvider> {
    const cfg = resolvePaths(config, ctx.configDir);
    const modelRate = await checkModelFiles(cfg);
    const cacheDir = join(ctx.cacheDir, PLUGIN_NAME);
    await mkdir(cacheDir, { recursive: true });
    const lib = loadPocketSphinx(cfg.libraries, join(cacheDir, 'pocketsphinx.log'));

    const baseArgv = ['-hmm', cfg.modelDir, '-samprate', String(modelRate), ...extraArgv(cfg.extraArgs)];
    const probe = lib.parseConfig([...baseArgv, '-dict', cfg.dictionary]);
    if (probe === null) throw nativeError(lib, 'bad_request', 'the decoder refused the configured arguments', false);
    let lmDict = cfg.dictionary;
    try {
      if (cfg.trimDictionary) {
        const key = `${await fileIdentity(cfg.dictionary)}|${await fileIdentity(cfg.languageModel)}`;
        lmDict = await writeTrimmedDictionary(cacheDir, cfg.dictionary, key, async () => {
          const vocab = await lib.lmVocabulary(probe, cfg.languageModel);
          if (vocab.length === 0) throw nativeError(lib, 'bad_request', `cannot read the language model ${cfg.languageModel}`, false);
          return new Set(vocab);
        });
      }
    } finally {
      lib.freeConfig(probe);
    }
    const lmArgv = [...baseArgv, '-dict', lmDict, '-lm', cfg.languageModel];
    const lmSpec: DecoderSpec = { key: `lm:${hashOf(...lmArgv)}`, kind: 'lm', argv: lmArgv };
    const pool = new DecoderPool(lib, ctx.log, cfg.pool);
    const provider = new PocketSphinxProvider(cfg, modelRate, lib, pool, lmSpec, baseArgv, cacheDir, ctx.log);

    // Build one N-gram decoder now: a wrong model fails start-up with the library's reason.
    const started = performance.now();
    const first = await pool.acquire(lmSpec);
    await pool.release(first);
    ctx.log.info(
      {
        initMs: Math.round(performance.now() - started),
        sampleRate: cfg.sampleRate,
        modelRate,
        upsampling: cfg.sampleRate < modelRate ? cfg.upsampling : undefined,
        trimmedDictionary: lmDict !== cfg.dictionary,
      },
      'pocketsphinx ready',
    );
    if (cfg.pool.prewarm > 1) {
      pool.prewarm(lmSpec, cfg.pool.prewarm - 1).catch((err: unknown) => ctx.log.warn({ err }, 'pocketsphinx: prewarm failed'));
    }
    return provider;
  }

  get sampleRate(): SampleRate {
    return this.cfg.sampleRate;
  }

  async stream(opts: SttStreamOptions): Promise<SttStream> {
    if (this.closed) throw new PluginError(PLUGIN_NAME, 'unavailable', 'the provider is closed', false);
    const lang = opts.language.split('-')[0]?.toLowerCase() ?? '';
    if (!this.cfg.languages.some((l) => l.toLowerCase() === lang)) {
      throw new PluginError(PLUGIN_NAME, 'bad_request', `no model for language "${opts.language}" (this one serves ${this.cfg.languages.join(', ')})`, false);
    }
    if (opts.signal.aborted) throw abortErrorOf(opts.signal);
    if (this.streams.size + this.reserved >= this.cfg.maxStreams) {
      throw new PluginError(PLUGIN_NAME, 'rate_limited', `all ${this.cfg.maxStreams} recognition streams are busy`, true);
    }
    this.reserved++;
    try {
      let mode: DecoderKind = 'lm';
      let spec = this.lmSpec;
      const wanted = this.cfg.mode ?? (opts.phrases && opts.phrases.length > 0 ? 'grammar' : 'lm');
      if (wanted !== 'lm') {
        const built = await this.phraseSpec(wanted, opts.phrases ?? []);
        if (built) ({ spec, mode } = built);
        else this.log.warn({ mode: wanted }, 'pocketsphinx: no usable phrases for this stream; using the language model');
      }
      const acquiring = this.pool.acquire(spec);
      const decoder = await abortable(acquiring, opts.signal, () => {
        acquiring.then((d) => this.pool.release(d)).catch(() => undefined);
      });
      try {
        await decoder.run(() => decoder.startUtterance());
      } catch (err) {
        await this.pool.release(decoder);
        throw err;
      }
      const grammar = this.cfg.grammar;
      const stream = new PocketSphinxStream({
        decoder,
        pool: this.pool,
        mode,
        sampleRate: this.cfg.sampleRate,
        decoderRate: this.modelRate,
        convert: rateConverter(this.cfg.sampleRate, this.modelRate, this.cfg.upsampling),
        log: this.log,
        interimIntervalMs: this.cfg.interimIntervalMs,
        maxUtteranceSamples: Math.round(this.cfg.maxUtteranceSeconds * this.modelRate),
        maxBacklogSamples: MAX_BACKLOG_SECONDS * this.modelRate,
        fallback: mode === 'grammar' && grammar.fallbackToLm ? { spec: this.lmSpec, garbageAbove: grammar.outOfGrammarThreshold } : undefined,
        signal: opts.signal,
        onClosed: (s) => this.streams.delete(s),
      });
      this.streams.add(stream);
      if (this.closed || opts.signal.aborted) {
        await stream.close();
        throw this.closed ? new PluginError(PLUGIN_NAME, 'unavailable', 'the provider is closed', false) : abortErrorOf(opts.signal);
      }
      return stream;
    } finally {
      this.reserved--;
    }
  }

  stats(): ProviderStats {
    return { ...this.pool.stats(), streams: this.streams.size };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.logTimer);
    await Promise.allSettled([...this.streams].map((s) => s.close()));
    await this.pool.close();
  }

  /** Decoder spec for a phrase set (grammar or keywords), cached; undefined when no word is usable. */
  private phraseSpec(mode: 'grammar' | 'keywords', phrases: readonly string[]): Promise<{ spec: DecoderSpec; mode: DecoderKind } | undefined> {
    const key = `${mode}\n${phrases.join('\n')}`;
    let p = this.phraseSpecs.get(key);
    if (p) {
      // refresh its position (Map iteration order = insertion order = LRU)
      this.phraseSpecs.delete(key);
      this.phraseSpecs.set(key, p);
      return p;
    }
    p = this.buildPhraseSpec(mode, phrases);
    this.phraseSpecs.set(key, p);
    p.catch(() => this.phraseSpecs.delete(key));
    while (this.phraseSpecs.size > MAX_CACHED_PHRASE_SETS) {
      const oldest = this.phraseSpecs.keys().next().value as string;
      this.phraseSpecs.delete(oldest);
    }
    return p;
  }

  private async buildPhraseSpec(mode: 'grammar' | 'keywords', phrases: readonly string[]): Promise<{ spec: DecoderSpec; mode: DecoderKind } | undefined> {
    const g = this.cfg.grammar;
    const candidates = new Set(phrases.flatMap(phraseWords));
    if (g.digits) for (const d of DIGIT_WORDS) candidates.add(d);
    const entries = await this.dictionary.lookup(candidates);
    const known = (w: string): boolean => (entries.get(w)?.length ?? 0) > 0;
    const digitSounds = new Set(DIGIT_WORDS.flatMap((d) => (entries.get(d) ?? []).map(entryPhones)));
    const soundsLikeDigit = (w: string): boolean => (entries.get(w) ?? []).some((e) => digitSounds.has(entryPhones(e)));
    const compiled = compilePhrases(phrases, { digits: g.digits }, known, soundsLikeDigit);
    if (compiled.unknownWords.length > 0) {
      this.log.warn({ words: compiled.unknownWords }, 'pocketsphinx: phrase words missing from the dictionary are left out of the grammar');
    }
    if (compiled.words.length === 0) return undefined;
    const lines = compiled.words.flatMap((w) => entries.get(w) ?? []);
    const argv = [...this.baseArgv, '-wip', String(g.wordInsertionPenalty)];
    if (mode === 'grammar') {
      const garbage = g.garbageWeight > 0 ? garbageDictionary(await this.dictionary.phones()) : [];
      const jsgf = buildJsgf(compiled, g, garbage.map((l) => l.split(' ')[0] as string));
      if (!jsgf) return undefined;
      const dictFile = await writeCompactDictionary(this.cacheDir, [...lines, ...garbage]);
      argv.push('-dict', dictFile);
      return { mode, spec: { key: `grammar:${hashOf(...argv, jsgf)}`, kind: 'grammar', argv, jsgf } };
    }
    const phoneCount = (w: string): number => entryPhones(entries.get(w)?.[0] ?? '').split(/\s+/).filter(Boolean).length;
    const list = buildKeyphraseList(compiled, this.cfg.keywordThreshold, phoneCount);
    if (!list) return undefined;
    argv.push('-dict', await writeCompactDictionary(this.cacheDir, lines));
    const keyphraseFile = await writeCached(this.cacheDir, `pocketsphinx-kws-${hashOf(list)}.txt`, list);
    return { mode, spec: { key: `keywords:${hashOf(...argv, list)}`, kind: 'keywords', argv, keyphraseFile } };
  }
}

/** Fail fast, with the path, when a model file is missing. Returns the model's sample rate. */
async function checkModelFiles(cfg: PocketSphinxConfig): Promise<8000 | 16000> {
  const need = async (path: string, what: string): Promise<void> => {
    try {
      await access(path);
    } catch {
      throw new PluginError(PLUGIN_NAME, 'bad_request', `${what} not found: ${path} (Debian: apt-get install pocketsphinx-en-us)`, false);
    }
  };
  await need(join(cfg.modelDir, 'mdef'), 'acoustic model (mdef)');
  await need(cfg.dictionary, 'dictionary');
  await need(cfg.languageModel, 'language model');
  return modelSampleRate(await readFile(join(cfg.modelDir, 'feat.params'), 'utf8').catch(() => ''));
}
