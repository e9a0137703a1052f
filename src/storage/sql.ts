/**
 * Helpers for building LIKE patterns from user text. The text is always bound as a parameter
 * (so quotes such as O'Brien are data, never SQL); these helpers additionally make the LIKE
 * wildcards in it literal, so "%" or "_" said by a caller match only themselves.
 */

/** Escapes \, % and _ for a LIKE/ILIKE pattern used with ESCAPE '\'. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Pattern that matches values containing `text` (use with `ILIKE $n ESCAPE '\'`). */
export function containsPattern(text: string): string {
  return `%${escapeLike(text)}%`;
}

/** Pattern that matches values starting with `text` (use with `ILIKE $n ESCAPE '\'`). */
export function prefixPattern(text: string): string {
  return `${escapeLike(text)}%`;
}
