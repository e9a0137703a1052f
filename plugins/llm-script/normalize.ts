/**
 * Text normalisation for matching what a recogniser heard against what a scenario expects.
 *
 * Both sides (the caller's transcript and the scenario's example phrases) go through the same
 * `normalize()`, so matching compares like with like:
 *  - lower case, accents folded, punctuation dropped, contractions expanded ("where's",
 *    "wheres" -> "where is"; "can't", "cant" -> "can not");
 *  - hesitations dropped ("um", "uh", "erm");
 *  - number words become numerals: a compound number is one token ("twenty five" -> "25",
 *    "four hundred and two" -> "402"), a run of single digits stays one token per digit
 *    ("four two seven" -> "4 2 7"), "double five" -> "5 5", "oh" between digits -> "0";
 *  - ordinal words become ordinal numerals ("fifth" -> "5th", "twenty first" -> "21st").
 * Recogniser homophones of digits ("for", "to", "won") are *not* rewritten here: only the
 * digits slot, which knows it is listening for digits, reads them as digits.
 */

const HESITATIONS = new Set(['um', 'umm', 'uh', 'uhh', 'uhm', 'er', 'erm', 'hmm', 'hm', 'ah', 'eh', 'mm']);

/** Contractions, with and without the apostrophe (recognisers drop it). */
const CONTRACTIONS: Readonly<Record<string, string>> = {
  "can't": 'can not', cant: 'can not', cannot: 'can not',
  "won't": 'will not', wont: 'will not',
  "don't": 'do not', dont: 'do not',
  "doesn't": 'does not', doesnt: 'does not',
  "didn't": 'did not', didnt: 'did not',
  "isn't": 'is not', isnt: 'is not',
  "aren't": 'are not', arent: 'are not',
  "wasn't": 'was not', wasnt: 'was not',
  "weren't": 'were not', werent: 'were not',
  "haven't": 'have not', havent: 'have not',
  "hasn't": 'has not', hasnt: 'has not',
  "hadn't": 'had not', hadnt: 'had not',
  "couldn't": 'could not', couldnt: 'could not',
  "wouldn't": 'would not', wouldnt: 'would not',
  "shouldn't": 'should not', shouldnt: 'should not',
  "i'm": 'i am', im: 'i am',
  "i've": 'i have', ive: 'i have',
  "i'll": 'i will',
  "i'd": 'i would',
  "you're": 'you are', youre: 'you are',
  "we're": 'we are',
  "they're": 'they are', theyre: 'they are',
  "it's": 'it is', its: 'it is',
  "that's": 'that is', thats: 'that is',
  "what's": 'what is', whats: 'what is',
  "where's": 'where is', wheres: 'where is',
  "when's": 'when is', whens: 'when is',
  "who's": 'who is', whos: 'who is',
  "how's": 'how is', hows: 'how is',
  "there's": 'there is', theres: 'there is',
  "here's": 'here is', heres: 'here is',
  "let's": 'let us',
  "y'all": 'you all',
  wanna: 'want to', gonna: 'going to', gotta: 'got to', lemme: 'let me', gimme: 'give me',
};

const UNITS: Readonly<Record<string, number>> = {
  zero: 0, nought: 0, naught: 0, nil: 0,
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9,
};
const TEENS: Readonly<Record<string, number>> = {
  ten: 10, eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15,
  sixteen: 16, seventeen: 17, eighteen: 18, nineteen: 19,
};
const TENS: Readonly<Record<string, number>> = {
  twenty: 20, thirty: 30, forty: 40, fourty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90,
};
const SCALES: Readonly<Record<string, number>> = { hundred: 100, thousand: 1000, million: 1_000_000 };

const ORDINAL_UNITS: Readonly<Record<string, number>> = {
  first: 1, second: 2, third: 3, fourth: 4, fifth: 5, sixth: 6, seventh: 7, eighth: 8, ninth: 9,
};
const ORDINAL_TEENS: Readonly<Record<string, number>> = {
  tenth: 10, eleventh: 11, twelfth: 12, thirteenth: 13, fourteenth: 14, fifteenth: 15,
  sixteenth: 16, seventeenth: 17, eighteenth: 18, nineteenth: 19,
};
const ORDINAL_TENS: Readonly<Record<string, number>> = {
  twentieth: 20, thirtieth: 30, fortieth: 40, fiftieth: 50, sixtieth: 60, seventieth: 70, eightieth: 80, ninetieth: 90,
};
const REPEATERS: Readonly<Record<string, number>> = { double: 2, triple: 3, treble: 3 };

