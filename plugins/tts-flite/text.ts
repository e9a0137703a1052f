/**
 * Text preparation for flite: fold Unicode to the ASCII flite's English front end reads, and
 * cut the text into chunks that are synthesised one at a time so audio can start before the
 * whole text is done.
 *
 * flite tokenises bytes, not characters: every non-ASCII byte becomes a token it silently
 * drops (measured: "café" is spoken "caf", "it’s" loses its apostrophe handling, an emoji
 * is skipped, Cyrillic vanishes entirely). So typography is mapped to its ASCII meaning,
 * accents are stripped (NFKD), symbols and emoji become spaces, and letters of any other
 * script are reported, so the caller can refuse rather than speak a sentence with holes.
 */

/** Typographic characters NFKD leaves alone, mapped to what flite understands. */
const TYPOGRAPHY: Readonly<Record<string, string>> = {
  '\u2018': "'", // ‘
  '\u2019': "'", // ’
  '\u201A': "'", // ‚
  '\u201B': "'", // ‛
  '\u2032': "'", // ′
  '\u02BC': "'", // ʼ (modifier letter apostrophe)
  '\u201C': '"', // “
  '\u201D': '"', // ”
  '\u201E': '"', // „
  '\u201F': '"', // ‟
  '\u2033': '"', // ″
  '\u00AB': '"', // «
  '\u00BB': '"', // »
  '\u2039': "'", // ‹
  '\u203A': "'", // ›
  '\u2010': '-', // hyphen
  '\u2011': '-', // non-breaking hyphen
  '\u2012': '-', // figure dash (phone numbers)
  '\u2212': '-', // minus sign
  '\u2013': ', ', // en dash: a pause
  '\u2014': ', ', // em dash: a pause
  '\u2015': ', ', // horizontal bar
  '\u2026': '...', // …
  '\u2044': '/', // fraction slash (NFKD of ½ is 1⁄2)
  '\u00D7': ' times ',
  '\u00F7': ' divided by ',
  '\u00B0': ' degrees ',
  '\u20AC': ' euros ',
  '\u00A3': ' pounds ',
  '\u00A5': ' yen ',
  '\u20B4': ' hryvnias ',
  '\u20BD': ' roubles ',
  '\u00A7': ' section ',
  '\u2116': ' number ', // №
  '\u00DF': 'ss', // ß has no NFKD decomposition
  '\u00E6': 'ae',
  '\u00C6': 'AE',
  '\u0153': 'oe',
  '\u0152': 'OE',
  '\u00F8': 'o',
  '\u00D8': 'O',
  '\u0142': 'l',
  '\u0141': 'L',
  '\u0111': 'd',
  '\u0110': 'D',
  '\u00F0': 'd',
  '\u00D0': 'D',
  '\u00FE': 'th',
  '\u00DE': 'Th',
  '\u0131': 'i', // dotless i
};

export interface FoldedText {
  /** Printable ASCII with single spaces, trimmed. */
  ascii: string;
  /** Letters of scripts flite cannot speak (first few, deduplicated); empty when none. */
  foreign: string[];
}

/** Map `text` to ASCII flite reads; letters it cannot speak are collected in `foreign`. */
export function foldToAscii(text: string): FoldedText {
  const foreign = new Set<string>();
  let out = '';
  for (const ch of text.normalize('NFKD')) {
    const code = ch.codePointAt(0) as number;
    if (code >= 0x20 && code < 0x7f) {
      out += ch;
    } else if (code === 0x09 || code === 0x0a || code === 0x0d) {
      out += ch === '\n' ? '\n' : ' ';
    } else if (TYPOGRAPHY[ch] !== undefined) {
      out += TYPOGRAPHY[ch];
    } else if (/\p{M}/u.test(ch)) {
      // combining accent left by NFKD: drop it, keep the base letter
    } else if (/\p{L}/u.test(ch)) {
      if (foreign.size < 8) foreign.add(ch);
    } else if (/\p{Zs}/u.test(ch)) {
      out += ' ';
    } else {
      // emoji, pictographs, control and format characters (zero-width joiners...)
      out += ' ';
    }
  }
  // Keep newlines (they end sentences); collapse other whitespace.
  const ascii = out
    .split('\n')
    .map((line) =>
      line
        .replace(/[ \t\r]+/g, ' ')
        // flite reads a detached comma as a token of its own and drops the pause it marks
        // (measured: "cafe , naive" is 0.45 s shorter than "cafe, naive"): attach it.
        .replace(/ +([,.;:!?])/g, '$1')
        .replace(/([,;:])(?:[,;:] ?)+/g, '$1')
        .replace(/^[,;: ]+/, '')
        .trim(),
    )
    .filter((line) => line.length > 0)
    .join('\n');
  return { ascii, foreign: [...foreign] };
}

