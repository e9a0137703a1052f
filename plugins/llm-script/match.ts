/**
 * Fuzzy matching of a caller's (normalised) words against a scenario's phrases.
 *
 * - `findPhrase`: is a short phrase ("real person", "opening hours") in the utterance, allowing
 *   per-token fuzziness (typos, recogniser homophones, stems) and one stray word between its
 *   words ("a real live person").
 * - `IntentMatcher`: scores every intent (and FAQ entry) by the best of its example phrases,
 *   with a soft, IDF-weighted recall/precision measure (recall weighted higher, since the
 *   recogniser drops words more often than it adds them), and by its keywords.
 * - `detectYesNo`: affirmative / negative answers, with negation ("not right") handled.
 */
import { normalize, stem, tokenSimilarity } from './normalize.js';

/** Words that carry little meaning in an utterance: they count, but little. */
const STOPWORDS = new Set([
  'a', 'an', 'the', 'i', 'me', 'my', 'mine', 'to', 'is', 'it', 'of', 'and', 'or', 'in', 'on', 'at', 'for', 'with',
  'this', 'that', 'these', 'those', 'be', 'am', 'are', 'was', 'were', 'been', 'do', 'does', 'did', 'have', 'has',
  'had', 'please', 'can', 'could', 'would', 'will', 'shall', 'should', 'you', 'your', 'we', 'our', 'us', 'so',
  'just', 'like', 'want', 'wanted', 'need', 'hi', 'hello', 'hey', 'yeah', 'okay', 'ok', 'well', 'about', 'some',
  'from', 'by', 'if', 'then', 'there', 'here', 'get', 'got', 'know', 'id', 'also', 'really', 'very', 'thanks',
  'thank', 'oh', 'right', 'now', 'one', 'any', 'up', 'out', 'again',
]);

const STOPWORD_WEIGHT = 0.15;
/** Weight of an utterance word the scenario never uses (noise, or a word we do not know). */
const UNKNOWN_WEIGHT = 0.6;

export function isStopword(token: string): boolean {
  return STOPWORDS.has(token);
}

export interface PhraseMatch {
  /** Mean token similarity over the phrase, 0..1. */
  score: number;
  /** Index of the utterance token where the phrase starts, and one past where it ends. */
  start: number;
  end: number;
}

/** Minimum similarity for a token to count as "the same word" inside a phrase. */
export const TOKEN_MATCH_MIN = 0.78;

/**
 * Best occurrence of `phrase` (normalised tokens) in `tokens`: every phrase token must match
 * an utterance token in order, with at most `maxGap` unmatched tokens between consecutive ones.
 */
export function findPhrase(tokens: readonly string[], phrase: readonly string[], maxGap = 1): PhraseMatch | undefined {
  if (phrase.length === 0 || tokens.length === 0) return undefined;
  let best: PhraseMatch | undefined;
  for (let start = 0; start < tokens.length; start++) {
    const first = tokenSimilarity(tokens[start]!, phrase[0]!);
    if (first < TOKEN_MATCH_MIN) continue;
    let sum = first;
    let pos = start;
    let ok = true;
    for (let k = 1; k < phrase.length; k++) {
      let found = -1;
      let foundSim = 0;
      for (let j = pos + 1; j <= Math.min(tokens.length - 1, pos + 1 + maxGap); j++) {
        const s = tokenSimilarity(tokens[j]!, phrase[k]!);
        if (s >= TOKEN_MATCH_MIN) {
          found = j;
          foundSim = s;
          break;
        }
      }
      if (found < 0) {
        ok = false;
        break;
      }
      sum += foundSim;
      pos = found;
    }
    if (!ok) continue;
    const score = sum / phrase.length;
    if (!best || score > best.score) best = { score, start, end: pos + 1 };
  }
  return best;
}

/** Is any of `phrases` in `tokens`? The best match, or undefined. */
export function findAnyPhrase(tokens: readonly string[], phrases: readonly (readonly string[])[], maxGap = 1): (PhraseMatch & { index: number }) | undefined {
  let best: (PhraseMatch & { index: number }) | undefined;
  phrases.forEach((p, index) => {
    const m = findPhrase(tokens, p, maxGap);
    if (m && (!best || m.score > best.score || (m.score === best.score && p.length > phrases[best.index]!.length))) best = { ...m, index };
  });
  return best;
}

const NEGATORS = new Set(['not', 'no', 'never', 'without', 'nobody']);

/** True when a negation word sits within `window` tokens before `start` ("do not want an operator"). */
export function negatedBefore(tokens: readonly string[], start: number, window = 3): boolean {
  for (let i = Math.max(0, start - window); i < start; i++) if (NEGATORS.has(tokens[i]!)) return true;
  return false;
}

// --- intents -----------------------------------------------------------------------------------

export interface MatchCandidate {
  /** Caller-visible id: an intent name or "faq:<id>". */
  id: string;
  examples: readonly string[];
  keywords: readonly string[];
}

