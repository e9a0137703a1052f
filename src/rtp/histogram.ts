/**
 * Fixed-bucket latency histogram for pacing measurements: O(1) record with no
 * allocation, mergeable across calls, percentiles at bucket resolution.
 */

export interface HistogramSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A histogram as plain data (structured-clone safe), e.g. to cross a worker boundary. */
export interface HistogramSnapshot {
  bucketMs: number;
  limitMs: number;
  buckets: Uint32Array;
  total: number;
  sum: number;
  maximum: number;
}

export class LatencyHistogram {
  readonly bucketMs: number;
  readonly limitMs: number;
  /** Buckets [i*bucketMs, (i+1)*bucketMs), plus a final overflow bucket. */
  private readonly buckets: Uint32Array;
  private total = 0;
  private sum = 0;
  private maximum = 0;

  constructor(opts: { bucketMs?: number; limitMs?: number } = {}) {
    this.bucketMs = opts.bucketMs ?? 0.1;
    this.limitMs = opts.limitMs ?? 100;
    if (!(this.bucketMs > 0) || !(this.limitMs > this.bucketMs)) throw new RangeError('histogram needs 0 < bucketMs < limitMs');
    this.buckets = new Uint32Array(Math.ceil(this.limitMs / this.bucketMs) + 1);
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maximum;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** Record one value in ms (negative values count as 0; NaN is ignored). */
  record(ms: number): void {
    if (!(ms >= 0)) {
      if (Number.isNaN(ms)) return;
      ms = 0;
    }
    const last = this.buckets.length - 1;
    const i = Math.min(Math.floor(ms / this.bucketMs), last);
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.total++;
    this.sum += ms;
    if (ms > this.maximum) this.maximum = ms;
  }

  /**
   * The value at percentile `p` (0..100): the upper edge of the bucket holding it, never
   * more than the largest value recorded. 0 when empty.
   */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.total));
    let seen = 0;
    const last = this.buckets.length - 1;
    for (let i = 0; i < last; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return Math.min((i + 1) * this.bucketMs, this.maximum);
    }
    return this.maximum;
  }

  summary(): HistogramSummary {
    return { count: this.total, mean: this.mean, p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), max: this.maximum };
  }

  /** Add another histogram's counts (same bucket layout) into this one. */
  merge(other: LatencyHistogram): void {
    if (other.bucketMs !== this.bucketMs || other.buckets.length !== this.buckets.length) throw new RangeError('cannot merge histograms with different buckets');
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i] = (this.buckets[i] as number) + (other.buckets[i] as number);
    this.total += other.total;
    this.sum += other.sum;
    if (other.maximum > this.maximum) this.maximum = other.maximum;
  }

  /** A copy of the counts (see `fromSnapshot`). */
  snapshot(): HistogramSnapshot {
    return { bucketMs: this.bucketMs, limitMs: this.limitMs, buckets: this.buckets.slice(), total: this.total, sum: this.sum, maximum: this.maximum };
  }

  /** The histogram a `snapshot()` was taken of. */
  static fromSnapshot(s: HistogramSnapshot): LatencyHistogram {
    const h = new LatencyHistogram({ bucketMs: s.bucketMs, limitMs: s.limitMs });
    if (s.buckets.length !== h.buckets.length) throw new RangeError('histogram snapshot: bucket count does not match its layout');
    h.buckets.set(s.buckets);
    h.total = s.total;
    h.sum = s.sum;
    h.maximum = s.maximum;
    return h;
  }

  /** Replace the counts with a snapshot's (same layout). */
  restore(s: HistogramSnapshot): void {
    this.reset();
    this.merge(LatencyHistogram.fromSnapshot(s));
  }

  reset(): void {
    this.buckets.fill(0);
    this.total = 0;
    this.sum = 0;
    this.maximum = 0;
  }
}