/** Words a period does not end a sentence after (lowercase, without the final period). */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'st', 'jr', 'sr', 'prof', 'rev', 'hon', 'gen', 'col', 'capt', 'lt', 'sgt',
  'mt', 'ft', 'ave', 'blvd', 'rd', 'apt', 'dept', 'no', 'nos', 'tel', 'ext', 'fig', 'vol', 'approx',
  'est', 'inc', 'ltd', 'co', 'corp', 'vs', 'etc', 'e.g', 'i.e', 'a.m', 'p.m', 'u.s', 'u.k', 'jan', 'feb',
  'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec',
]);

/**
 * Cut `text` (already folded) into chunks of at most `maxChars`: one per sentence, and long
 * sentences at clause punctuation, then at spaces. Empty and punctuation-only pieces are
 * dropped (they would synthesise to silence).
 */
export function splitIntoChunks(text: string, maxChars = 200): string[] {
  const chunks: string[] = [];
  for (const sentence of splitSentences(text)) {
    for (const piece of splitLong(sentence, maxChars)) {
      if (/[A-Za-z0-9]/.test(piece)) chunks.push(piece);
    }
  }
  return chunks;
}

/** Sentences: cut after . ! ? (and closing quotes/brackets) before whitespace, and at newlines. */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\n+/)) {
    let start = 0;
    const boundary = /[.!?]+["')\]]*(?=\s)/g;
    for (let m = boundary.exec(line); m; m = boundary.exec(line)) {
      const end = m.index + m[0].length;
      if (m[0] === '.' && isAbbreviation(line.slice(start, m.index), line.slice(end))) continue;
      pushTrimmed(out, line.slice(start, end));
      start = end;
    }
    pushTrimmed(out, line.slice(start));
  }
  return out;
}

function isAbbreviation(before: string, after: string): boolean {
  const word = /(?:^|[^A-Za-z.])([A-Za-z][A-Za-z.]*)$/.exec(before)?.[1];
  if (!word) return false;
  // A single capital is taken for an initial ("J. Smith").
  if (word.length === 1) return /[A-Z]/.test(word);
  const lower = word.toLowerCase();
  // "No." abbreviates "number" only before one ("No. 5"); otherwise it is the answer "No."
  if (lower === 'no' || lower === 'nos') return /^\s*#?\d/.test(after);
  return ABBREVIATIONS.has(lower);
}

function splitLong(sentence: string, maxChars: number): string[] {
  if (sentence.length <= maxChars) return [sentence];
  // Clause boundaries first: , ; : followed by a space.
  const clauses = cutAfter(sentence, /[,;:](?=\s)/g);
  const out: string[] = [];
  let current = '';
  for (const clause of clauses) {
    const joined = current ? `${current} ${clause}` : clause;
    if (joined.length <= maxChars) {
      current = joined;
      continue;
    }
    if (current) out.push(current);
    if (clause.length <= maxChars) {
      current = clause;
    } else {
      const words = splitAtSpaces(clause, maxChars);
      current = words.pop() ?? '';
      out.push(...words);
    }
  }
  if (current) out.push(current);
  return out;
}

function cutAfter(text: string, re: RegExp): string[] {
  const out: string[] = [];
  let start = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const end = m.index + m[0].length;
    pushTrimmed(out, text.slice(start, end));
    start = end;
  }
  pushTrimmed(out, text.slice(start));
  return out;
}

function splitAtSpaces(text: string, maxChars: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    if (!word) continue;
    if (current && current.length + 1 + word.length > maxChars) {
      out.push(current);
      current = '';
    }
    // A single "word" longer than the limit (a URL, a run of digits) is cut hard.
    let w = word;
    while (w.length > maxChars) {
      if (current) {
        out.push(current);
        current = '';
      }
      out.push(w.slice(0, maxChars));
      w = w.slice(maxChars);
    }
    current = current ? `${current} ${w}` : w;
  }
  if (current) out.push(current);
  return out;
}

function pushTrimmed(out: string[], s: string): void {
  const t = s.trim();
  if (t) out.push(t);
}
