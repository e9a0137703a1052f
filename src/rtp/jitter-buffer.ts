/**
 * A small low-latency reordering jitter buffer for one inbound RTP stream.
 *
 * - In-order packets are released immediately: no added latency in the normal case.
 * - When a gap appears, later packets are held until the missing one arrives, or the
 *   oldest held packet has waited `maxHoldMs`, or more than `maxHoldPackets` are held.
 *   Then the missing packets are declared lost, the sink is asked to conceal them (at
 *   most `maxConcealFrames`), and the held run is released.
 * - Duplicates and late packets (already released or concealed) are dropped and counted.
 * - A new SSRC, or a sequence/timestamp jump beyond the window, starts a new stream.
 *
 * Time is injected (`nowMs`) so the buffer is deterministic; `poll(nowMs)` releases held
 * packets whose wait has expired when no further packet arrives to trigger it.
 * Nothing on the per-packet path throws or allocates.
 */
import { seqAdd, seqDelta, tsAdd, tsDelta } from './wrap.js';

export interface JitterBufferOptions {
  /** RTP clock rate of the stream (8000 for G.711, 16000 for slin16). */
  clockRate: number;
  /** Timestamp units per packet (samples per 20 ms). */
  samplesPerPacket: number;
  /** Longest a packet is held waiting for a missing earlier one. Default 40. */
  maxHoldMs?: number;
  /** Most packets held behind a gap before it is given up on. Default 8. */
  maxHoldPackets?: number;
  /** Most frames concealed for one gap; longer gaps are not filled beyond this. Default 10. */
  maxConcealFrames?: number;
  /** A sequence jump beyond this (ahead, or behind the window) starts a new stream. Default 100. */
  maxJumpPackets?: number;
  /** A timestamp ahead of what the sequence implies by more than this starts a new stream. Default 2000. */
  maxJumpMs?: number;
}

/** Receives the buffer's output, in playout order. */
export interface JitterSink {
  /** The next packet in sequence. `payload` may be kept (it is the datagram's view). */
  release(payload: Uint8Array, sequenceNumber: number, timestamp: number, arrivalMs: number): void;
  /** `frames` lost packets to fill, starting at `firstSequenceNumber`, before the next release. */
  conceal(frames: number, firstSequenceNumber: number, firstTimestamp: number, nowMs: number): void;
}

/** The fields the buffer reads from a packet. */
export interface JitterInput {
  readonly ssrc: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly payload: Uint8Array;
}

/** What `push` did with a packet. */
export type JitterVerdict = 'first' | 'in_order' | 'held' | 'duplicate' | 'late' | 'resync' | 'new_ssrc';

export interface JitterStats {
  /** Packets pushed. */
  received: number;
  /** Packets handed to the sink. */
  released: number;
  duplicates: number;
  /** Arrived after their slot had been played out or concealed. */
  late: number;
  /** Arrived after a later packet but in time to be played. */
  reordered: number;
  /** Sequence numbers never received before their slot was given up on. */
  lost: number;
  /** Frames the sink was asked to conceal (lost, capped per gap). */
  concealed: number;
  ssrcChanges: number;
  resyncs: number;
}

export function emptyJitterStats(): JitterStats {
  return { received: 0, released: 0, duplicates: 0, late: 0, reordered: 0, lost: 0, concealed: 0, ssrcChanges: 0, resyncs: 0 };
}

const NONE = -1;

export class JitterBuffer {
  readonly stats: JitterStats = emptyJitterStats();

  private readonly samplesPerPacket: number;
  private readonly maxHoldMs: number;
  private readonly maxHoldPackets: number;
  private readonly maxConcealFrames: number;
  private readonly maxJumpPackets: number;
  private readonly maxJumpTicks: number;
  private readonly mask: number;

  // Held packets, indexed by sequence number & mask.
  private readonly heldSeq: Int32Array;
  private readonly heldTs: Float64Array;
  private readonly heldArrival: Float64Array;
  private readonly heldPayload: (Uint8Array | null)[];
  private heldCount = 0;
  private oldestHeldArrival = Infinity;
  // Sequence numbers released recently, to tell duplicates from late packets.
  private readonly releasedSeq: Int32Array;

