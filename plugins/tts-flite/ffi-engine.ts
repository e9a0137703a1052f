/**
 * In-process flite through koffi: libflite and the Debian voice libraries, called without a
 * header (Debian ships none in libflite1) against these flite 2.2 declarations:
 *
 *   int flite_init(void);
 *   cst_voice *register_cmu_us_<name>(const char *voxdir);   // returns the same voice each call
 *   cst_wave *flite_text_to_wave(const char *text, cst_voice *voice);
 *   void delete_wave(cst_wave *w);
 *   typedef struct { const char *type; int sample_rate; int num_samples;
 *                    int num_channels; short *samples; } cst_wave;
 *   typedef struct { const char *name; cst_features *features; ... } cst_voice;
 *   const char *feat_own_string(cst_features *f, const char *name);
 *   void feat_set_float(cst_features *f, const char *name, float v);
 *   float get_param_float(const cst_features *f, const char *name, float def);
 *
 * Two traps, both handled here:
 *  - flite_text_to_wave is synchronous (kal ~2-30 ms, slt 25-250 ms per sentence measured on
 *    the 2-core box). It runs through koffi's `.async`, i.e. on a koffi worker thread, so
 *    the event loop that paces every call's RTP never waits for it (event-loop lag measured
 *    ~5 ms during slt synthesis vs 120 ms when called synchronously).
 *  - cst_features keeps the *pointer* to a feature name, it does not copy it. A JS string
 *    passed as `const char *` is a temporary buffer koffi frees after the call, so setting
 *    a new feature with it leaves a dangling name (measured: duration_stretch silently did
 *    nothing on slt). Names are interned with feat_own_string first.
 *
 * flite keeps process-wide state (registered voices share their feature sets), so every
 * synthesis in the process goes through ONE first-in-first-out queue, one call at a time:
 * no two flite calls ever run concurrently, and the per-voice duration_stretch set before a
 * job is the one that job uses. Calls of different phone calls interleave chunk by chunk.
 * One chunk of kal is a few ms of CPU, so one queue serves far more calls than the box has.
 *
 * An aborted job that is still queued is dropped; one already running cannot be interrupted
 * (flite has no cancel) but its caller is released at once and the wave is freed when the
 * call returns.
 */
import type Koffi from 'koffi';
import type { LibraryHandle, TypeObject } from 'koffi';
import { isSampleRate } from '../../src/audio/frame.js';
import { abortError, fliteError, type SynthEngine, type SynthJob, type VoiceInfo, type Wave } from './engine.js';
import { isKnownVoice, KNOWN_VOICES, libraryCandidates, loadKoffi } from './voices.js';

type KoffiFunction = ReturnType<LibraryHandle['func']>;

interface FliteApi {
  koffi: typeof Koffi;
  textToWave: KoffiFunction;
  deleteWave: KoffiFunction;
  featOwnString: KoffiFunction;
  featSetFloat: KoffiFunction;
  getParamFloat: KoffiFunction;
  waveType: TypeObject;
  voiceType: TypeObject;
}

interface LoadedVoice {
  name: string;
  /** cst_voice * */
  voice: unknown;
  /** cst_features * of the voice */
  features: unknown;
  /** Interned "duration_stretch" owned by the voice's feature set. */
  stretchName: unknown;
  /** The voice's own duration_stretch (kal: 1.1; clustergen voices: unset, i.e. 1.0). */
  defaultStretch: number;
  sampleRate: VoiceInfo['sampleRate'];
}

interface Job {
  voice: LoadedVoice;
  text: string;
  stretch: number;
  signal: AbortSignal;
  resolve(w: Wave): void;
  reject(err: Error): void;
  onAbort: () => void;
  settled: boolean;
}

/**
 * Every library handle, held for the life of the process: koffi dlclose()s a library when
 * its handle is garbage-collected, and a voice's data lives in its library's text segment,
 * so dropping the handle of a registered voice crashes the next synthesis (it did: a
 * segfault after a few dozen sentences, once the GC had run).
 */
