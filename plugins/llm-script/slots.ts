/**
 * Slot extraction: the value of a typed slot in what the caller said, or undefined.
 *
 * - number: the first number ("twenty five" -> 25), within min/max;
 * - digits: a spoken digit string ("four two seven", "four twenty seven", "double five one",
 *   "for to seven" as a recogniser may hear it) -> "427", within minLength/maxLength;
 * - date: an ISO date (see dates.ts), relative to the injected clock;
 * - time: a time of day "HH:MM" ("ten thirty", "half past two", "2 p m"; see dates.ts);
 * - name: a person's name after "my name is", "this is", "I am"... or a short bare answer;
 * - text: the utterance with lead-ins stripped ("the new address is ..."), at least minWords;
 * - enum: the canonical value whose synonym phrase was heard (fuzzy).
 *
 * A state may offer `choices` (a list from a tool result): the caller picks by position ("the
 * first one", "the last one", "the earliest") or says a value that is in the list.
 */
import { parseSpokenDate, parseSpokenTime, type CalendarDate } from './dates.js';
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
    case 'time':
      return parseSpokenTime(raw, { earliest: spec.earliest });
    case 'name':
      return extractName(tokens);
    case 'text':
      return extractText(tokens, slot.prefixes, spec.minWords);
    case 'enum':
      return extractEnum(tokens, slot.synonyms);
  }
}

// --- choices -------------------------------------------------------------------------------

const ORDINAL_RE = /^(\d{1,2})(st|nd|rd|th)$/;
const FIRST_WORDS = new Set(['earliest', 'soonest', 'former']);
const LAST_WORDS = new Set(['last', 'latest', 'final', 'latter']);
const MONTH_WORDS = new Set(['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december']);

/**
 * Which of `count` offered items the caller picks by position, as an index: "the first one",
 * "the second", "number two", "option 3", "the last one", "the earliest", "the latest".
 * An ordinal that is part of a date ("the 2nd of May") is not a pick.
 */
export function ordinalPick(tokens: readonly string[], count: number): number | undefined {
  if (count <= 0) return undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const m = ORDINAL_RE.exec(t);
    if (m) {
      const after = tokens[i + 1] === 'of' ? tokens[i + 2] : tokens[i + 1];
      if (after !== undefined && MONTH_WORDS.has(after)) continue;
      const n = Number(m[1]);
      if (n >= 1 && n <= count) return n - 1;
      continue;
    }
    if ((t === 'number' || t === 'option') && /^\d{1,2}$/.test(tokens[i + 1] ?? '')) {
      const n = Number(tokens[i + 1]);
      if (n >= 1 && n <= count) return n - 1;
    }
    if (FIRST_WORDS.has(t)) return 0;
    if (LAST_WORDS.has(t)) return count - 1;
  }
  return undefined;
}

function sameValue(a: SlotValue, b: string): boolean {
  if (typeof a === 'number') return String(a) === b.trim();
  return a.trim().toLowerCase() === b.trim().toLowerCase() || normalize(a).join(' ') === normalize(b).join(' ');
}

/**
 * The slot's value where the answer must come from `choices`: a pick by position, or a value
 * extracted as usual that is one of them (the choice's own spelling is kept). Without choices
 * (or with an empty list) this is extractSlot.
 */
export function extractChoice(
  slot: CompiledSlot,
  raw: string,
  tokens: readonly string[],
  ctx: ExtractContext,
  choices: readonly string[] | undefined,
): { value: SlotValue; picked: boolean } | { value: undefined; rejected?: SlotValue } {
  if (!choices || choices.length === 0) {
    const v = extractSlot(slot, raw, tokens, ctx);
    return v === undefined ? { value: undefined } : { value: v, picked: false };
  }
  const pick = ordinalPick(tokens, choices.length);
  if (pick !== undefined) return { value: choices[pick]!, picked: true };
  const v = extractSlot(slot, raw, tokens, ctx);
  if (v === undefined) return { value: undefined };
  const match = choices.find((c) => sameValue(v, c));
  return match !== undefined ? { value: match, picked: false } : { value: undefined, rejected: v };
}

// --- recognition hints -------------------------------------------------------------------------

const HOUR_WORDS = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];
const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const ORDINAL_DAYS = [
  'first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth', 'tenth', 'eleventh', 'twelfth',
  'thirteenth', 'fourteenth', 'fifteenth', 'sixteenth', 'seventeenth', 'eighteenth', 'nineteenth', 'twentieth',
  'twenty first', 'twenty second', 'twenty third', 'twenty fourth', 'twenty fifth', 'twenty sixth', 'twenty seventh',
  'twenty eighth', 'twenty ninth', 'thirtieth', 'thirty first',
];
const WEEKDAY_NAMES = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
// Ordinals only after "the" ("the fifth of may"): a bare "first" as a whole phrase of the
// grammar out-competes "Thursday" in the recogniser.
const DATE_PHRASES = [
  'today', 'tomorrow', 'the day after tomorrow', 'next week', 'in a week',
  ...WEEKDAY_NAMES, ...WEEKDAY_NAMES.map((d) => `on ${d}`), ...WEEKDAY_NAMES.map((d) => `next ${d}`), ...WEEKDAY_NAMES.map((d) => `this ${d}`),
  ...MONTH_NAMES, ...MONTH_NAMES.map((m) => `of ${m}`),
  ...ORDINAL_DAYS.map((o) => `the ${o}`), ...ORDINAL_DAYS.map((o) => `on the ${o}`),
];
const TIME_PHRASES = [
  ...HOUR_WORDS, ...HOUR_WORDS.map((h) => `${h} o'clock`), ...HOUR_WORDS.map((h) => `at ${h}`),
  'fifteen', 'thirty', 'forty five', 'oh five', 'half past', 'quarter past', 'quarter to',
  'a m', 'p m', 'in the morning', 'in the afternoon', 'noon', 'midday',
];
/** What callers say to pick from offered choices. */
export const CHOICE_PHRASES: readonly string[] = [
  'the first one', 'the second one', 'the third one', 'the last one', 'the first', 'the second', 'the third', 'the last',
  'the earliest', 'the latest', 'the earliest one', 'the latest one', 'number one', 'number two', 'number three',
];

/**
 * Words a caller is expected to use for a slot, as recognition hints for grammar-based
 * recognisers: enum values and synonyms, the vocabulary of dates and times, a text slot's
 * lead-ins, a name's lead-ins ("my name is"). Digits need none (grammars accept spoken digits);
 * names and free text themselves cannot be listed.
 */
export function slotPhrases(spec: SlotSpec): string[] {
  switch (spec.type) {
    case 'enum':
      return Object.entries(spec.values).flatMap(([v, syn]) => [v, ...syn]);
    case 'date':
      return [...DATE_PHRASES];
    case 'time':
      return [...TIME_PHRASES];
    case 'text':
      return [...spec.stripPrefixes];
    case 'name':
      return ['my name is', 'this is', 'it is', 'i am'];
    default:
      return [];
  }
}