export interface IntentScore {
  id: string;
  score: number;
  /** True when one of the candidate's keywords was heard. */
  keyword: boolean;
}

interface PreparedCandidate {
  id: string;
  /** Examples as indices into the vocabulary. */
  examples: number[][];
  keywords: string[][];
}

export interface IntentMatcherOptions {
  /** Score a keyword hit is worth (times the phrase similarity). Default 0.8. */
  keywordScore?: number;
}

/**
 * Scores utterances against a fixed set of candidates. Word weights are inverse document
 * frequencies over the candidates, so words every intent shares ("order") count less than
 * the words that tell intents apart ("cancel", "address").
 *
 * Each utterance is compared once against the scenario's vocabulary (a token x vocabulary
 * similarity matrix); every example is then scored from that matrix by index.
 */
export class IntentMatcher {
  private readonly prepared: PreparedCandidate[];
  private readonly vocab: string[] = [];
  private readonly vocabIndex = new Map<string, number>();
  private readonly vocabWeight: number[] = [];
  private readonly idf = new Map<string, number>();
  private readonly keywordScore: number;

  constructor(candidates: readonly MatchCandidate[], opts: IntentMatcherOptions = {}) {
    this.keywordScore = opts.keywordScore ?? 0.8;
    const normalised = candidates.map((c) => ({
      id: c.id,
      examples: c.examples.map((e) => normalize(e)).filter((t) => t.length > 0),
      keywords: c.keywords.map((k) => normalize(k)).filter((t) => t.length > 0),
    }));
    const df = new Map<string, number>();
    for (const c of normalised) {
      const seen = new Set<string>();
      for (const toks of [...c.examples, ...c.keywords]) for (const t of toks) seen.add(stem(t));
      for (const s of seen) df.set(s, (df.get(s) ?? 0) + 1);
    }
    const n = Math.max(1, normalised.length);
    for (const [s, d] of df) this.idf.set(s, Math.log(1 + n / d));
    this.prepared = normalised.map((c) => ({ id: c.id, keywords: c.keywords, examples: c.examples.map((e) => e.map((t) => this.vocabId(t))) }));
  }

  private vocabId(token: string): number {
    let id = this.vocabIndex.get(token);
    if (id === undefined) {
      id = this.vocab.length;
      this.vocab.push(token);
      this.vocabIndex.set(token, id);
      this.vocabWeight.push(this.weight(token));
    }
    return id;
  }

  private weight(token: string): number {
    if (STOPWORDS.has(token)) return STOPWORD_WEIGHT;
    return this.idf.get(stem(token)) ?? UNKNOWN_WEIGHT;
  }

  /** For each utterance token, its similarity to every vocabulary word (0 below TOKEN_MATCH_MIN). */
  private matrix(tokens: readonly string[]): Float64Array[] {
    const rows = new Map<string, Float64Array>();
    return tokens.map((t) => {
      let row = rows.get(t);
      if (!row) {
        row = new Float64Array(this.vocab.length);
        for (let v = 0; v < this.vocab.length; v++) {
          const s = tokenSimilarity(t, this.vocab[v]!);
          row[v] = s >= TOKEN_MATCH_MIN ? s : 0;
        }
        rows.set(t, row);
      }
      return row;
    });
  }

  /** Soft recall/precision F-measure (beta 2: recall counts four times as much). */
  private similarity(rows: readonly Float64Array[], uWeights: readonly number[], example: readonly number[]): number {
    if (rows.length === 0 || example.length === 0) return 0;
    let rNum = 0;
    let rDen = 0;
    for (const e of example) {
      const w = this.vocabWeight[e]!;
      rDen += w;
      let b = 0;
      for (const row of rows) if (row[e]! > b) b = row[e]!;
      rNum += w * b;
    }
    let pNum = 0;
    let pDen = 0;
    rows.forEach((row, i) => {
      const w = uWeights[i]!;
      pDen += w;
      let b = 0;
      for (const e of example) if (row[e]! > b) b = row[e]!;
      pNum += w * b;
    });
    const r = rDen > 0 ? rNum / rDen : 0;
    const p = pDen > 0 ? pNum / pDen : 0;
    if (r === 0 || p === 0) return 0;
    return (5 * p * r) / (4 * p + r);
  }

  /** Every candidate's score (only those in `allowed` when given), best first; ties keep declaration order. */
  scoreAll(tokens: readonly string[], allowed?: ReadonlySet<string>): IntentScore[] {
    const rows = this.matrix(tokens);
    const uWeights = tokens.map((t) => this.weight(t));
    const scores: (IntentScore & { order: number })[] = [];
    this.prepared.forEach((c, order) => {
      if (allowed && !allowed.has(c.id)) return;
      let ex = 0;
      for (const e of c.examples) ex = Math.max(ex, this.similarity(rows, uWeights, e));
      let kw = 0;
      for (const k of c.keywords) {
        const m = findPhrase(tokens, k);
        if (m && !negatedBefore(tokens, m.start, 2)) kw = Math.max(kw, this.keywordScore * m.score);
      }
      const score = Math.min(1, Math.max(ex, kw) + (ex > 0 && kw > 0 ? 0.1 * Math.min(ex, kw) : 0));
      scores.push({ id: c.id, score, keyword: kw > 0, order });
    });
    scores.sort((a, b) => b.score - a.score || a.order - b.order);
    return scores.map(({ id, score, keyword }) => ({ id, score, keyword }));
  }