  private started = false;
  private ssrc = 0;
  private nextSeq = 0;
  private highestSeq = 0;
  private lastTs = 0;

  constructor(
    private readonly sink: JitterSink,
    opts: JitterBufferOptions,
  ) {
    const positive = (name: string, v: number): number => {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`jitter buffer ${name} must be positive, got ${v}`);
      return v;
    };
    this.samplesPerPacket = positive('samplesPerPacket', opts.samplesPerPacket);
    const clockRate = positive('clockRate', opts.clockRate);
    this.maxHoldMs = positive('maxHoldMs', opts.maxHoldMs ?? 40);
    this.maxHoldPackets = Math.floor(positive('maxHoldPackets', opts.maxHoldPackets ?? 8));
    this.maxConcealFrames = Math.floor(opts.maxConcealFrames ?? 10);
    if (this.maxConcealFrames < 0) throw new RangeError('jitter buffer maxConcealFrames must be >= 0');
    this.maxJumpPackets = Math.floor(positive('maxJumpPackets', opts.maxJumpPackets ?? 100));
    if (this.maxJumpPackets > 16384) throw new RangeError('jitter buffer maxJumpPackets must be <= 16384');
    if (this.maxHoldPackets > this.maxJumpPackets) throw new RangeError('jitter buffer maxHoldPackets must be <= maxJumpPackets');
    this.maxJumpTicks = (positive('maxJumpMs', opts.maxJumpMs ?? 2000) * clockRate) / 1000;

