/** Small statistics helpers for the benchmarks: medians, nearest-rank percentiles, rounding. */

/** Median of a sample (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile, p in 0..100 (NaN when empty). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Round to `digits` decimals; NaN and infinities become null (JSON-safe). */
export function round(n: number | undefined, digits = 2): number | null {
  if (n === undefined || !Number.isFinite(n)) return null;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Fixed-width text for a table cell ("-" for missing values). */
export function fmt(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

/** Distribution summary used throughout the results. */
export interface Distribution {
  n: number;
  median: number | null;
  p95: number | null;
  min: number | null;
  max: number | null;
}

export function distribution(xs: readonly number[], digits = 1): Distribution {
  return {
    n: xs.length,
    median: round(median(xs), digits),
    p95: round(percentile(xs, 95), digits),
    min: round(xs.length ? Math.min(...xs) : Number.NaN, digits),
    max: round(xs.length ? Math.max(...xs) : Number.NaN, digits),
  };
}