  /** The best candidate among `allowed` (all when omitted), if its score reaches `threshold`. */
  best(tokens: readonly string[], threshold: number, allowed?: ReadonlySet<string>): IntentScore | undefined {
    const top = this.scoreAll(tokens, allowed)[0];
    return top && top.score >= threshold ? top : undefined;
  }
}

// --- yes / no ----------------------------------------------------------------------------------

export const DEFAULT_YES: readonly string[] = [
  'yes', 'yeah', 'yep', 'yup', 'yea', 'ya', 'yah', 'aye', 'sure', 'correct', 'right', 'exactly', 'absolutely',
  'affirmative', 'okay', 'ok', 'definitely', 'certainly', 'indeed', 'of course', 'please', 'go ahead', 'do it',
  'sounds good', 'that is right', 'that is correct', 'alright', 'all right', 'true', 'uh huh', 'mhm', 'yes please',
  'please do', 'confirm', 'confirmed', 'fine', 'perfect', 'great',
];

export const DEFAULT_NO: readonly string[] = [
  'no', 'nope', 'nah', 'negative', 'incorrect', 'wrong', 'not', 'never', 'no thanks', 'no thank you', 'not really',
  'never mind', 'nevermind', 'that is wrong', 'not right', 'not correct', 'do not', 'no way', 'cancel that',
];

const FLIPPERS = new Set(['not', 'never']);

/** Words that may be exact only: fuzzy "yet" must not become "yes". */
const SHORT_EXACT = 4;

export interface YesNoLexicon {
  yes: readonly (readonly string[])[];
  no: readonly (readonly string[])[];
}

export function buildYesNoLexicon(extraYes: readonly string[] = [], extraNo: readonly string[] = []): YesNoLexicon {
  const prep = (list: readonly string[]): string[][] => list.map((p) => normalize(p)).filter((t) => t.length > 0);
  return { yes: prep([...DEFAULT_YES, ...extraYes]), no: prep([...DEFAULT_NO, ...extraNo]) };
}

interface Hit {
  polarity: 'yes' | 'no';
  start: number;
  end: number;
  len: number;
}

function exactOrFuzzy(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.length <= SHORT_EXACT || b.length <= SHORT_EXACT) return false;
  return tokenSimilarity(a, b) >= 0.8;
}

function findHits(tokens: readonly string[], phrases: readonly (readonly string[])[], polarity: 'yes' | 'no'): Hit[] {
  const hits: Hit[] = [];
  for (const p of phrases) {
    for (let i = 0; i + p.length <= tokens.length; i++) {
      let ok = true;
      for (let k = 0; k < p.length; k++) {
        if (!exactOrFuzzy(tokens[i + k]!, p[k]!)) {
          ok = false;
          break;
        }
      }
      if (ok) hits.push({ polarity, start: i, end: i + p.length, len: p.length });
    }
  }
  return hits;
}

/**
 * "yes" | "no" | undefined (neither, or both). A "yes" word right after a negator flips
 * ("not correct"); the longest phrases win over the words inside them ("no thanks" over
 * "thanks"); an answer with both polarities ("no, yes that's right") is unclear: undefined.
 */
export function detectYesNo(tokens: readonly string[], lexicon: YesNoLexicon): 'yes' | 'no' | undefined {
  if (tokens.length === 0) return undefined;
  const all = [...findHits(tokens, lexicon.yes, 'yes'), ...findHits(tokens, lexicon.no, 'no')];
  // Longest first; drop hits covered by a longer one.
  all.sort((a, b) => b.len - a.len || a.start - b.start);
  const kept: Hit[] = [];
  for (const h of all) {
    if (kept.some((k) => h.start >= k.start && h.end <= k.end)) continue;
    kept.push(h);
  }
  // "not"/"never" right before a yes word negates it ("not correct"); "no" does not ("no, yes").
  const negates = (h: Hit): boolean => h.polarity === 'yes' && h.start > 0 && FLIPPERS.has(tokens[h.start - 1]!);
  const filtered = kept
    // The negator that flipped a yes word is not a separate answer of its own.
    .filter((h) => !(h.polarity === 'no' && h.len === 1 && FLIPPERS.has(tokens[h.start]!) && kept.some((o) => o.start === h.end && negates(o))))
    .map((h) => ({ h, p: negates(h) ? ('no' as const) : h.polarity }));
  const set = new Set(filtered.map((f) => f.p));
  if (set.size === 1) return [...set][0];
  return undefined;
}
