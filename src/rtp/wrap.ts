/** Modular arithmetic for RTP's wrapping counters. */

/** Signed distance `a - b` between 16-bit sequence numbers, in [-32768, 32767]. */
export function seqDelta(a: number, b: number): number {
  return ((((a - b) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}

/** `seq + n` modulo 2^16. */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) & 0xffff;
}

/** Signed distance `a - b` between 32-bit timestamps, in [-2^31, 2^31). */
export function tsDelta(a: number, b: number): number {
  return (a - b) | 0;
}

/** `ts + n` modulo 2^32 (as an unsigned number). */
export function tsAdd(ts: number, n: number): number {
  return (ts + n) >>> 0;
}
