import { describe, expect, it } from 'vitest';
import {
  createRtpPacket,
  parseRtp,
  parseRtpInto,
  rtpPacketSize,
  serializeRtp,
  writeRtpFixedHeader,
  type RtpDropReason,
  type RtpHeader,
} from '../../src/rtp/packet.js';

/** A hand-assembled valid packet: V=2, PT 0, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, 4-byte payload. */
function basic(): Uint8Array {
  return Uint8Array.of(0x80, 0x00, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc, 0xdd);
}

function reasonOf(buf: Uint8Array): RtpDropReason | 'ok' {
  const r = parseRtp(buf);
  return r.ok ? 'ok' : r.reason;
}

describe('parseRtp: valid packets', () => {
  it('parses every fixed header field', () => {
    const r = parseRtp(basic());
    if (!r.ok) throw new Error(r.reason);
    expect(r.packet).toMatchObject({
      marker: false,
      payloadType: 0,
      sequenceNumber: 0x1234,
      timestamp: 0xdeadbeef,
      ssrc: 0x01020304,
      csrcs: [],
      extension: null,
      paddingLength: 0,
    });
    expect(Array.from(r.packet.payload)).toEqual([0xaa, 0xbb, 0xcc, 0xdd]);
  });

  it('returns the payload as a view into the datagram, not a copy', () => {
    const buf = basic();
    const r = parseRtp(buf);
    if (!r.ok) throw new Error(r.reason);
    expect(r.packet.payload.buffer).toBe(buf.buffer);
    expect(r.packet.payload.byteOffset).toBe(12);
  });

  it('parses marker, payload type 127, CSRCs, a header extension and padding', () => {
    const header: RtpHeader = {
      marker: true,
      payloadType: 127,
      sequenceNumber: 65535,
      timestamp: 0xffffffff,
      ssrc: 0xffffffff,
      csrcs: [1, 0xffffffff, 7],
      extension: { profile: 0xbede, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) },
      paddingLength: 3,
    };
    const bytes = serializeRtp(header, Uint8Array.of(9, 8, 7));
    expect(bytes.length).toBe(12 + 12 + 4 + 8 + 3 + 3);
    expect(bytes[0]).toBe(0x80 | 0x20 | 0x10 | 3);
    expect(bytes[bytes.length - 1]).toBe(3);
    const r = parseRtp(bytes);
    if (!r.ok) throw new Error(r.reason);
    expect(r.packet.marker).toBe(true);
    expect(r.packet.payloadType).toBe(127);
    expect(r.packet.sequenceNumber).toBe(65535);
    expect(r.packet.timestamp).toBe(0xffffffff);
    expect(r.packet.ssrc).toBe(0xffffffff);
    expect(r.packet.csrcs).toEqual([1, 0xffffffff, 7]);
    expect(r.packet.extension?.profile).toBe(0xbede);
    expect(Array.from(r.packet.extension?.data ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.packet.paddingLength).toBe(3);
    expect(Array.from(r.packet.payload)).toEqual([9, 8, 7]);
  });

  it('accepts an extension with zero words and padding of one byte', () => {
    const bytes = serializeRtp(
      { marker: false, payloadType: 8, sequenceNumber: 1, timestamp: 2, ssrc: 3, extension: { profile: 1, data: new Uint8Array(0) }, paddingLength: 1 },
      Uint8Array.of(0x55),
    );
    const r = parseRtp(bytes);
    if (!r.ok) throw new Error(r.reason);
    expect(r.packet.extension?.data.length).toBe(0);
    expect(r.packet.paddingLength).toBe(1);
    expect(Array.from(r.packet.payload)).toEqual([0x55]);
  });

  it('accepts payload types 72..76 without the marker bit (second byte 72..76 is RTP)', () => {
    for (let pt = 72; pt <= 76; pt++) {
      const b = basic();
      b[1] = pt;
      expect(reasonOf(b)).toBe('ok');
    }
  });

  it('reuses the target packet object with parseRtpInto', () => {
    const p = createRtpPacket();
    const withCsrc = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: 1, timestamp: 1, ssrc: 1, csrcs: [5, 6] }, Uint8Array.of(1));
    expect(parseRtpInto(withCsrc, p)).toBeNull();
    expect(p.csrcs).toEqual([5, 6]);
    const csrcs = p.csrcs;
    expect(parseRtpInto(basic(), p)).toBeNull();
    expect(p.csrcs).toBe(csrcs);
    expect(p.csrcs).toEqual([]);
    expect(p.sequenceNumber).toBe(0x1234);
  });
});

