/**
 * espeak-ng's voices, and how a call's BCP-47 language becomes one of them.
 *
 * `espeak-ng --voices` prints one voice per line:
 *   Pty Language Age/Gender VoiceName File Other Languages
 *    2  en-us    --/M       English_(America) gmw/en-US (en 3)
 *    5  uk       --/M       Ukrainian          zle/uk
 * The File column is the one unique identifier (two voices share the language "yue"), so
 * it is what `-v` receives. A language is matched the way espeak-ng itself ranks voices:
 * exact language first, then the tag with its last subtag dropped ("en-AU" -> "en"), each
 * time taking the best priority (lowest number) among voices whose language or "other
 * languages" entry matches: en-US -> gmw/en-US, uk-UA -> zle/uk, ru-RU -> zle/ru,
 * en-AU -> gmw/en (en-gb has priority 2 for "en"), zh-CN -> sit/cmn, no -> gmq/nb.
 */
import { execFileSync } from 'node:child_process';

export interface EspeakVoice {
  priority: number;
  /** The voice's own language code, lowercase ("en-us"). */
  language: string;
  gender: string;
  /** Display name, underscores for spaces ("English_(America)"). */
  name: string;
  /** Path under espeak-ng-data/voices: the identifier handed to -v ("gmw/en-US"). */
  file: string;
  /** Further languages the voice serves, with its priority for each. */
  others: { language: string; priority: number }[];
}

export interface VoiceInventory {
  voices: EspeakVoice[];
  /** Voice variants: display name ("female3") and file name, which -v takes ("f3"). */
  variants: { name: string; file: string }[];
}

const LINE = /^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/;

/** Parse `espeak-ng --voices` (or `--voices=variant`) output. */
export function parseVoiceList(text: string): EspeakVoice[] {
  const out: EspeakVoice[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue; // header, blank lines
    const others = [...(m[6] ?? '').matchAll(/\(([^\s()]+)\s+(\d+)\)/g)].map((o) => ({ language: (o[1] as string).toLowerCase(), priority: Number(o[2]) }));
    out.push({
      priority: Number(m[1]),
      language: (m[2] as string).toLowerCase(),
      gender: m[3] as string,
      name: m[4] as string,
      file: m[5] as string,
      others,
    });
  }
  return out;
}

/** Latin American regions espeak-ng's "es-419" (Latin American Spanish) serves. */
const LATAM = new Set(['419', 'ar', 'bo', 'cl', 'co', 'cr', 'cu', 'do', 'ec', 'gt', 'hn', 'mx', 'ni', 'pa', 'pe', 'pr', 'py', 'sv', 'us', 'uy', 've']);

/** Tags to try for `tag`, most specific first: "en-Latn-US" -> en-latn-us, en-latn, en. */
export function languageCandidates(tag: string): string[] {
  const parts = tag.trim().replace(/_/g, '-').toLowerCase().split('-').filter(Boolean);
  const out: string[] = [];
  for (let n = parts.length; n >= 1; n--) out.push(parts.slice(0, n).join('-'));
  // Region subtag without the script: "sr-Latn-RS" also tries "sr-rs"; Spanish of the Americas.
  const region = parts.slice(1).find((p) => /^([a-z]{2}|\d{3})$/.test(p));
  if (region && parts.length > 2) out.splice(out.length - 1, 0, `${parts[0]}-${region}`);
  if (parts[0] === 'es' && region && LATAM.has(region)) out.splice(out.length - 1, 0, 'es-419');
  return [...new Set(out)];
}

/** The best voice for a BCP-47 tag, or undefined when espeak-ng has none for it. */
export function voiceForLanguage(voices: readonly EspeakVoice[], tag: string): EspeakVoice | undefined {
  for (const candidate of languageCandidates(tag)) {
    let best: { voice: EspeakVoice; priority: number; own: boolean } | undefined;
    for (const v of voices) {
      if (v.language === 'variant') continue;
      const own = v.language === candidate;
      const other = v.others.find((o) => o.language === candidate);
      if (!own && !other) continue;
      const priority = own ? v.priority : (other as { priority: number }).priority;
      if (!best || priority < best.priority || (priority === best.priority && own && !best.own)) best = { voice: v, priority, own };
    }
    if (best) return best.voice;
  }
  return undefined;
}

