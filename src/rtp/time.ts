/**
 * The media engine's one clock: monotonic milliseconds with sub-millisecond resolution
 * (`performance.now()`, hrtime-based). Inbound arrival stamps, outbound send stamps and
 * the media clock's schedule all use it, so they can be subtracted from each other.
 */
export function monotonicMs(): number {
  return performance.now();
}
