/**
 * Slot extraction: the value of a typed slot in what the caller said, or undefined.
 *
 * - number: the first number ("twenty five" -> 25), within min/max;
 * - digits: a spoken digit string ("four two seven", "four twenty seven", "double five one",
 *   "for to seven" as a recogniser may hear it) -> "427", within minLength/maxLength;
 * - date: an ISO date (see dates.ts), relative to the injected clock;
 * - name: a person's name after "my name is", "this is", "I am"... or a short bare answer;
 * - text: the utterance with lead-ins stripped ("the new address is ..."), at least minWords;
 * - enum: the canonical value whose synonym phrase was heard (fuzzy).
 */
import { parseSpokenDate, type CalendarDate } from './dates.js';
import { findPhrase, isStopword } from './match.js';
import { normalize } from './normalize.js';
import type { SlotSpec } from './scenario.js';

export type SlotValue = string | number;

export interface ExtractContext {
  today: CalendarDate;
}

const DIGITS_RE = /^\d+$/;

/** What a recogniser writes for a digit word it misheard, read as digits only in a digit run. */
const DIGIT_HOMOPHONES: Readonly<Record<string, string>> = {
  for: '4', fore: '4', to: '2', too: '2', won: '1', ate: '8', tree: '3', free: '3', fife: '5', niner: '9', nein: '9',
  oh: '0', o: '0',
};

/** Candidate digit strings in utterance order: strict runs of numerals, then runs that admit homophones. */
function digitRuns(tokens: readonly string[]): { strict: string[]; loose: string[] } {
  const strict: string[] = [];
  const loose: string[] = [];
  let cur = '';
  for (const t of tokens) {
    if (DIGITS_RE.test(t)) cur += t;
    else {
      if (cur) strict.push(cur);
      cur = '';
    }
  }
  if (cur) strict.push(cur);
  let run = '';
  let real = 0;
  const flush = (): void => {
    if (run && real > 0) loose.push(run);
    run = '';
    real = 0;
  };
  for (const t of tokens) {
    if (DIGITS_RE.test(t)) {
      run += t;
      real++;
    } else if (DIGIT_HOMOPHONES[t] !== undefined) run += DIGIT_HOMOPHONES[t];
    else flush();
  }
  flush();
  return { strict, loose };
}

export function extractDigits(tokens: readonly string[], minLength = 1, maxLength = 32): string | undefined {
  const { strict, loose } = digitRuns(tokens);
  const fits = (s: string): boolean => s.length >= minLength && s.length <= maxLength;
  const longest = (list: readonly string[]): string | undefined =>
    list.filter(fits).reduce<string | undefined>((best, s) => (best === undefined || s.length > best.length ? s : best), undefined);
  return longest(strict) ?? longest(loose);
}

export function extractNumber(tokens: readonly string[], min?: number, max?: number): number | undefined {
  for (const t of tokens) {
    if (!DIGITS_RE.test(t)) continue;
    const n = Number(t);
    if (min !== undefined && n < min) continue;
    if (max !== undefined && n > max) continue;
    return n;
  }
  return undefined;
}

const NAME_LEADS = [['my', 'name', 'is'], ['name', 'is'], ['this', 'is'], ['i', 'am'], ['it', 'is'], ['call', 'me'], ['the', 'name', 'is'], ['speaking', 'to']];
const NAME_STOP = new Set(['and', 'calling', 'here', 'speaking', 'please', 'thanks', 'thank', 'from', 'about', 'i', 'my', 'with', 'but']);
const NOT_NAMES = new Set(['yes', 'no', 'yeah', 'nope', 'okay', 'ok', 'sure', 'hello', 'hi', 'sorry', 'what', 'who', 'operator', 'human', 'agent']);

function capitalise(words: readonly string[]): string {
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ');
}