export interface ResolvedVoice {
  /** What -v receives: "<file>[+<variant>]". */
  spec: string;
  voice: EspeakVoice;
  variant?: string | undefined;
}

/**
 * A configured voice: a language code ("uk", "en-us"), a file ("gmw/en-US") or a display
 * name ("English_(America)"), optionally "+variant" ("en-us+f3"). Case-insensitive.
 * Returns a reason string when it is not a voice this espeak-ng has.
 */
export function resolveVoiceSpec(inv: VoiceInventory, spec: string, defaultVariant?: string): ResolvedVoice | string {
  const [rawBase = '', rawVariant, ...extra] = spec.trim().split('+');
  if (extra.length > 0 || rawBase === '') return `"${spec}" is not a voice (expected "<voice>" or "<voice>+<variant>")`;
  const base = rawBase.toLowerCase();
  const voice =
    inv.voices.find((v) => v.language !== 'variant' && v.file.toLowerCase() === base) ??
    inv.voices.find((v) => v.language !== 'variant' && v.language === base) ??
    inv.voices.find((v) => v.language !== 'variant' && v.name.toLowerCase() === base);
  if (!voice) return `espeak-ng has no voice "${rawBase}"`;
  const variantName = rawVariant ?? defaultVariant;
  let variant: string | undefined;
  if (variantName !== undefined) {
    variant = findVariant(inv, variantName);
    if (!variant) return variantProblem(inv, variantName);
  }
  return { spec: variant ? `${voice.file}+${variant}` : voice.file, voice, variant };
}

/** A variant by file ("f3") or display name ("female3"), case-insensitively: its file name. */
export function findVariant(inv: VoiceInventory, name: string): string | undefined {
  const n = name.trim().toLowerCase();
  return (inv.variants.find((v) => v.file.toLowerCase() === n) ?? inv.variants.find((v) => v.name.toLowerCase() === n))?.file;
}

export function variantProblem(inv: VoiceInventory, name: string): string {
  const some = inv.variants.slice(0, 8).map((v) => v.file);
  return `espeak-ng has no voice variant "${name}" (it has ${inv.variants.length}, e.g. ${some.join(', ')})`;
}

export type InventoryListing = { ok: true; inventory: VoiceInventory } | { ok: false; problem: string; hint: string };

const cache = new Map<string, InventoryListing>();

/** The voices and variants of `binary`; synchronous (zod refinements are), cached per binary. */
export function voiceInventory(binary = 'espeak-ng'): InventoryListing {
  let listing = cache.get(binary);
  if (!listing) {
    listing = probe(binary);
    cache.set(binary, listing);
  }
  return listing;
}

function probe(binary: string): InventoryListing {
  const run = (arg: string): string => execFileSync(binary, [arg], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const voices = parseVoiceList(run('--voices'));
    const variants = parseVoiceList(run('--voices=variant'))
      .filter((v) => v.file.startsWith('!v/'))
      .map((v) => ({ name: v.name, file: v.file.slice(3) }));
    if (voices.length === 0) return { ok: false, problem: `"${binary} --voices" listed no voices`, hint: 'reinstall espeak-ng-data' };
    return { ok: true, inventory: { voices, variants } };
  } catch (err) {
    const missing = (err as { code?: unknown }).code === 'ENOENT';
    return {
      ok: false,
      problem: missing ? `the espeak-ng binary "${binary}" was not found` : `"${binary} --voices" failed: ${(err as Error).message}`,
      hint: 'install the Debian package espeak-ng (apt-get install espeak-ng), or point "binary" at it',
    };
  }
}