    let size = 2;
    while (size <= this.maxJumpPackets) size <<= 1;
    this.mask = size - 1;
    this.heldSeq = new Int32Array(size).fill(NONE);
    this.heldTs = new Float64Array(size);
    this.heldArrival = new Float64Array(size);
    this.heldPayload = new Array<Uint8Array | null>(size).fill(null);
    this.releasedSeq = new Int32Array(size).fill(NONE);
  }

  /** Packets currently held behind a gap. */
  get held(): number {
    return this.heldCount;
  }

  /** Accept one packet that arrived at `nowMs`; releases whatever is now playable. */
  push(p: JitterInput, nowMs: number): JitterVerdict {
    this.stats.received++;
    const seq = p.sequenceNumber;
    if (!this.started) {
      this.restart(p, nowMs);
      return 'first';
    }
    if (p.ssrc !== this.ssrc) {
      this.stats.ssrcChanges++;
      this.restart(p, nowMs);
      return 'new_ssrc';
    }

    const ahead = seqDelta(seq, this.nextSeq);
    if (ahead < 0) {
      if (ahead < -this.maxJumpPackets) return this.resync(p, nowMs);
      if (this.releasedSeq[seq & this.mask] === seq) {
        this.stats.duplicates++;
        return 'duplicate';
      }
      this.stats.late++;
      return 'late';
    }
    if (ahead > this.maxJumpPackets || this.timestampJumped(p.timestamp, ahead)) return this.resync(p, nowMs);

    const slot = seq & this.mask;
    if (this.heldSeq[slot] === seq) {
      this.stats.duplicates++;
      return 'duplicate';
    }
    if (seqDelta(seq, this.highestSeq) < 0) this.stats.reordered++;
    else this.highestSeq = seq;

    if (ahead === 0) {
      this.release(p.payload, seq, p.timestamp, nowMs);
      this.releaseHeldRun();
      this.expire(nowMs);
      return 'in_order';
    }

    this.heldSeq[slot] = seq;
    this.heldTs[slot] = p.timestamp;
    this.heldArrival[slot] = nowMs;
    this.heldPayload[slot] = p.payload;
    this.heldCount++;
    if (nowMs < this.oldestHeldArrival) this.oldestHeldArrival = nowMs;
    while (this.heldCount > this.maxHoldPackets) this.skipGap(nowMs);
    this.expire(nowMs);
    return 'held';
  }

  /** Release held packets whose wait has expired. Call periodically (e.g. every 20 ms). */
  poll(nowMs: number): void {
    this.expire(nowMs);
  }

  /** Give up on every gap now: conceal and release everything held. */
  flush(nowMs: number): void {
    while (this.heldCount > 0) this.skipGap(nowMs);
  }

  /** Forget the stream (held packets are discarded, stats are kept). */
  reset(): void {
    this.discardHeld();
    this.releasedSeq.fill(NONE);
    this.started = false;
  }

  /**
   * Whether the timestamp departs from what the sequence distance implies by more than
   * the window (a sender restart, or silence suppressed for longer than `maxJumpMs`).
   * `ahead` is the packet's distance from `nextSeq`, which is always last released + 1.
   */
  private timestampJumped(ts: number, ahead: number): boolean {
    const excess = tsDelta(ts, this.lastTs) - (ahead + 1) * this.samplesPerPacket;
    return excess > this.maxJumpTicks || excess < -this.maxJumpPackets * this.samplesPerPacket;
  }

  private resync(p: JitterInput, nowMs: number): JitterVerdict {
    this.stats.resyncs++;
    this.restart(p, nowMs);
    return 'resync';
  }

  /** Play out what the old stream still holds, then start a new stream at `p`. */
  private restart(p: JitterInput, nowMs: number): void {
    this.flush(nowMs);
    this.releasedSeq.fill(NONE);
    this.started = true;
    this.ssrc = p.ssrc;
    this.highestSeq = p.sequenceNumber;
    this.release(p.payload, p.sequenceNumber, p.timestamp, nowMs);
  }

  private release(payload: Uint8Array, seq: number, ts: number, arrivalMs: number): void {
    this.releasedSeq[seq & this.mask] = seq;
    this.nextSeq = seqAdd(seq, 1);
    this.lastTs = ts;
    this.stats.released++;
    this.sink.release(payload, seq, ts, arrivalMs);
  }

  private releaseHeldRun(): void {
    for (;;) {
      const slot = this.nextSeq & this.mask;
      if (this.heldSeq[slot] !== this.nextSeq) return;
      const payload = this.heldPayload[slot] as Uint8Array;
      const seq = this.nextSeq;
      const ts = this.heldTs[slot] as number;
      const arrival = this.heldArrival[slot] as number;
      this.heldSeq[slot] = NONE;
      this.heldPayload[slot] = null;
      this.heldCount--;
      this.release(payload, seq, ts, arrival);
    }
  }

  private expire(nowMs: number): void {
    if (this.heldCount === 0) {
      this.oldestHeldArrival = Infinity;
      return;
    }
    while (this.heldCount > 0 && nowMs - this.oldestHeldArrival >= this.maxHoldMs) this.skipGap(nowMs);
  }

  /** Declare the packets before the earliest held one lost, conceal them, release the held run. */
  private skipGap(nowMs: number): void {
    let gap = 1;
    while (gap <= this.maxJumpPackets && this.heldSeq[seqAdd(this.nextSeq, gap) & this.mask] !== seqAdd(this.nextSeq, gap)) gap++;
    if (gap > this.maxJumpPackets) {
      // Unreachable while the invariants hold; recover rather than loop.
      this.discardHeld();
      return;
    }
    const firstMissing = this.nextSeq;
    const conceal = gap < this.maxConcealFrames ? gap : this.maxConcealFrames;
    this.stats.lost += gap;
    this.stats.concealed += conceal;
    this.nextSeq = seqAdd(firstMissing, gap);
    if (conceal > 0) this.sink.conceal(conceal, firstMissing, tsAdd(this.lastTs, this.samplesPerPacket), nowMs);
    this.releaseHeldRun();
    this.recomputeOldestHeld();
  }

  private recomputeOldestHeld(): void {
    let oldest = Infinity;
    if (this.heldCount > 0) {
      for (let i = 0; i <= this.mask; i++) {
        if (this.heldSeq[i] !== NONE && (this.heldArrival[i] as number) < oldest) oldest = this.heldArrival[i] as number;
      }
    }
    this.oldestHeldArrival = oldest;
  }

  private discardHeld(): void {
    this.heldSeq.fill(NONE);
    this.heldPayload.fill(null);
    this.heldCount = 0;
    this.oldestHeldArrival = Infinity;
  }
}