export function extractName(tokens: readonly string[]): string | undefined {
  for (const lead of NAME_LEADS) {
    for (let i = 0; i + lead.length < tokens.length; i++) {
      if (!lead.every((w, k) => tokens[i + k] === w)) continue;
      const words: string[] = [];
      for (let j = i + lead.length; j < tokens.length && words.length < 3; j++) {
        const t = tokens[j]!;
        if (NAME_STOP.has(t) || /\d/.test(t)) break;
        if (t === 'a' || t === 'the') continue;
        words.push(t);
      }
      if (words.length > 0 && !words.every((w) => NOT_NAMES.has(w) || isStopword(w))) return capitalise(words);
    }
  }
  const bare = tokens.filter((t) => !NOT_NAMES.has(t) && !isStopword(t) && !/\d/.test(t));
  if (tokens.length <= 3 && bare.length >= 1 && bare.length <= 3) return capitalise(bare);
  return undefined;
}

/** Lead-ins dropped before a free-text answer, besides the slot's own `stripPrefixes`. */
const TEXT_LEAD_WORDS = new Set(['yes', 'yeah', 'yep', 'ok', 'okay', 'sure', 'so', 'well', 'right', 'alright', 'please']);

export function extractText(tokens: readonly string[], prefixes: readonly (readonly string[])[], minWords = 1): string | undefined {
  let start = 0;
  const skipLeads = (): void => {
    while (start < tokens.length && TEXT_LEAD_WORDS.has(tokens[start]!)) start++;
  };
  skipLeads();
  // Longest prefix that matches exactly at the current start.
  const sorted = [...prefixes].sort((a, b) => b.length - a.length);
  for (const p of sorted) {
    if (p.length > 0 && p.every((w, k) => tokens[start + k] === w)) {
      start += p.length;
      break;
    }
  }
  skipLeads();
  const words = tokens.slice(start);
  return words.length >= minWords ? words.join(' ') : undefined;
}

export function extractEnum(tokens: readonly string[], values: Readonly<Record<string, readonly (readonly string[])[]>>): string | undefined {
  let best: { value: string; score: number; len: number } | undefined;
  for (const [value, phrases] of Object.entries(values)) {
    for (const p of phrases) {
      const m = findPhrase(tokens, p);
      if (!m) continue;
      if (!best || m.score > best.score || (m.score === best.score && p.length > best.len)) best = { value, score: m.score, len: p.length };
    }
  }
  return best?.value;
}

/** A slot spec compiled once: normalised prefixes and synonyms. */
export interface CompiledSlot {
  name: string;
  spec: SlotSpec;
  prefixes: string[][];
  synonyms: Record<string, string[][]>;
}

export function compileSlot(name: string, spec: SlotSpec): CompiledSlot {
  const prefixes = spec.type === 'text' ? spec.stripPrefixes.map((p) => normalize(p)).filter((p) => p.length > 0) : [];
  const synonyms: Record<string, string[][]> = {};
  if (spec.type === 'enum') {
    for (const [value, syns] of Object.entries(spec.values)) {
      synonyms[value] = [value, ...syns].map((s) => normalize(s)).filter((p) => p.length > 0);
    }
  }
  return { name, spec, prefixes, synonyms };
}

/** The slot's value in an utterance (`tokens` = normalize(raw)), or undefined. */
export function extractSlot(slot: CompiledSlot, raw: string, tokens: readonly string[], ctx: ExtractContext): SlotValue | undefined {
  const spec = slot.spec;
  switch (spec.type) {
    case 'number':
      return extractNumber(tokens, spec.min, spec.max);
    case 'digits':
      return extractDigits(tokens, spec.minLength, spec.maxLength);
    case 'date':
      return parseSpokenDate(raw, ctx.today, spec.prefer);
    case 'name':
      return extractName(tokens);
    case 'text':
      return extractText(tokens, slot.prefixes, spec.minWords);
    case 'enum':
      return extractEnum(tokens, slot.synonyms);
  }
}
