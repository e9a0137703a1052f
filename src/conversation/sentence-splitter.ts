/**
 * Cuts a stream of text deltas from the model into sentences, so speech can start as soon as
 * the first sentence is complete instead of when the whole reply is. A sentence ends at
 * . ! ? ; or a newline followed by whitespace, but not inside numbers ("3.5"), common
 * abbreviations ("Dr.", "e.g.") or single initials ("J. Smith"). Very long runs without
 * punctuation are cut at a comma (or a space) so TTS never waits for a whole paragraph.
 */
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'st', 'no', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'apt', 'ave', 'jr', 'sr']);

export class SentenceSplitter {
  private buf = '';

  constructor(private readonly maxChars = 220) {}

  /** Add a delta; returns the sentences it completed (trimmed, non-empty). */
  push(delta: string): string[] {
    this.buf += delta;
    const out: string[] = [];
    for (;;) {
      const cut = this.findCut();
      if (cut < 0) break;
      const sentence = this.buf.slice(0, cut).trim();
      this.buf = this.buf.slice(cut);
      if (sentence) out.push(sentence);
    }
    return out;
  }

  /** The model is done: whatever is left is the last sentence. */
  flush(): string[] {
    const rest = this.buf.trim();
    this.buf = '';
    return rest ? [rest] : [];
  }

  private findCut(): number {
    const s = this.buf;
    for (let i = 0; i < s.length; i++) {
      const ch = s[i]!;
      if (ch === '\n') return i + 1;
      if (ch !== '.' && ch !== '!' && ch !== '?' && ch !== ';') continue;
      // Need the following character to know the sentence really ended.
      if (i + 1 >= s.length) return -1;
      let j = i + 1;
      while (j < s.length && (s[j] === '.' || s[j] === '!' || s[j] === '?' || s[j] === '"' || s[j] === "'" || s[j] === ')')) j++;
      if (j >= s.length) return -1;
      if (!/\s/.test(s[j]!)) continue; // "3.5", "e.g.x", "example.com"
      if (ch === '.' && this.isAbbreviation(s, i)) continue;
      return j;
    }
    if (s.length > this.maxChars) {
      const window = s.slice(0, this.maxChars);
      const comma = window.lastIndexOf(', ');
      const space = window.lastIndexOf(' ');
      const at = comma > this.maxChars / 3 ? comma + 1 : space > 0 ? space : this.maxChars;
      return at;
    }
    return -1;
  }

  private isAbbreviation(s: string, dot: number): boolean {
    let k = dot - 1;
    while (k >= 0 && /[A-Za-z.]/.test(s[k]!)) k--;
    const word = s.slice(k + 1, dot).toLowerCase();
    if (word.length === 1 && /[a-z]/.test(word)) return true; // an initial
    return ABBREVIATIONS.has(word);
  }
}
