/**
 * FFI binding (koffi) to Debian's CMU PocketSphinx 0.8+5prealpha: libpocketsphinx.so.3 and
 * libsphinxbase.so.3 (packages libpocketsphinx3, libsphinxbase3; model in pocketsphinx-en-us).
 *
 * Only the C API this plugin needs is declared, with the prototypes of the Debian 12 headers
 * (pocketsphinx.h, ps_search.h, sphinxbase/cmd_ln.h, logmath.h, ngram_model.h, err.h).
 *
 * Threading. The expensive calls (ps_init, ps_process_raw, ps_end_utt, ps_get_hyp, ps_get_prob,
 * grammar compilation) are made with koffi's `.async`, which runs them on koffi's worker
 * threads so the event loop never waits for a decoder. A decoder is not thread-safe: callers
 * must serialise every call on one decoder (Decoder does, with its job queue). Different
 * decoders share no mutable state, so they may run on different threads at once. Two things
 * are process-wide and are set up exactly once, before any decoder exists: the native log
 * stream (err_set_logfp) and koffi's async stack size.
 *
 * Native logging. SphinxBase logs every model load and utterance to a FILE*. We open that
 * file ourselves (libc fopen in append mode, line-buffered) so that (a) it never lands on the
 * process's stderr, where it would interleave with the JSON logs, (b) the tail can be read to
 * put the library's own ERROR lines into PluginError messages, and (c) it can be truncated in
 * place (O_APPEND keeps writers at the end) to bound its size. It is never swapped once set:
 * changing the FILE* while worker threads log would be a use-after-free.
 */
import { closeSync, openSync, readSync, statSync, truncateSync } from 'node:fs';
import { promisify } from 'node:util';
import koffi, { type LibraryHandle } from 'koffi';
import { PluginError } from '../../src/plugins/api.js';

export const PLUGIN_NAME = 'stt-pocketsphinx';

/** An opaque C pointer (koffi 3 represents pointers as BigInt). */
export type Ptr = bigint;

export interface LibraryPaths {
  pocketsphinx: string;
  sphinxbase: string;
}

export interface HypResult {
  text: string;
  /** Path score (log, decoder base); 0 when there is no hypothesis. */
  score: number;
}

export interface SegmentInfo {
  word: string;
  /** Log posterior in the decoder's log base (0 when the search did not compute one). */
  logPosterior: number;
  /** First and last frame (10 ms each) of the word. */
  startFrame: number;
  endFrame: number;
}

/** Typed surface over the raw koffi functions. Pointers are BigInt; NULL is null. */
export interface PocketSphinx {
  readonly paths: LibraryPaths;
  /** Parse a pocketsphinx argv (["-hmm", dir, ...]) into a config; null when invalid. */
  parseConfig(argv: readonly string[]): Ptr | null;
  freeConfig(config: Ptr): void;
  /** ps_init on a worker thread (loads the models: ~20-300 ms). null on failure. */
  init(config: Ptr): Promise<Ptr | null>;
  free(ps: Ptr): number;
  startUtt(ps: Ptr): number;
  processRaw(ps: Ptr, samples: Int16Array, fullUtt: boolean): Promise<number>;
  endUtt(ps: Ptr): Promise<number>;
  /** Current hypothesis (partial during an utterance, final after ps_end_utt). */
  getHyp(ps: Ptr): Promise<HypResult>;
  /** Log posterior of the best path (computes the lattice posterior; after ps_end_utt). */
  getProb(ps: Ptr): Promise<number>;
  /** Word segmentation of the best hypothesis with per-word log posteriors. */
  segments(ps: Ptr): SegmentInfo[];
  /** Frames (10 ms) the current/last utterance fed to the search (silence removed). */
  frameCount(ps: Ptr): number;
  /** Convert a log value in the decoder's base to linear. */
  logToLinear(ps: Ptr, logValue: number): number;
  setJsgfString(ps: Ptr, name: string, jsgf: string): Promise<number>;
  setKws(ps: Ptr, name: string, keyfile: string): Promise<number>;
  setSearch(ps: Ptr, name: string): number;
  /** Unigram vocabulary of an N-gram model file (loads it briefly on a worker thread). */
  lmVocabulary(config: Ptr, path: string): Promise<string[]>;
  /** ERROR/FATAL lines the library logged recently (newest last), for error messages. */
  recentErrors(max?: number): string[];
  /** Where the native log goes (null: discarded). */
  readonly logPath: string | null;
}

const DEFAULT_PATHS: LibraryPaths = { pocketsphinx: 'libpocketsphinx.so.3', sphinxbase: 'libsphinxbase.so.3' };

/** Native log size past which it is truncated (checked by `maintainLog`). */
const LOG_MAX_BYTES = 4 * 1024 * 1024;
/** koffi's default 128 KiB async stack is thin for a C library that was written for a main thread. */
const ASYNC_STACK_BYTES = 1024 * 1024;

let loaded: { key: string; lib: PocketSphinx } | undefined;

/**
 * Load the libraries once per process. A second call with other paths fails: the C library
 * keeps process-wide state (its log stream), and two copies cannot be loaded side by side.
 * `logPath`: file for the native log (append mode); only the first call's value is used.
 */
