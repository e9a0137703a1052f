import { describe, expect, it } from 'vitest';
import { JitterBuffer, type JitterBufferOptions, type JitterSink } from '../../src/rtp/jitter-buffer.js';
import { seqDelta, tsDelta } from '../../src/rtp/wrap.js';

type Event = { kind: 'play'; seq: number; ts: number; at: number; byte: number } | { kind: 'conceal'; frames: number; first: number; ts: number; at: number };

class Recorder implements JitterSink {
  readonly events: Event[] = [];
  release(payload: Uint8Array, seq: number, ts: number, arrivalMs: number): void {
    this.events.push({ kind: 'play', seq, ts, at: arrivalMs, byte: payload[0] as number });
  }
  conceal(frames: number, first: number, ts: number, nowMs: number): void {
    this.events.push({ kind: 'conceal', frames, first, ts, at: nowMs });
  }
  /** Compact trace: played sequence numbers, and `C<n>` for n concealed frames. */
  trace(): string[] {
    return this.events.map((e) => (e.kind === 'play' ? String(e.seq) : `C${e.frames}`));
  }
  clear(): void {
    this.events.length = 0;
  }
}

const SSRC = 0x11223344;

function setup(opts: Partial<JitterBufferOptions> = {}): { jb: JitterBuffer; rec: Recorder; push: (seq: number, at: number, o?: { ts?: number; ssrc?: number }) => string } {
  const rec = new Recorder();
  const jb = new JitterBuffer(rec, { clockRate: 8000, samplesPerPacket: 160, ...opts });
  const base = 1000;
  const push = (seq: number, at: number, o: { ts?: number; ssrc?: number } = {}): string =>
    jb.push(
      {
        ssrc: o.ssrc ?? SSRC,
        sequenceNumber: seq & 0xffff,
        timestamp: o.ts ?? (base + (seq - 100) * 160) >>> 0,
        payload: Uint8Array.of(seq & 0xff),
      },
      at,
    );
  return { jb, rec, push };
}

describe('wrap helpers', () => {
  it('computes signed deltas across the wrap', () => {
    expect(seqDelta(0, 65535)).toBe(1);
    expect(seqDelta(65535, 0)).toBe(-1);
    expect(seqDelta(100, 100)).toBe(0);
    expect(seqDelta(32767, 0)).toBe(32767);
    expect(seqDelta(32768, 0)).toBe(-32768);
    expect(tsDelta(0, 0xffffff60)).toBe(160);
    expect(tsDelta(0xffffff60, 0)).toBe(-160);
  });
});