const loadedLibraries = new Map<string, LibraryHandle>();

function loadLibrary(koffi: typeof Koffi, base: string): LibraryHandle {
  const held = loadedLibraries.get(base);
  if (held) return held;
  let last: unknown;
  for (const name of libraryCandidates(base)) {
    try {
      const lib = koffi.load(name);
      loadedLibraries.set(base, lib);
      return lib;
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

let api: FliteApi | undefined;

function fliteApi(): FliteApi {
  if (api) return api;
  let koffi: typeof Koffi;
  let lib: LibraryHandle;
  try {
    koffi = loadKoffi();
  } catch (err) {
    throw fliteError('unavailable', (err as Error).message, false, err);
  }
  try {
    lib = loadLibrary(koffi, 'libflite');
  } catch (err) {
    throw fliteError('unavailable', 'libflite is not installed (install the Debian package libflite1, or use mode: process)', false, err);
  }
  // Anonymous structs: koffi type names are process-global and would clash on a reload.
  const waveType = koffi.struct({
    type: 'const char *',
    sample_rate: 'int',
    num_samples: 'int',
    num_channels: 'int',
    samples: 'void *',
  });
  const voiceType = koffi.struct({ name: 'const char *', features: 'void *' });
  const init = lib.func('int flite_init()');
  init();
  api = {
    koffi,
    textToWave: lib.func('void *flite_text_to_wave(const char *text, void *voice)'),
    deleteWave: lib.func('void delete_wave(void *w)'),
    featOwnString: lib.func('void *feat_own_string(void *f, const char *name)'),
    featSetFloat: lib.func('void feat_set_float(void *f, void *name, float v)'),
    getParamFloat: lib.func('float get_param_float(void *f, const char *name, float def)'),
    waveType,
    voiceType,
  };
  return api;
}

/** Copy a cst_wave's samples out (mono; the first channel if flite ever returns more). */
function readWave(a: FliteApi, ptr: unknown): { samples: Int16Array; sampleRate: number } {
  const w = a.koffi.decode(ptr, a.waveType) as { sample_rate: number; num_samples: number; num_channels: number; samples: unknown };
  const channels = Math.max(1, w.num_channels);
  const total = w.num_samples * channels;
  if (w.num_samples <= 0 || !w.samples) return { samples: new Int16Array(0), sampleRate: w.sample_rate };
  const interleaved = a.koffi.decode(w.samples, 'int16', total) as Int16Array;
  if (channels === 1) return { samples: interleaved, sampleRate: w.sample_rate };
  const mono = new Int16Array(w.num_samples);
  for (let i = 0; i < mono.length; i++) mono[i] = interleaved[i * channels] as number;
  return { samples: mono, sampleRate: w.sample_rate };
}

export class FfiEngine implements SynthEngine {
  readonly mode = 'ffi' as const;
  private static instance: FfiEngine | undefined;

  /** The process-wide engine (see the header: flite state is process-wide). */
  static shared(): FfiEngine {
    FfiEngine.instance ??= new FfiEngine();
    return FfiEngine.instance;
  }

  private readonly voices = new Map<string, Promise<LoadedVoice>>();
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  /** Jobs completed and CPU-side milliseconds spent in flite (for tests and diagnostics). */
  readonly stats = { jobs: 0, synthMs: 0, dropped: 0 };

  private constructor() {}

  /** Queued plus running jobs. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  async loadVoice(name: string, signal: AbortSignal): Promise<VoiceInfo> {
    const v = await this.voice(name, signal);
    return { name: v.name, sampleRate: v.sampleRate };
  }

  synth(job: SynthJob, signal: AbortSignal): Promise<Wave> {
    return this.voice(job.voice, signal).then((voice) => this.enqueue(voice, job.text, job.durationStretch, signal));
  }

  /** Providers share the engine; the queue and voices live as long as the process. */
  async close(): Promise<void> {}

  private voice(name: string, signal: AbortSignal): Promise<LoadedVoice> {
    let p = this.voices.get(name);
    if (!p) {
      p = this.register(name);
      this.voices.set(name, p);
      // A failed load is not cached: the package may be installed later.
      p.catch(() => this.voices.delete(name));
    }
    if (signal.aborted) return Promise.reject(abortError());
    return p;
  }

  private async register(name: string): Promise<LoadedVoice> {
    if (!isKnownVoice(name)) {
      throw fliteError('bad_request', `unknown flite voice "${name}" (flite voices: ${Object.keys(KNOWN_VOICES).join(', ')})`, false);
    }
    const a = fliteApi();
    let lib: LibraryHandle;
    try {
      lib = loadLibrary(a.koffi, `libflite_cmu_us_${name}`);
    } catch (err) {
      throw fliteError('bad_request', `the flite voice "${name}" is not installed (libflite_cmu_us_${name}.so.1 not found)`, false, err);
    }
    const voice: unknown = lib.func(`void *register_cmu_us_${name}(const char *voxdir)`)(null);
    if (!voice) throw fliteError('unavailable', `register_cmu_us_${name} returned no voice`, false);
    const { features } = a.koffi.decode(voice, a.voiceType) as { features: unknown };
    const stretchName: unknown = a.featOwnString(features, 'duration_stretch');
    const own = a.getParamFloat(features, 'duration_stretch', -1) as number;
    const loaded: LoadedVoice = {
      name,
      voice,
      features,
      stretchName,
      defaultStretch: own > 0 ? own : 1,
      sampleRate: 8000,
    };
    // The rate is a property of the voice database; learn it from a tiny synthesis.
    const probe = await this.enqueue(loaded, 'a', undefined, new AbortController().signal);
    loaded.sampleRate = probe.sampleRate;
    return loaded;
  }

  private enqueue(voice: LoadedVoice, text: string, stretch: number | undefined, signal: AbortSignal): Promise<Wave> {
    return new Promise<Wave>((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError());
        return;
      }
      const job: Job = {
        voice,
        text,
        stretch: stretch ?? voice.defaultStretch,
        signal,
        settled: false,
        resolve: (w) => {
          if (job.settled) return;
          job.settled = true;
          signal.removeEventListener('abort', job.onAbort);
          resolve(w);
        },
        reject: (err) => {
          if (job.settled) return;
          job.settled = true;
          signal.removeEventListener('abort', job.onAbort);
          reject(err);
        },
        onAbort: () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            this.stats.dropped++;
          }
          job.reject(abortError());
        },
      };
      signal.addEventListener('abort', job.onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  private pump(): void {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    const a = fliteApi();
    const started = performance.now();
    const finish = (err: Error | null, ptr: unknown): void => {
      this.running = undefined;
      this.stats.jobs++;
      this.stats.synthMs += performance.now() - started;
      try {
        if (err) throw fliteError('internal', `flite_text_to_wave failed: ${err.message}`, true, err);
        if (!ptr) throw fliteError('bad_response', 'flite_text_to_wave returned no wave', true);
        let wave: { samples: Int16Array; sampleRate: number };
        try {
          wave = readWave(a, ptr);
        } finally {
          a.deleteWave(ptr);
        }
        if (!isSampleRate(wave.sampleRate)) {
          throw fliteError('bad_response', `voice ${job.voice.name} produced an unsupported rate of ${wave.sampleRate} Hz`, false);
        }
        job.resolve({ samples: wave.samples, sampleRate: wave.sampleRate });
      } catch (e) {
        job.reject(e instanceof Error ? e : new Error(String(e)));
      }
      this.pump();
    };
    try {
      a.featSetFloat(job.voice.features, job.voice.stretchName, job.stretch);
      (a.textToWave.async as (text: string, voice: unknown, cb: (err: Error | null, res: unknown) => void) => void)(job.text, job.voice.voice, finish);
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)), null);
    }
  }
}