const DIGITS_RE = /^\d+$/;

/** "1" -> "1st", "22" -> "22nd", "13" -> "13th". */
export function ordinalSuffix(n: number): string {
  const mod100 = n % 100;
  if (mod100 >= 11 && mod100 <= 13) return `${n}th`;
  switch (n % 10) {
    case 1:
      return `${n}st`;
    case 2:
      return `${n}nd`;
    case 3:
      return `${n}rd`;
    default:
      return `${n}th`;
  }
}

/** Lower-case, fold accents, expand contractions, drop punctuation: the raw word list. */
export function rawWords(text: string): string[] {
  const folded = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc`´]/g, "'");
  const out: string[] = [];
  // Split on anything that is not a letter, digit or apostrophe; apostrophes are resolved per word.
  for (const piece of folded.split(/[^a-z0-9']+/)) {
    if (!piece) continue;
    const word = piece.replace(/^'+|'+$/g, '');
    if (!word) continue;
    const expanded = CONTRACTIONS[word];
    if (expanded) {
      out.push(...expanded.split(' '));
      continue;
    }
    if (word.includes("'")) {
      // Possessives and the remaining clitics: "order's" -> "order", "we'll" -> "we will".
      const m = /^([a-z0-9]+)'(s|ll|re|ve|d|m)$/.exec(word);
      if (m) {
        out.push(m[1]!);
        const tail = m[2] === 'll' ? 'will' : m[2] === 're' ? 'are' : m[2] === 've' ? 'have' : m[2] === 'd' ? 'would' : m[2] === 'm' ? 'am' : undefined;
        if (tail) out.push(tail);
        continue;
      }
      out.push(...word.split("'").filter(Boolean));
      continue;
    }
    // "5th", "427", "b12" stay as they are; letters glued to digits are split ("order427").
    const glued = /^([a-z]{2,})(\d+)$/.exec(word) ?? /^(\d+)([a-z]{3,})$/.exec(word);
    if (glued) {
      out.push(glued[1]!, glued[2]!);
      continue;
    }
    out.push(word);
  }
  return out;
}

type NumKind = 'unit' | 'teen' | 'tens' | 'hundred' | 'scale';

/**
 * Collapse number words into numerals. Returns the new token list; each output token records
 * whether it came from number words so that "oh" can be resolved against its neighbours.
 */
function collapseNumbers(words: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    // "double five", "triple oh"
    const rep = REPEATERS[w];
    if (rep !== undefined && i + 1 < words.length) {
      const next = words[i + 1]!;
      const d = UNITS[next] ?? (next === 'oh' || next === 'o' ? 0 : DIGITS_RE.test(next) && next.length === 1 ? Number(next) : undefined);
      if (d !== undefined) {
        for (let k = 0; k < rep; k++) out.push(String(d));
        i += 2;
        continue;
      }
    }
    // Ordinals, optionally preceded by a tens word ("twenty first").
    const tensWord = TENS[w];
    if (tensWord !== undefined && i + 1 < words.length && ORDINAL_UNITS[words[i + 1]!] !== undefined) {
      out.push(ordinalSuffix(tensWord + ORDINAL_UNITS[words[i + 1]!]!));
      i += 2;
      continue;
    }
    const ord = ORDINAL_UNITS[w] ?? ORDINAL_TEENS[w] ?? ORDINAL_TENS[w];
    if (ord !== undefined) {
      out.push(ordinalSuffix(ord));
      i += 1;
      continue;
    }
    const parsed = parseNumberAt(words, i);
    if (parsed) {
      out.push(String(parsed.value));
      i = parsed.end;
      continue;
    }
    out.push(w);
    i += 1;
  }
  return out;
}

function numberKind(w: string): { kind: NumKind; value: number } | undefined {
  if (UNITS[w] !== undefined) return { kind: 'unit', value: UNITS[w] };
  if (TEENS[w] !== undefined) return { kind: 'teen', value: TEENS[w] };
  if (TENS[w] !== undefined) return { kind: 'tens', value: TENS[w] };
  if (w === 'hundred') return { kind: 'hundred', value: 100 };
  if (SCALES[w] !== undefined) return { kind: 'scale', value: SCALES[w] };
  return undefined;
}

/**
 * Parse one number starting at `start`. A unit after a unit starts a new number ("four two"
 * is two numbers), a unit after a tens word continues it ("twenty five"), anything after a
 * scale word continues it ("two thousand and six").
 */
function parseNumberAt(words: readonly string[], start: number): { value: number; end: number } | undefined {
  let total = 0;
  let current = 0;
  let last: NumKind | 'digits' | undefined;
  let i = start;
  let consumed = 0;
  // "a hundred", "a thousand"
  if (words[i] === 'a' && (words[i + 1] === 'hundred' || words[i + 1] === 'thousand')) {
    current = 1;
    last = 'unit';
    i += 1;
  } else if (DIGITS_RE.test(words[i] ?? '') && (words[i + 1] === 'hundred' || SCALES[words[i + 1] ?? ''] !== undefined)) {
    // "5 thousand", "3 hundred" as some recognisers write them
    current = Number(words[i]);
    last = 'digits';
    i += 1;
    consumed += 1;
  }
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (w === 'and' && (last === 'hundred' || last === 'scale')) {
      const nk = numberKind(words[i + 1] ?? '');
      if (nk && (nk.kind === 'unit' || nk.kind === 'teen' || nk.kind === 'tens')) continue;
      break;
    }
    const nk = numberKind(w);
    if (!nk) break;
    let ok: boolean;
    switch (nk.kind) {
      case 'unit':
        ok = last === undefined || last === 'hundred' || last === 'scale' || (last === 'tens' && nk.value !== 0);
        if (ok) current += nk.value;
        break;
      case 'teen':
      case 'tens':
        ok = last === undefined || last === 'hundred' || last === 'scale';
        if (ok) current += nk.value;
        break;
      case 'hundred':
        ok = (last === 'unit' || last === 'teen' || last === 'tens' || last === 'digits') && current > 0 && current < 100;
        if (ok) current *= 100;
        break;
      case 'scale':
        ok = last !== undefined && last !== 'scale' && total + current > 0;
        if (ok) {
          total = (total + current) * nk.value;
          current = 0;
        }
        break;
    }
    if (!ok) break;
    last = nk.kind;
    consumed += 1;
  }
  if (consumed === 0 || last === 'digits') return undefined;
  return { value: total + current, end: i };
}

/** "oh" / "o" next to a digit is a zero ("four oh seven"). */
function resolveOh(tokens: string[]): string[] {
  const isDigitish = (t: string | undefined): boolean => t !== undefined && DIGITS_RE.test(t);
  const out = tokens.slice();
  // Two passes so "oh oh seven" resolves right to left.
  for (let pass = 0; pass < 2; pass++) {
    for (let i = out.length - 1; i >= 0; i--) {
      const t = out[i]!;
      if ((t === 'oh' || t === 'o') && (isDigitish(out[i - 1]) || isDigitish(out[i + 1]))) out[i] = '0';
    }
  }
  return out;
}

/** The normalised token list of `text` (see the module comment). */
export function normalize(text: string): string[] {
  const words = rawWords(text).filter((w) => !HESITATIONS.has(w));
  return resolveOh(collapseNumbers(words));
}

/** Normalised tokens joined by single spaces. */
export function normalizeToString(text: string): string {
  return normalize(text).join(' ');
}

// --- stems, phonetic keys, edit distance: the token similarity used by every matcher ----------

/**
 * A small memo for pure per-word functions: scenario vocabularies are small and callers repeat
 * themselves, so nearly every lookup hits. Cleared wholesale when full (no unbounded growth).
 */
class Memo<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string, compute: () => V): V {
    const hit = this.map.get(key);
    if (hit !== undefined) return hit;
    const v = compute();
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, v);
    return v;
  }
}

const stemMemo = new Memo<string>(20_000);
const phoneticMemo = new Memo<string>(20_000);
const similarityMemo = new Memo<number>(100_000);

/** A light English stemmer: enough to equate "cancel", "cancelled", "cancelling", "cancellation". */
export function stem(word: string): string {
  return stemMemo.get(word, () => computeStem(word));
}

function computeStem(word: string): string {
  if (word.length <= 3 || DIGITS_RE.test(word)) return word;
  let w = word;
  const rules: [RegExp, string][] = [
    [/ations?$/, ''],
    [/ments?$/, ''],
    [/ings?$/, ''],
    [/ies$/, 'y'],
    [/ied$/, 'y'],
    [/(?<=[^aeiou])ed$/, ''],
    [/(?<=[sxz]|ch|sh)es$/, ''],
    [/(?<![siu])s$/, ''],
    [/ly$/, ''],
  ];
  for (const [re, rep] of rules) {
    const next = w.replace(re, rep);
    if (next !== w && next.length >= 3) {
      w = next;
      break;
    }
  }
  // "delivery" -> "deliver", "cancell" -> "cancel"
  if (w.length > 5 && w.endsWith('y') && !/[aeiou]y$/.test(w)) w = w.slice(0, -1);
  if (/([bdfgklmnprt])\1$/.test(w) && w.length > 4) w = w.slice(0, -1);
  return w;
}

/** A simplified Metaphone-like key: words that sound alike ("adress", "address") share it. */
export function phoneticKey(word: string): string {
  return phoneticMemo.get(word, () => computePhoneticKey(word));
}

function computePhoneticKey(word: string): string {
  let w = word.replace(/[^a-z]/g, '');
  if (!w) return '';
  w = w
    .replace(/^kn/, 'n')
    .replace(/^wr/, 'r')
    .replace(/^ps/, 's')
    .replace(/^x/, 's')
    .replace(/ph/g, 'f')
    .replace(/wh/g, 'w')
    .replace(/tch/g, 'ch')
    .replace(/sch/g, 'sk')
    .replace(/ck/g, 'k')
    .replace(/dg/g, 'j')
    .replace(/(?<!^)gh/g, '')
    .replace(/c(?=[eiy])/g, 's')
    .replace(/c/g, 'k')
    .replace(/q/g, 'k')
    .replace(/x/g, 'ks')
    .replace(/z/g, 's');
  const first = /^[aeiouy]/.test(w) ? 'a' : w[0]!;
  const rest = w
    .slice(1)
    .replace(/[aeiouyhw]/g, '')
    .replace(/(.)\1+/g, '$1');
  return (first + rest).replace(/(.)\1+/g, '$1');
}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const n = a.length;
  const m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  let cur = new Array<number>(m + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    let rowMin = cur[0];
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m]!;
}

/**
 * Similarity of two normalised tokens in 0..1: 1 equal, 0.9 same stem, up to ~0.9 for a
 * small edit distance (one edit from 5 letters, two from 8), 0.8 for the same phonetic key.
 * Numbers only ever match exactly.
 */
export function tokenSimilarity(a: string, b: string): number {
  if (a === b) return 1;
  if (/^\d/.test(a) || /^\d/.test(b)) return 0;
  if (Math.min(a.length, b.length) <= 2) return 0;
  // Symmetric: one memo entry per unordered pair.
  return similarityMemo.get(a < b ? `${a} ${b}` : `${b} ${a}`, () => computeSimilarity(a, b));
}

function computeSimilarity(a: string, b: string): number {
  const short = Math.min(a.length, b.length);
  // Stems and edits keep the first letter; only the phonetic key can join words that start
  // differently ("write"/"right").
  if (a[0] !== b[0]) {
    const ka = phoneticKey(a);
    return ka.length >= 2 && ka === phoneticKey(b) && Math.abs(a.length - b.length) <= 2 ? 0.8 : 0;
  }
  let best = 0;
  const sa = stem(a);
  const sb = stem(b);
  if (sa === sb) best = 0.9;
  // Edits only between words that start alike: typos rarely hit the first letter, and
  // "border" is not "order".
  const allowed = a[0] !== b[0] ? 0 : short >= 8 ? 2 : short >= 5 ? 1 : 0;
  if (allowed > 0 && Math.abs(a.length - b.length) <= allowed + 3) {
    const d = Math.min(editDistance(a, b, allowed), editDistance(sa, sb, allowed));
    if (d <= allowed) best = Math.max(best, Math.min(0.9, 1 - d / Math.max(a.length, b.length)));
  }
  if (best < 0.8) {
    const ka = phoneticKey(a);
    if (ka.length >= 2 && ka === phoneticKey(b) && Math.abs(a.length - b.length) <= 2) best = 0.8;
  }
  return best;
}
