import { describe, expect, it } from 'vitest';
import { parseRtp, serializeRtp, type RtpPacket, type RtpDropReason, RTP_DROP_REASONS } from '../../src/rtp/packet.js';

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 0x5eed_2024;
const ITERATIONS = 200_000;

function randomInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = randomInt(rand, 256);
  return b;
}

function randomValidPacket(rand: () => number): Uint8Array {
  const csrcs = Array.from({ length: rand() < 0.2 ? randomInt(rand, 16) : 0 }, () => randomInt(rand, 2 ** 32));
  const extension = rand() < 0.2 ? { profile: randomInt(rand, 65536), data: randomBytes(rand, 4 * randomInt(rand, 5)) } : null;
  return serializeRtp(
    {
      marker: rand() < 0.5,
      payloadType: [0, 8, 101, 118, randomInt(rand, 128)][randomInt(rand, 5)] as number,
      sequenceNumber: randomInt(rand, 65536),
      timestamp: randomInt(rand, 2 ** 32),
      ssrc: randomInt(rand, 2 ** 32),
      csrcs,
      extension,
      paddingLength: rand() < 0.2 ? 1 + randomInt(rand, 255) : 0,
    },
    randomBytes(rand, 1 + randomInt(rand, 200)),
  );
}

function mutate(rand: () => number, valid: Uint8Array): Uint8Array {
  const b = valid.slice();
  switch (randomInt(rand, 4)) {
    case 0: {
      const flips = 1 + randomInt(rand, 4);
      for (let i = 0; i < flips; i++) {
        const bit = randomInt(rand, b.length * 8);
        b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
      }
      return b;
    }
    case 1:
      return b.subarray(0, randomInt(rand, b.length + 1));
    case 2: {
      // Flip bits only in the first byte (version / P / X / CC) and the last byte (padding count).
      b[0] = (b[0] as number) ^ (1 << randomInt(rand, 8));
      b[b.length - 1] = randomInt(rand, 256);
      return b;
    }
    default: {
      const extra = randomBytes(rand, randomInt(rand, 8));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      return out;
    }
  }
}

function fieldsOf(p: RtpPacket): unknown {
  return {
    marker: p.marker,
    payloadType: p.payloadType,
    sequenceNumber: p.sequenceNumber,
    timestamp: p.timestamp,
    ssrc: p.ssrc,
    csrcs: [...p.csrcs],
    extension: p.extension ? { profile: p.extension.profile, data: Array.from(p.extension.data) } : null,
    paddingLength: p.paddingLength,
    payload: Array.from(p.payload),
  };
}

describe('parseRtp fuzz', () => {
  it(`never throws on ${ITERATIONS} random and mutated datagrams, and every accepted packet round-trips (seed ${SEED})`, () => {
    const rand = prng(SEED);
    const counts = new Map<RtpDropReason | 'ok', number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const kind = i % 3;
      const buf =
        kind === 0
          ? randomBytes(rand, randomInt(rand, 301))
          : kind === 1
            ? mutate(rand, randomValidPacket(rand))
            : // Random bytes with a plausible first byte, to get past the version check often.
              (() => {
                const b = randomBytes(rand, randomInt(rand, 301));
                if (b.length > 0) b[0] = 0x80 | ((b[0] as number) & 0x3f);
                return b;
              })();
      const r = parseRtp(buf);
      counts.set(r.ok ? 'ok' : r.reason, (counts.get(r.ok ? 'ok' : r.reason) ?? 0) + 1);
      if (!r.ok) continue;
      const again = serializeRtp(r.packet, r.packet.payload);
      const r2 = parseRtp(again);
      if (!r2.ok) expect.fail(`iteration ${i}: re-serialised packet rejected: ${r2.reason}`);
      if (JSON.stringify(fieldsOf(r2.packet)) !== JSON.stringify(fieldsOf(r.packet))) {
        expect(fieldsOf(r2.packet), `iteration ${i}`).toEqual(fieldsOf(r.packet));
      }
    }
    // The corpus must exercise acceptance and every rejection reason, or it proves little.
    expect(counts.get('ok') ?? 0).toBeGreaterThan(10_000);
    for (const reason of RTP_DROP_REASONS) expect(counts.get(reason) ?? 0, reason).toBeGreaterThan(0);
  });
});