describe('parseRtp: malformed packets', () => {
  it('rejects every truncated header length 0..11 as too_short', () => {
    const full = basic();
    for (let n = 0; n < 12; n++) expect(reasonOf(full.subarray(0, n)), `length ${n}`).toBe('too_short');
  });

  it('rejects versions 0, 1 and 3', () => {
    for (const v of [0, 1, 3]) {
      const b = basic();
      b[0] = (v << 6) | ((b[0] as number) & 0x3f);
      expect(reasonOf(b), `version ${v}`).toBe('bad_version');
    }
  });

  it('rejects a CSRC count that runs past the end', () => {
    const b = basic();
    b[0] = 0x80 | 15; // needs 12 + 60 bytes of header; the packet has 16
    expect(reasonOf(b)).toBe('csrc_overflow');
    // Exactly enough room for the CSRCs but nothing left is an empty payload.
    const exact = new Uint8Array(12 + 60);
    exact.set(basic().subarray(0, 12));
    exact[0] = 0x80 | 15;
    expect(reasonOf(exact)).toBe('empty_payload');
  });

  it('rejects a header extension whose header or body runs past the end', () => {
    // X set, but fewer than 4 bytes after the fixed header.
    const noRoom = Uint8Array.of(0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde);
    expect(reasonOf(noRoom)).toBe('extension_overflow');
    // X set, length says 2 words (8 bytes) but only 4 follow.
    const shortBody = Uint8Array.of(0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0x00, 0x02, 1, 2, 3, 4);
    expect(reasonOf(shortBody)).toBe('extension_overflow');
    // Maximum length field.
    const huge = Uint8Array.of(0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4);
    expect(reasonOf(huge)).toBe('extension_overflow');
  });

  it('rejects a padding count larger than the payload', () => {
    const b = basic();
    b[0] = 0xa0; // P set
    b[15] = 5; // 5 bytes of padding but only 4 bytes after the header
    expect(reasonOf(b)).toBe('padding_overflow');
    b[15] = 255;
    expect(reasonOf(b)).toBe('padding_overflow');
  });

  it('rejects padding that leaves no payload as empty_payload', () => {
    const b = basic();
    b[0] = 0xa0;
    b[15] = 4;
    expect(reasonOf(b)).toBe('empty_payload');
  });

  it('rejects a zero padding count', () => {
    const b = basic();
    b[0] = 0xa0;
    b[15] = 0;
    expect(reasonOf(b)).toBe('bad_padding');
  });

  it('rejects a header with no payload', () => {
    expect(reasonOf(basic().subarray(0, 12))).toBe('empty_payload');
  });

  it('rejects RTCP arriving on the RTP port (second byte 200..204 and the rest of RFC 5761 range)', () => {
    for (let pt = 192; pt <= 223; pt++) {
      const b = basic();
      b[1] = pt;
      expect(reasonOf(b), `second byte ${pt}`).toBe('rtcp');
    }
    // A real RTCP receiver report with one report block (32 bytes).
    const rr = new Uint8Array(32);
    rr.set([0x81, 201, 0x00, 0x07]);
    expect(reasonOf(rr)).toBe('rtcp');
  });

  it('checks the version before the RTCP range', () => {
    const b = basic();
    b[0] = 0x40;
    b[1] = 200;
    expect(reasonOf(b)).toBe('bad_version');
  });
});

describe('serializeRtp', () => {
  const header: RtpHeader = { marker: true, payloadType: 0, sequenceNumber: 7, timestamp: 160, ssrc: 42 };

  it('writes into a reusable buffer and returns the written view', () => {
    const out = new Uint8Array(1500);
    const a = serializeRtp(header, new Uint8Array(160).fill(0xff), out);
    expect(a.buffer).toBe(out.buffer);
    expect(a.length).toBe(172);
    expect(Array.from(a.subarray(0, 12))).toEqual([0x80, 0x80, 0, 7, 0, 0, 0, 160, 0, 0, 0, 42]);
    const b = serializeRtp({ ...header, marker: false, sequenceNumber: 8 }, Uint8Array.of(1), out);
    expect(b.buffer).toBe(out.buffer);
    expect(b.length).toBe(13);
    expect(b[1]).toBe(0x00);
  });

  it('matches the fixed-header writer used by the pacer', () => {
    const a = serializeRtp({ marker: false, payloadType: 118, sequenceNumber: 0xfffe, timestamp: 0x89abcdef, ssrc: 0xfedcba98 }, Uint8Array.of(0));
    const b = new Uint8Array(13);
    writeRtpFixedHeader(b, false, 118, 0xfffe, 0x89abcdef, 0xfedcba98);
    expect(Array.from(b.subarray(0, 12))).toEqual(Array.from(a.subarray(0, 12)));
  });

  it('computes the size it writes', () => {
    const h: RtpHeader = { ...header, csrcs: [1], extension: { profile: 1, data: new Uint8Array(8) }, paddingLength: 4 };
    expect(rtpPacketSize(h, 10)).toBe(12 + 4 + 12 + 10 + 4);
    expect(serializeRtp(h, new Uint8Array(10)).length).toBe(42);
  });

  it('rejects out-of-range fields and a too-small output buffer', () => {
    const p = Uint8Array.of(1);
    expect(() => serializeRtp({ ...header, payloadType: 128 }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, sequenceNumber: 65536 }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, timestamp: -1 }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, ssrc: 2 ** 32 }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, csrcs: new Array<number>(16).fill(0) }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, extension: { profile: 0, data: new Uint8Array(3) } }, p)).toThrow(RangeError);
    expect(() => serializeRtp({ ...header, paddingLength: 256 }, p)).toThrow(RangeError);
    expect(() => serializeRtp(header, p, new Uint8Array(12))).toThrow(RangeError);
  });
});
