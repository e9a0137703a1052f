/** "Did you mean ...?" for misspelt keys and names. */

/** Edit distance (insertions, deletions, substitutions and adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate closest to `word`, if it is close enough to be the intended one. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    if (lc === w) return c;
    const dist = editDistance(w, lc);
    const limit = Math.max(1, Math.min(3, Math.floor(Math.max(w.length, lc.length) / 3)));
    if (dist <= limit && dist < bestScore) {
      best = c;
      bestScore = dist;
    }
  }
  return best;
}

/** 'did you mean "x"? ' or '' */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `did you mean "${c}"? `;
}

export function quoteList(items: Iterable<string>): string {
  return [...items].map((i) => `"${i}"`).join(', ');
}