export function loadPocketSphinx(paths: Partial<LibraryPaths> = {}, logPath: string | null = null): PocketSphinx {
  const full: LibraryPaths = { ...DEFAULT_PATHS, ...paths };
  const key = `${full.pocketsphinx}\n${full.sphinxbase}`;
  if (loaded) {
    if (loaded.key !== key) {
      throw new PluginError(
        PLUGIN_NAME,
        'bad_request',
        `libraries already loaded from ${loaded.lib.paths.pocketsphinx}; cannot also load ${full.pocketsphinx} in the same process`,
        false,
      );
    }
    return loaded.lib;
  }
  const lib = bind(full, logPath);
  loaded = { key, lib };
  return lib;
}

function openLibrary(path: string, pkg: string): LibraryHandle {
  try {
    return koffi.load(path);
  } catch (err) {
    throw new PluginError(
      PLUGIN_NAME,
      'unavailable',
      `cannot load ${path} (${err instanceof Error ? err.message : String(err)}); install it with: apt-get install ${pkg} pocketsphinx-en-us`,
      false,
      { cause: err },
    );
  }
}

function bind(paths: LibraryPaths, logPath: string | null): PocketSphinx {
  // Koffi only accepts configuration before its first library load; when another module
  // loaded one first, the default stack stays (the decoders ran fine with it in our tests).
  const cfgNow = koffi.config();
  if ((cfgNow.async_stack_size ?? 0) < ASYNC_STACK_BYTES) {
    try {
      koffi.config({ ...cfgNow, async_stack_size: ASYNC_STACK_BYTES });
    } catch {
      // too late for this process
    }
  }
  // libsphinxbase first: libpocketsphinx links against it.
  const sb = openLibrary(paths.sphinxbase, 'libsphinxbase3');
  const ps = openLibrary(paths.pocketsphinx, 'libpocketsphinx3');
  const libc = koffi.load('libc.so.6');

  const fopen = libc.func('void *fopen(const char *path, const char *mode)');
  const setvbuf = libc.func('int setvbuf(void *fp, void *buf, int mode, size_t size)');
  const errSetLogfp = sb.func('void err_set_logfp(void *fp)');

  const cmdLnParseR = sb.func('void *cmd_ln_parse_r(void *inout, void *defn, int32_t argc, const char **argv, int32_t strict)');
  const cmdLnFreeR = sb.func('int cmd_ln_free_r(void *cmdln)');
  const logmathInit = sb.func('void *logmath_init(double base, int shift, int use_table)');
  const logmathFree = sb.func('int logmath_free(void *lmath)');
  const logmathExp = sb.func('double logmath_exp(void *lmath, int32_t logb_p)');
  const ngramModelRead = sb.func('void *ngram_model_read(void *config, const char *file_name, int file_type, void *lmath)');
  const ngramModelGetCounts = sb.func('const uint32_t *ngram_model_get_counts(void *model)');
  const ngramWord = sb.func('const char *ngram_word(void *model, int32_t wid)');
  const ngramModelFree = sb.func('int ngram_model_free(void *model)');

  const psArgs = ps.func('void *ps_args()');
  const psInit = ps.func('void *ps_init(void *config)');
  const psFree = ps.func('int ps_free(void *ps)');
  const psStartUtt = ps.func('int ps_start_utt(void *ps)');
  const psProcessRaw = ps.func('int ps_process_raw(void *ps, const int16_t *data, size_t n_samples, int no_search, int full_utt)');
  const psEndUtt = ps.func('int ps_end_utt(void *ps)');
  const psGetHyp = ps.func('const char *ps_get_hyp(void *ps, _Out_ int32_t *out_best_score)');
  const psGetProb = ps.func('int32_t ps_get_prob(void *ps)');
  const psGetNFrames = ps.func('int ps_get_n_frames(void *ps)');
  const psGetLogmath = ps.func('void *ps_get_logmath(void *ps)');
  const psSegIter = ps.func('void *ps_seg_iter(void *ps)');
  const psSegNext = ps.func('void *ps_seg_next(void *seg)');
  const psSegWord = ps.func('const char *ps_seg_word(void *seg)');
  const psSegFrames = ps.func('void ps_seg_frames(void *seg, _Out_ int *out_sf, _Out_ int *out_ef)');
  const psSegProb = ps.func('int32_t ps_seg_prob(void *seg, _Out_ int32_t *out_ascr, _Out_ int32_t *out_lscr, _Out_ int32_t *out_lback)');
  const psSetJsgfString = ps.func('int ps_set_jsgf_string(void *ps, const char *name, const char *jsgf_string)');
  const psSetKws = ps.func('int ps_set_kws(void *ps, const char *name, const char *keyfile)');
  const psSetSearch = ps.func('int ps_set_search(void *ps, const char *name)');

  const initAsync = promisify(psInit.async) as (cfg: Ptr) => Promise<Ptr | null>;
  const processAsync = promisify(psProcessRaw.async) as (ps: Ptr, d: Int16Array, n: number, ns: number, fu: number) => Promise<number>;
  const endUttAsync = promisify(psEndUtt.async) as (ps: Ptr) => Promise<number>;
  const getProbAsync = promisify(psGetProb.async) as (ps: Ptr) => Promise<number>;
  const setJsgfAsync = promisify(psSetJsgfString.async) as (ps: Ptr, n: string, g: string) => Promise<number>;
  const setKwsAsync = promisify(psSetKws.async) as (ps: Ptr, n: string, f: string) => Promise<number>;
  const ngramReadAsync = promisify(ngramModelRead.async) as (c: Ptr, p: string, t: number, l: Ptr) => Promise<Ptr | null>;

  // Native log: our own FILE*, append mode, line-buffered (_IOLBF = 1 in glibc).
  let logFile: string | null = null;
  if (logPath) {
    const fp = fopen(logPath, 'a') as Ptr | null;
    if (fp) {
      setvbuf(fp, null, 1, 0);
      errSetLogfp(fp);
      logFile = logPath;
    }
  }
  if (!logFile) errSetLogfp(null); // discard rather than write onto our stderr

  const nonNull = (p: unknown): Ptr | null => (typeof p === 'bigint' && p !== 0n ? p : null);

  return {
    paths,
    logPath: logFile,
    parseConfig(argv) {
      return nonNull(cmdLnParseR(null, psArgs(), argv.length, [...argv], 1));
    },
    freeConfig(config) {
      cmdLnFreeR(config);
    },
    async init(config) {
      return nonNull(await initAsync(config));
    },
    free(p) {
      return psFree(p) as number;
    },
    startUtt(p) {
      return psStartUtt(p) as number;
    },
    processRaw(p, samples, fullUtt) {
      return processAsync(p, samples, samples.length, 0, fullUtt ? 1 : 0);
    },
    endUtt(p) {
      return endUttAsync(p);
    },
    getHyp(p) {
      const score = [0];
      return new Promise<HypResult>((resolve, reject) => {
        psGetHyp.async(p, score, (err: unknown, text: string | null) => {
          if (err) reject(err instanceof Error ? err : new Error('ps_get_hyp failed', { cause: err }));
          else resolve({ text: text ?? '', score: score[0] ?? 0 });
        });
      });
    },
    getProb(p) {
      return getProbAsync(p);
    },
    segments(p) {
      const out: SegmentInfo[] = [];
      const ascr = [0];
      const lscr = [0];
      const lback = [0];
      const sf = [0];
      const ef = [0];
      // Iterating to the end frees the iterator (ps_seg_next returns NULL after freeing it).
      for (let seg = nonNull(psSegIter(p)); seg !== null; seg = nonNull(psSegNext(seg))) {
        psSegFrames(seg, sf, ef);
        out.push({
          word: (psSegWord(seg) as string | null) ?? '',
          logPosterior: psSegProb(seg, ascr, lscr, lback) as number,
          startFrame: sf[0] ?? 0,
          endFrame: ef[0] ?? 0,
        });
      }
      return out;
    },
    frameCount(p) {
      return psGetNFrames(p) as number;
    },
    logToLinear(p, logValue) {
      return logmathExp(psGetLogmath(p), logValue) as number;
    },
    setJsgfString(p, name, jsgf) {
      return setJsgfAsync(p, name, jsgf);
    },
    setKws(p, name, keyfile) {
      return setKwsAsync(p, name, keyfile);
    },
    setSearch(p, name) {
      return psSetSearch(p, name) as number;
    },
    async lmVocabulary(config, path) {
      const lmath = nonNull(logmathInit(1.0001, 0, 0));
      if (!lmath) throw new Error('logmath_init failed');
      // ngram_model_read takes ownership of (a reference to) lmath; we release ours after.
      const model = nonNull(await ngramReadAsync(config, path, 0 /* NGRAM_AUTO */, lmath));
      logmathFree(lmath);
      if (!model) return [];
      try {
        const n = koffi.decode.uint32(ngramModelGetCounts(model) as Ptr);
        const words: string[] = new Array<string>(n);
        for (let i = 0; i < n; i++) words[i] = (ngramWord(model, i) as string | null) ?? '';
        return words;
      } finally {
        ngramModelFree(model);
      }
    },
    recentErrors(max = 3) {
      if (!logFile) return [];
      return tailErrors(logFile, max);
    },
  };
}

function tailErrors(path: string, max: number): string[] {
  let fd: number | undefined;
  try {
    const size = statSync(path).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fd = openSync(path, 'r');
    readSync(fd, buf, 0, len, size - len);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l) => l.startsWith('ERROR:') || l.startsWith('FATAL'))
      .slice(-max)
      .map((l) => l.replace(/^ERROR: "[^"]*", line \d+: /, '').trim());
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Truncate the native log when it has grown past its cap (safe: the writer appends). */
export function maintainLog(lib: PocketSphinx, maxBytes = LOG_MAX_BYTES): void {
  if (!lib.logPath) return;
  try {
    if (statSync(lib.logPath).size > maxBytes) truncateSync(lib.logPath, 0);
  } catch {
    // the log is diagnostics only
  }
}
