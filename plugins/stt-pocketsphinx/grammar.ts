/**
 * From the agent's expected phrases to what PocketSphinx can search: a JSGF grammar (for the
 * FSG search) or a keyphrase list (for keyword spotting), plus the list of words the decoder's
 * dictionary must contain.
 *
 * The grammar accepts any sequence of items. An item is one of the whole phrases, a spoken
 * digit, any single word of the phrases ("loose" word, penalised), or one phone of a garbage
 * loop (penalised more). So:
 *  - "change my address" matches its phrase, at no cost;
 *  - "four two seven one" is a run of digits, at no cost (a loose word that sounds like a
 *    digit, "to" or "for", is left out so that the digit wins);
 *  - a caller who says part of a phrase ("my order") is still understood, through loose words;
 *  - speech that is none of this ("what time do you close") is absorbed by the garbage loop
 *    instead of being forced into the nearest phrase; the share of speech the garbage took is
 *    the out-of-grammar measure the stream uses to re-decode the turn with the N-gram model.
 *
 * Weights are on word atoms: PocketSphinx 5prealpha drops JSGF weights placed on groups and
 * rule references when it builds the FSG (checked with sphinx_jsgf2fsg), and an unweighted
 * word costs nothing. The decoder multiplies these log weights by the language weight (-lw).
 *
 * Words the dictionary cannot pronounce are dropped (and reported), never passed on: the FSG
 * search refuses a grammar with an unknown word. A phrase containing one is kept only as its
 * known words (as loose items), since a phrase with a hole would no longer match its sound.
 *
 * Pure functions: no native code, unit-tested on their own.
 */

