import { describe, expect, it } from 'vitest';
import { SlabAllocator } from '../../src/rtp/slab.js';

describe('SlabAllocator', () => {
  it('hands out zeroed, non-overlapping, aligned views', () => {
    const slab = new SlabAllocator(1024);
    const a = slab.uint8(3);
    const b = slab.int16(4);
    const c = slab.uint8(5);
    expect(b.byteOffset % 2).toBe(0);
    a.fill(0xff);
    b.fill(-1);
    c.fill(0xff);
    expect(a.buffer).toBe(b.buffer);
    const spans = [a, b, c].map((v) => [v.byteOffset, v.byteOffset + v.byteLength] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] ?? 0);
    expect(Array.from(slab.int16(2))).toEqual([0, 0]);
  });

  it('starts a new slab when the current one is full, leaving old views intact', () => {
    const slab = new SlabAllocator(1024);
    const first = slab.uint8(200);
    first.fill(7);
    const views = Array.from({ length: 10 }, () => slab.uint8(200));
    expect(views.some((v) => v.buffer !== first.buffer)).toBe(true);
    expect(first.every((x) => x === 7)).toBe(true);
    for (const v of views) expect(v.every((x) => x === 0)).toBe(true);
  });

  it('allocates large requests on their own', () => {
    const slab = new SlabAllocator(1024);
    const big = slab.int16(1000);
    expect(big.length).toBe(1000);
    expect(big.buffer.byteLength).toBe(2000);
    expect(() => new SlabAllocator(10)).toThrow(RangeError);
  });
});