describe('JitterBuffer', () => {
  it('releases in-order packets immediately with their arrival time', () => {
    const { jb, rec, push } = setup();
    expect(push(100, 0)).toBe('first');
    expect(push(101, 20)).toBe('in_order');
    expect(push(102, 40)).toBe('in_order');
    expect(rec.events).toEqual([
      { kind: 'play', seq: 100, ts: 1000, at: 0, byte: 100 },
      { kind: 'play', seq: 101, ts: 1160, at: 20, byte: 101 },
      { kind: 'play', seq: 102, ts: 1320, at: 40, byte: 102 },
    ]);
    expect(jb.held).toBe(0);
    expect(jb.stats).toMatchObject({ received: 3, released: 3, lost: 0, reordered: 0 });
  });

  it('holds packets behind a gap and releases them in order when the missing one arrives', () => {
    const { jb, rec, push } = setup();
    push(100, 0);
    expect(push(102, 40)).toBe('held');
    expect(push(103, 45)).toBe('held');
    expect(rec.trace()).toEqual(['100']);
    expect(jb.held).toBe(2);
    expect(push(101, 50)).toBe('in_order');
    expect(rec.trace()).toEqual(['100', '101', '102', '103']);
    // Held packets keep their own arrival times.
    expect(rec.events.map((e) => e.at)).toEqual([0, 50, 40, 45]);
    expect(jb.stats).toMatchObject({ released: 4, reordered: 1, lost: 0, concealed: 0 });
  });

  it('conceals a lost packet once the hold time expires on the next push', () => {
    const { jb, rec, push } = setup({ maxHoldMs: 40 });
    push(100, 0);
    push(102, 40);
    push(103, 60);
    expect(rec.trace()).toEqual(['100']);
    push(104, 80); // 102 has waited 40 ms
    expect(rec.trace()).toEqual(['100', 'C1', '102', '103', '104']);
    const c = rec.events[1];
    expect(c).toEqual({ kind: 'conceal', frames: 1, first: 101, ts: 1160, at: 80 });
    expect(jb.stats).toMatchObject({ lost: 1, concealed: 1, released: 4 });
    // The missing packet arriving now is late, not a duplicate.
    expect(push(101, 90)).toBe('late');
    expect(jb.stats.late).toBe(1);
  });

  it('releases on poll() when no further packet arrives', () => {
    const { jb, rec, push } = setup({ maxHoldMs: 40 });
    push(100, 0);
    push(103, 20);
    jb.poll(59);
    expect(rec.trace()).toEqual(['100']);
    jb.poll(60);
    expect(rec.trace()).toEqual(['100', 'C2', '103']);
    expect(jb.stats).toMatchObject({ lost: 2, concealed: 2 });
    expect(jb.held).toBe(0);
  });

  it('gives up on a gap when more than maxHoldPackets are held', () => {
    const { rec, push } = setup({ maxHoldPackets: 3, maxHoldMs: 1000 });
    push(100, 0);
    push(102, 1);
    push(103, 2);
    push(104, 3);
    expect(rec.trace()).toEqual(['100']);
    push(105, 4);
    expect(rec.trace()).toEqual(['100', 'C1', '102', '103', '104', '105']);
  });

  it('handles several gaps, each with its own hold deadline', () => {
    const { rec, push, jb } = setup({ maxHoldMs: 40 });
    push(100, 0);
    push(102, 20); // gap at 101
    push(104, 30); // gap at 103
    jb.poll(60); // 102 expired: conceal 101, release 102; 104 (arrived 30) still has time
    expect(rec.trace()).toEqual(['100', 'C1', '102']);
    push(103, 65); // fills the second gap in time
    expect(rec.trace()).toEqual(['100', 'C1', '102', '103', '104']);
  });

  it('caps concealment per gap at maxConcealFrames but counts every lost packet', () => {
    const { jb, rec, push } = setup({ maxConcealFrames: 4 });
    push(100, 0);
    push(130, 20);
    jb.poll(60);
    expect(rec.trace()).toEqual(['100', 'C4', '130']);
    expect(jb.stats).toMatchObject({ lost: 29, concealed: 4 });
  });

  it('counts duplicates of played and of held packets', () => {
    const { jb, rec, push } = setup();
    push(100, 0);
    push(101, 20);
    expect(push(101, 21)).toBe('duplicate');
    expect(push(100, 22)).toBe('duplicate');
    push(103, 30);
    expect(push(103, 31)).toBe('duplicate');
    expect(jb.stats.duplicates).toBe(3);
    expect(rec.trace()).toEqual(['100', '101']);
  });

  it('treats a packet older than the first one as late (it was never played)', () => {
    const { jb, push } = setup();
    push(100, 0);
    expect(push(99, 5)).toBe('late');
    expect(jb.stats.late).toBe(1);
  });

  it('resets on SSRC change, playing out what the old stream held', () => {
    const { jb, rec, push } = setup();
    push(100, 0);
    push(102, 20);
    expect(push(5000, 30, { ssrc: 0xabcdef })).toBe('new_ssrc');
    expect(rec.trace()).toEqual(['100', 'C1', '102', '5000']);
    expect(push(5001, 50, { ssrc: 0xabcdef, ts: 1000 + 4901 * 160 })).toBe('in_order');
    expect(jb.stats.ssrcChanges).toBe(1);
    expect(jb.stats.resyncs).toBe(0);
  });

  it('resyncs on a huge sequence jump instead of concealing thousands of frames', () => {
    const { jb, rec, push } = setup();
    push(100, 0);
    expect(push(100 + 30000, 20)).toBe('resync');
    expect(push(100 + 30001, 40)).toBe('in_order');
    expect(rec.trace()).toEqual(['100', '30100', '30101']);
    expect(jb.stats).toMatchObject({ resyncs: 1, lost: 0, concealed: 0 });
  });

  it('resyncs on a jump just beyond maxJumpPackets, but holds one just within', () => {
    const within = setup({ maxJumpPackets: 100 });
    within.push(100, 0);
    expect(within.push(201, 1)).toBe('held');
    const beyond = setup({ maxJumpPackets: 100 });
    beyond.push(100, 0);
    expect(beyond.push(202, 1)).toBe('resync');
  });

  it('resyncs when a packet is behind by more than the window', () => {
    const { jb, push } = setup();
    push(1000, 0);
    expect(push(1000 - 50, 1)).toBe('late');
    expect(push(1000 - 200, 2)).toBe('resync');
    expect(jb.stats.resyncs).toBe(1);
  });

  it('resyncs when the timestamp departs from the sequence by more than 2 s', () => {
    const { jb, rec, push } = setup();
    const ts100 = 1000;
    const ts101 = ts100 + 160 + 16000; // 2 s of suppressed silence: still the same stream
    const ts102 = ts101 + 160 + 16001; // just over 2 s
    const ts103 = ts102 + 160 - 16001; // backwards by more than the 100-packet window
    push(100, 0, { ts: ts100 });
    expect(push(101, 20, { ts: ts101 })).toBe('in_order');
    expect(push(102, 40, { ts: ts102 })).toBe('resync');
    expect(push(103, 60, { ts: ts103 })).toBe('resync');
    expect(rec.trace()).toEqual(['100', '101', '102', '103']);
    expect(jb.stats.resyncs).toBe(2);
  });

  it('does not resync when sequence and timestamp advance together past 2 s', () => {
    const { jb, push } = setup();
    push(100, 0);
    expect(push(200, 20)).toBe('held'); // 100 packets = 2 s ahead, consistent timestamps
    expect(jb.stats.resyncs).toBe(0);
  });

  it('handles sequence number wraparound at 2^16', () => {
    const { jb, rec, push } = setup();
    push(65534, 0);
    push(65535, 20);
    push(65537, 40); // seq 1: gap at 0
    push(65536, 45); // seq 0 fills it
    push(65538, 60);
    expect(rec.trace()).toEqual(['65534', '65535', '0', '1', '2']);
    expect(push(65535, 70)).toBe('duplicate');
    expect(jb.stats).toMatchObject({ lost: 0, reordered: 1, resyncs: 0 });
  });

  it('conceals across the sequence wrap', () => {
    const { jb, rec, push } = setup();
    push(65534, 0);
    push(65537, 20); // 65535 and 0 missing
    jb.poll(60);
    expect(rec.trace()).toEqual(['65534', 'C2', '1']);
    expect(rec.events[1]).toMatchObject({ first: 65535 });
  });

  it('handles timestamp wraparound at 2^32 without a resync', () => {
    const { jb, rec, push } = setup();
    const ts0 = 0xffffff00;
    push(10, 0, { ts: ts0 });
    push(11, 20, { ts: (ts0 + 160) >>> 0 });
    push(12, 40, { ts: (ts0 + 320) >>> 0 }); // wrapped: 0x40
    push(14, 60, { ts: (ts0 + 640) >>> 0 });
    jb.poll(100);
    expect(rec.trace()).toEqual(['10', '11', '12', 'C1', '14']);
    expect(rec.events[3]).toMatchObject({ ts: (ts0 + 480) >>> 0 });
    expect(jb.stats.resyncs).toBe(0);
  });

  it('survives a long random reorder/loss/duplicate stream with consistent accounting', () => {
    const { jb, rec, push } = setup({ maxHoldMs: 40 });
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const start = 65000; // crosses the wrap
    const arrivals: { seq: number; at: number }[] = [];
    for (let i = 0; i < 5000; i++) {
      if (rand() < 0.05) continue; // lost
      const at = i * 20 + rand() * 70; // up to 70 ms of network jitter reorders packets
      arrivals.push({ seq: start + i, at });
      if (rand() < 0.02) arrivals.push({ seq: start + i, at: at + 5 }); // duplicate
    }
    arrivals.sort((a, b) => a.at - b.at);
    for (const a of arrivals) push(a.seq, a.at);
    jb.flush(1e9);
    const s = jb.stats;
    expect(s.received).toBe(arrivals.length);
    expect(s.received).toBe(s.released + s.duplicates + s.late);
    expect(s.resyncs).toBe(0);
    // Played + concealed slots cover the stream exactly once, in order.
    let expected = start & 0xffff;
    for (const e of rec.events) {
      if (e.kind === 'play') {
        expect(e.seq).toBe(expected);
        expected = (expected + 1) & 0xffff;
      } else {
        expect(e.first).toBe(expected);
        expected = (expected + e.frames) & 0xffff;
      }
    }
    // Trailing losses have no later packet to reveal them, so coverage ends at the last arrival.
    const lastArrived = Math.max(...arrivals.map((a) => a.seq));
    expect(expected).toBe((lastArrived + 1) & 0xffff);
    expect(s.reordered).toBeGreaterThan(0);
    expect(s.late).toBeGreaterThan(0);
    expect(s.lost).toBeGreaterThanOrEqual(s.concealed);
  });

  it('rejects nonsensical options', () => {
    const rec = new Recorder();
    expect(() => new JitterBuffer(rec, { clockRate: 8000, samplesPerPacket: 0 })).toThrow(RangeError);
    expect(() => new JitterBuffer(rec, { clockRate: 8000, samplesPerPacket: 160, maxHoldMs: -1 })).toThrow(RangeError);
    expect(() => new JitterBuffer(rec, { clockRate: 8000, samplesPerPacket: 160, maxHoldPackets: 200 })).toThrow(RangeError);
  });
});