/** Digit words (and "oh" for zero, as in phone and order numbers). */
export const DIGIT_WORDS: readonly string[] = ['zero', 'oh', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

const DIGIT_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/**
 * Words of a phrase as the dictionary spells them: lower case, digits spoken one by one
 * ("24/7" -> "two four seven"), hyphens and slashes split words, other punctuation dropped,
 * apostrophes kept inside words ("don't", "o'clock").
 */
export function phraseWords(text: string): string[] {
  const out: string[] = [];
  const spaced = text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[0-9]/g, (d) => ` ${DIGIT_NAMES[Number(d)] ?? ''} `)
    .replace(/[-_/\\&+]/g, ' ');
  for (const raw of spaced.split(/\s+/)) {
    // Keep letters, marks and inner apostrophes; drop everything else.
    const word = raw.replace(/[^\p{L}\p{M}']/gu, '').replace(/^'+|'+$/g, '');
    if (word) out.push(word);
  }
  return out;
}

export interface GrammarOptions {
  /** Accept spoken digits anywhere (order and phone numbers). */
  digits: boolean;
  /** Weight (probability, 0..1] of one loose word of the phrases. */
  looseWordWeight: number;
  /** Weight of one garbage phone (0: no garbage loop). */
  garbageWeight: number;
}

/** Dictionary word of the garbage loop for a phone ("__g_aa"); never a real word. */
export const GARBAGE_PREFIX = '__g_';

export function garbageWord(phone: string): string {
  return `${GARBAGE_PREFIX}${phone.toLowerCase()}`;
}

export function isGarbageWord(word: string): boolean {
  return word.startsWith(GARBAGE_PREFIX);
}

/** Dictionary lines for the garbage loop: one pseudo-word per phone. */
export function garbageDictionary(phones: Iterable<string>): string[] {
  return [...new Set(phones)].filter((p) => /^[A-Za-z][A-Za-z0-9]*$/.test(p)).map((p) => `${garbageWord(p)} ${p}`);
}

export interface CompiledPhrases {
  /** Phrases (as word lists) kept whole: every word pronounceable. */
  phrases: string[][];
  /** Every distinct word the search may output (phrase words, loose words, digits). */
  words: string[];
  /** Words dropped because the dictionary has no pronunciation for them. */
  unknownWords: string[];
  /** Words offered as loose items (not digits, not sound-alikes of digits). */
  looseWords: string[];
  /** Digit words offered (empty when digits are off). */
  digitWords: string[];
}

/**
 * Split phrases into words and keep what the dictionary can pronounce.
 * `known(word)` says whether the dictionary has the word; `soundsLikeDigit(word)` whether one
 * of its pronunciations is a digit's (such a word is not offered loose when digits are on).
 */
export function compilePhrases(
  phrases: readonly string[],
  options: Pick<GrammarOptions, 'digits'>,
  known: (word: string) => boolean,
  soundsLikeDigit: (word: string) => boolean = () => false,
): CompiledPhrases {
  const kept: string[][] = [];
  const seenPhrase = new Set<string>();
  const words = new Set<string>();
  const unknown = new Set<string>();
  for (const phrase of phrases) {
    const ws = phraseWords(phrase);
    if (ws.length === 0) continue;
    let whole = true;
    for (const w of ws) {
      if (known(w)) words.add(w);
      else {
        unknown.add(w);
        whole = false;
      }
    }
    const key = ws.join(' ');
    if (whole && ws.length > 1 && !seenPhrase.has(key)) {
      seenPhrase.add(key);
      kept.push(ws);
    }
  }
  const digitWords = options.digits ? DIGIT_WORDS.filter(known) : [];
  const loose = [...words].filter((w) => !DIGIT_WORDS.includes(w) && !(options.digits && soundsLikeDigit(w))).sort();
  for (const d of digitWords) words.add(d);
  return { phrases: kept, words: [...words].sort(), unknownWords: [...unknown].sort(), looseWords: loose, digitWords };
}

/**
 * JSGF source for the compiled phrases; undefined when there is nothing to recognise.
 * `garbage`: the garbage loop's pseudo-words (see garbageDictionary), [] for none.
 */
export function buildJsgf(compiled: CompiledPhrases, options: Pick<GrammarOptions, 'looseWordWeight' | 'garbageWeight'>, garbage: readonly string[] = []): string | undefined {
  const items: string[] = compiled.phrases.map((p) => p.join(' '));
  for (const w of compiled.looseWords) items.push(`/${formatWeight(options.looseWordWeight)}/ ${w}`);
  for (const d of compiled.digitWords) items.push(d);
  if (items.length === 0) return undefined;
  if (options.garbageWeight > 0) for (const g of garbage) items.push(`/${formatWeight(options.garbageWeight)}/ ${g}`);
  return ['#JSGF V1.0;', 'grammar switchboard;', 'public <utterance> = <item>+;', `<item> = ${items.join(' | ')};`, ''].join('\n');
}

/** Phones in a keyphrase that gets exactly `keywordThreshold`; others scale with their length. */
export const KEYPHRASE_REFERENCE_PHONES = 10;

/**
 * Keyphrase file for keyword spotting: one phrase per line with its detection threshold.
 * The threshold bounds how much better the phrase must score than the free phone loop, so it
 * must shrink with the phrase's length: a phrase of n phones gets
 * keywordThreshold^(n / KEYPHRASE_REFERENCE_PHONES) (a 1-phone "oh" at 1e-20 would fire on
 * every breath). `phoneCount(word)` is the length of the word's first pronunciation.
 * Digits are spotted one by one, except "oh" (a single vowel).
 */
export function buildKeyphraseList(
  compiled: CompiledPhrases,
  threshold: number,
  phoneCount: (word: string) => number,
): string | undefined {
  const entries = new Map<string, number>();
  const add = (words: readonly string[]): void => {
    const phones = words.reduce((n, w) => n + Math.max(1, phoneCount(w)), 0);
    entries.set(words.join(' '), Math.log10(threshold) * (phones / KEYPHRASE_REFERENCE_PHONES));
  };
  for (const p of compiled.phrases) add(p);
  // Words that are not part of a whole phrase (one-word phrases, or phrases with an unknown word).
  const inPhrases = new Set(compiled.phrases.flat());
  for (const w of compiled.words) if (!inPhrases.has(w) && !DIGIT_WORDS.includes(w)) add([w]);
  if (entries.size === 0) return undefined;
  return [...entries].map(([phrase, log]) => `${phrase} /${(10 ** log).toExponential(2)}/`).join('\n') + '\n';
}

function formatWeight(w: number): string {
  // JSGF weights are plain decimals (the grammar lexer takes no exponent).
  if (w >= 1) return '1';
  const s = w.toFixed(12).replace(/0+$/, '');
  return s.endsWith('.') ? `${s}0` : s;
}
