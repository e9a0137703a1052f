/**
 * The flite voices this machine has, for config validation (at `config check` time, before
 * anything starts) and for per-call voice overrides.
 *
 * Debian packages five general voices as shared libraries (libflite_cmu_us_<name>.so.1,
 * each exporting register_cmu_us_<name>) and links all of them into /usr/bin/flite. The
 * limited-domain "awb_time" voice (it can only say clock times) is deliberately not offered.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

let koffiModule: typeof Koffi | undefined;

/**
 * koffi, loaded on first use rather than at import: mode "process" must keep working (and
 * `config check` must keep reporting) on a machine where koffi's native module cannot load.
 */
export function loadKoffi(): typeof Koffi {
  if (!koffiModule) {
    try {
      koffiModule = createRequire(import.meta.url)('koffi') as typeof Koffi;
    } catch (err) {
      throw new Error(`the koffi FFI module cannot be loaded (${(err as Error).message}); use mode: process`, { cause: err });
    }
  }
  return koffiModule;
}

export const KNOWN_VOICES: Readonly<Record<string, string>> = {
  kal: 'male US English, diphone, 8 kHz (telephone rate, cheapest)',
  kal16: 'male US English, diphone, 16 kHz',
  slt: 'female US English, clustergen, 16 kHz',
  awb: 'male Scottish English, clustergen, 16 kHz',
  rms: 'male US English, clustergen, 16 kHz',
};

export function isKnownVoice(name: string): boolean {
  return Object.hasOwn(KNOWN_VOICES, name);
}

/** "cmu_us_kal", "KAL", " kal " -> "kal". */
export function normalizeVoiceName(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/^cmu_us_/, '');
}

/** Names dlopen tries for a library, most specific first (runtime package, then -dev). */
export function libraryCandidates(base: string): string[] {
  return [`${base}.so.1`, `${base}.so`];
}

export type VoiceListing = { ok: true; voices: string[] } | { ok: false; problem: string; hint: string };

const cache = new Map<string, VoiceListing>();

/**
 * Voices available to a mode. ffi: the voice libraries dlopen can find (loading them is
 * cheap: voice data is const and lives in the libraries' text segment). process: what
 * `<binary> -lv` lists. Synchronous, because zod refinements are; cached per process.
 */
export function availableVoices(mode: 'ffi' | 'process', binary = 'flite'): VoiceListing {
  const key = `${mode}\u0000${binary}`;
  let listing = cache.get(key);
  if (!listing) {
    listing = mode === 'ffi' ? probeLibraries() : probeBinary(binary);
    cache.set(key, listing);
  }
  return listing;
}

/** Forget cached listings (tests; a package installed while running). */
export function clearVoiceCache(): void {
  cache.clear();
}

function tryLoad(koffi: typeof Koffi, base: string): boolean {
  for (const name of libraryCandidates(base)) {
    try {
      koffi.load(name);
      return true;
    } catch {
      // try the next name
    }
  }
  return false;
}

function probeLibraries(): VoiceListing {
  let koffi: typeof Koffi;
  try {
    koffi = loadKoffi();
  } catch (err) {
    return { ok: false, problem: (err as Error).message, hint: 'reinstall node_modules (npm ci) or set mode: process' };
  }
  if (!tryLoad(koffi, 'libflite')) {
    return {
      ok: false,
      problem: 'libflite is not installed (dlopen could not find libflite.so.1)',
      hint: 'install the Debian package libflite1 (apt-get install libflite1), or set mode: process with the flite binary',
    };
  }
  const voices = Object.keys(KNOWN_VOICES).filter((v) => tryLoad(koffi, `libflite_cmu_us_${v}`));
  if (voices.length === 0) {
    return { ok: false, problem: 'libflite is installed but no voice library is', hint: 'install libflite1, which ships the cmu_us_* voices' };
  }
  return { ok: true, voices };
}

function probeBinary(binary: string): VoiceListing {
  let out: string;
  try {
    out = execFileSync(binary, ['-lv'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return {
      ok: false,
      problem: code === 'ENOENT' ? `the flite binary "${binary}" was not found` : `"${binary} -lv" failed: ${(err as Error).message}`,
      hint: 'install the Debian package flite (apt-get install flite), or point "binary" at it',
    };
  }
  const m = /Voices available:(.*)/.exec(out);
  if (!m) return { ok: false, problem: `"${binary} -lv" printed no voice list`, hint: 'is this really flite 2.x?' };
  const listed = (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const voices = listed.filter(isKnownVoice);
  if (voices.length === 0) {
    return { ok: false, problem: `flite lists no general-purpose voice (it has: ${listed.join(', ') || 'none'})`, hint: 'install the Debian flite package' };
  }
  return { ok: true, voices };
}
