import { describe, expect, it } from 'vitest';
import { MediaClock, type ClockTick, type ClockTimers } from '../../src/rtp/media-clock.js';

/** Manual timers: `fireNext(lateMs)` runs the pending timer `lateMs` after it was due. */
class FakeTimers implements ClockTimers {
  nowMs = 1000;
  pending: { fn: () => void; at: number; id: number } | undefined;
  armedDelays: number[] = [];
  private ids = 0;
  now = (): number => this.nowMs;
  setTimeout = (fn: () => void, ms: number): unknown => {
    if (this.pending) throw new Error('clock armed two timers');
    this.armedDelays.push(ms);
    this.pending = { fn, at: this.nowMs + ms, id: ++this.ids };
    return this.pending.id;
  };
  clearTimeout = (h: unknown): void => {
    if (this.pending?.id === h) this.pending = undefined;
  };
  fireNext(lateMs = 0): void {
    const p = this.pending;
    if (!p) throw new Error('no timer armed');
    this.pending = undefined;
    this.nowMs = p.at + lateMs;
    p.fn();
  }
}

function setup(opts: { maxCatchUpTicks?: number } = {}): { clock: MediaClock; timers: FakeTimers; ticks: ClockTick[] } {
  const timers = new FakeTimers();
  const clock = new MediaClock({ timers, ...opts });
  const ticks: ClockTick[] = [];
  clock.register((t) => ticks.push(t));
  return { clock, timers, ticks };
}

describe('MediaClock', () => {
  it('ticks every 20 ms on a grid anchored at registration', () => {
    const { ticks, timers } = setup();
    for (let i = 0; i < 3; i++) timers.fireNext();
    expect(ticks.map((t) => t.scheduledMs)).toEqual([1020, 1040, 1060]);
    expect(ticks.map((t) => t.index)).toEqual([1, 2, 3]);
    expect(timers.armedDelays).toEqual([20, 20, 20, 20]);
  });

  it('does not drift when every timer fires late: the next one is armed shorter', () => {
    const { ticks, timers, clock } = setup();
    for (let i = 0; i < 50; i++) timers.fireNext(3);
    expect(ticks.at(-1)?.scheduledMs).toBe(1000 + 50 * 20);
    expect(timers.armedDelays.slice(1, 4)).toEqual([17, 17, 17]);
    expect(clock.stats.lateness.percentile(50)).toBeCloseTo(3, 1);
    expect(clock.stats.skippedTicks).toBe(0);
  });

  it('catches up on ticks that fell due while the timer was late', () => {
    const { ticks, timers } = setup();
    timers.fireNext(45); // due 1020, fired 1065: 1020, 1040 and 1060 are all due
    expect(ticks.map((t) => t.scheduledMs)).toEqual([1020, 1040, 1060]);
    expect(ticks.every((t) => t.firedMs === 1065)).toBe(true);
    expect(timers.armedDelays.at(-1)).toBe(15); // next due 1080
    timers.fireNext();
    expect(ticks.at(-1)?.scheduledMs).toBe(1080);
  });

  it('after a long stall runs only maxCatchUpTicks and skips the rest, staying on the grid', () => {
    const { ticks, timers, clock } = setup({ maxCatchUpTicks: 3 });
    timers.fireNext(1000); // 51 ticks due
    expect(ticks.map((t) => t.scheduledMs)).toEqual([1980, 2000, 2020]);
    expect(ticks.map((t) => t.index)).toEqual([49, 50, 51]);
    expect(clock.stats.skippedTicks).toBe(48);
    timers.fireNext();
    expect(ticks.at(-1)?.scheduledMs).toBe(2040);
  });

  it('runs a tick that fires within the early tolerance, and re-arms one that fires too early', () => {
    const { ticks, timers } = setup();
    timers.fireNext(-0.4);
    expect(ticks).toHaveLength(1);
    timers.fireNext(-5);
    expect(ticks).toHaveLength(1);
    expect(timers.armedDelays.at(-1)).toBe(5);
    timers.fireNext();
    expect(ticks.map((t) => t.scheduledMs)).toEqual([1020, 1040]);
  });

  it('stops when the last listener leaves and restarts on a new registration', () => {
    const { clock, timers } = setup();
    const other = clock.register(() => undefined);
    expect(clock.listenerCount).toBe(2);
    timers.fireNext();
    clock.unregister([...(clock as unknown as { listeners: Set<() => void> }).listeners][0] as () => void);
    expect(clock.running).toBe(true);
    other();
    other(); // idempotent
    expect(clock.listenerCount).toBe(0);
    expect(clock.running).toBe(false);
    expect(timers.pending).toBeUndefined();
    const ticks: ClockTick[] = [];
    timers.nowMs = 5000;
    clock.register((t) => ticks.push(t));
    timers.fireNext();
    expect(ticks.map((t) => t.scheduledMs)).toEqual([5020]);
  });

  it('lets a listener unregister itself during a tick without disturbing the others', () => {
    const timers = new FakeTimers();
    const clock = new MediaClock({ timers });
    const seen: string[] = [];
    const off = clock.register(() => {
      seen.push('a');
      off();
    });
    clock.register(() => seen.push('b'));
    timers.fireNext();
    timers.fireNext();
    expect(seen).toEqual(['a', 'b', 'b']);
  });

  it('isolates a throwing listener', () => {
    const timers = new FakeTimers();
    const errors: unknown[] = [];
    const clock = new MediaClock({ timers, onListenerError: (e) => errors.push(e) });
    let good = 0;
    clock.register(() => {
      throw new Error('boom');
    });
    clock.register(() => good++);
    timers.fireNext();
    timers.fireNext();
    expect(good).toBe(2);
    expect(errors).toHaveLength(2);
    expect(clock.stats.listenerErrors).toBe(2);
  });

  it('keeps the grid when the only listener leaves and another joins inside the same tick', () => {
    const timers = new FakeTimers();
    const clock = new MediaClock({ timers });
    const ticks: ClockTick[] = [];
    const off = clock.register(() => {
      off();
      clock.register((t) => ticks.push(t));
    });
    timers.fireNext();
    timers.fireNext();
    // The newcomer joins the tick being dispatched, and the schedule is not restarted.
    expect(ticks.map((t) => t.scheduledMs)).toEqual([1020, 1040]);
  });

  it('ticks in real time without drifting', async () => {
    const clock = new MediaClock();
    const ticks: ClockTick[] = [];
    const off = clock.register((t) => ticks.push(t));
    await new Promise((r) => setTimeout(r, 420));
    off();
    expect(clock.running).toBe(false);
    expect(ticks.length).toBeGreaterThanOrEqual(15);
    expect(ticks.length).toBeLessThanOrEqual(22);
    const first = ticks[0] as ClockTick;
    for (const [i, t] of ticks.entries()) {
      expect(t.index).toBe(first.index + i);
      expect(t.scheduledMs - first.scheduledMs).toBeCloseTo(i * 20, 6);
      expect(t.firedMs).toBeGreaterThanOrEqual(t.scheduledMs - 0.5);
    }
  });
});
