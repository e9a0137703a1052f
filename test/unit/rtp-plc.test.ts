import { describe, expect, it } from 'vitest';
import { PacketLossConcealer } from '../../src/rtp/plc.js';

describe('PacketLossConcealer', () => {
  it('is silence before any good frame', () => {
    const plc = new PacketLossConcealer(160);
    const f = plc.conceal();
    expect(f.length).toBe(160);
    expect(f.every((s) => s === 0)).toBe(true);
  });

  it('repeats the last frame, fading linearly to silence over three frames, then silence', () => {
    const plc = new PacketLossConcealer(4);
    plc.remember(Int16Array.of(1200, -1200, 1200, -1200));
    const frames = [plc.conceal(), plc.conceal(), plc.conceal(), plc.conceal(), plc.conceal()];
    // Gain 1 - (k*4 + i) / 12 at sample i of concealed frame k.
    expect(Array.from(frames[0] ?? [])).toEqual([1200, -1100, 1000, -900]);
    expect(Array.from(frames[1] ?? [])).toEqual([800, -700, 600, -500]);
    expect(Array.from(frames[2] ?? [])).toEqual([400, -300, 200, -100]);
    expect(Array.from(frames[3] ?? [])).toEqual([0, 0, 0, 0]);
    expect(Array.from(frames[4] ?? [])).toEqual([0, 0, 0, 0]);
  });

  it('restarts at full level after a good frame and never aliases the input', () => {
    const plc = new PacketLossConcealer(2);
    const good = Int16Array.of(1000, 1000);
    plc.remember(good);
    good[0] = 5; // the concealer kept a copy
    plc.conceal();
    plc.conceal();
    plc.remember(Int16Array.of(600, 600));
    const f = plc.conceal();
    expect(f[0]).toBe(600);
    expect(f).not.toBe(plc.conceal());
  });

  it('writes into a caller buffer, overwriting whatever was there', () => {
    const plc = new PacketLossConcealer(4, 1);
    plc.remember(Int16Array.of(400, 400, 400, 400));
    const out = new Int16Array(4).fill(123);
    expect(plc.conceal(out)).toBe(out);
    expect(Array.from(out)).toEqual([400, 300, 200, 100]);
    const dirty = new Int16Array(4).fill(123);
    expect(Array.from(plc.conceal(dirty))).toEqual([0, 0, 0, 0]);
  });

  it('follows the length of the last frame and forgets on reset', () => {
    const plc = new PacketLossConcealer(160);
    plc.remember(new Int16Array(320).fill(100));
    expect(plc.conceal().length).toBe(320);
    plc.reset();
    const f = plc.conceal();
    expect(f.length).toBe(160);
    expect(f.every((s) => s === 0)).toBe(true);
  });
});
