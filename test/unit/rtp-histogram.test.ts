import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/rtp/histogram.js';

describe('LatencyHistogram', () => {
  it('reports percentiles at bucket resolution, capped by the maximum', () => {
    const h = new LatencyHistogram({ bucketMs: 0.1, limitMs: 50 });
    for (let i = 1; i <= 100; i++) h.record(i / 10); // 0.1 .. 10.0 ms
    expect(h.count).toBe(100);
    expect(h.percentile(50)).toBeCloseTo(5.1, 6); // 5.0 lands in [5.0, 5.1)
    expect(h.percentile(99)).toBeCloseTo(10, 6); // capped by max 10.0
    expect(h.percentile(1)).toBeCloseTo(0.2, 6);
    expect(h.max).toBe(10);
    expect(h.mean).toBeCloseTo(5.05, 6);
  });

  it('puts values beyond the limit in an overflow bucket reported as the max', () => {
    const h = new LatencyHistogram({ bucketMs: 1, limitMs: 10 });
    for (let i = 0; i < 98; i++) h.record(1.5);
    h.record(250);
    h.record(300);
    expect(h.percentile(50)).toBe(2);
    expect(h.percentile(99)).toBe(300);
    expect(h.percentile(100)).toBe(300);
  });

  it('clamps negatives to zero, ignores NaN, is 0 when empty', () => {
    const h = new LatencyHistogram();
    expect(h.percentile(99)).toBe(0);
    h.record(-3);
    h.record(Number.NaN);
    expect(h.count).toBe(1);
    expect(h.max).toBe(0);
  });

  it('merges and resets', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.record(1);
    b.record(3);
    b.record(3);
    a.merge(b);
    expect(a.summary()).toMatchObject({ count: 3, max: 3 });
    expect(a.percentile(50)).toBeCloseTo(3, 6);
    expect(() => a.merge(new LatencyHistogram({ bucketMs: 1 }))).toThrow(RangeError);
    a.reset();
    expect(a.summary()).toEqual({ count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });
});
