/**
 * RFC 3550 RTP packets: a validating parser that never throws and never copies the
 * payload, and a serialiser that writes into a caller-supplied buffer.
 */

export const RTP_HEADER_SIZE = 12;
export const RTP_VERSION = 2;

/** Why an inbound datagram is not a usable RTP packet. */
export type RtpDropReason =
  | 'too_short' // fewer than 12 bytes
  | 'bad_version' // version field is not 2
  | 'rtcp' // an RTCP packet multiplexed onto the RTP port (RFC 5761 §4)
  | 'csrc_overflow' // the CSRC list runs past the end
  | 'extension_overflow' // the header extension runs past the end
  | 'bad_padding' // P bit set with a padding count of zero
  | 'padding_overflow' // padding count runs into the header
  | 'empty_payload'; // a well-formed header with no payload

export const RTP_DROP_REASONS: readonly RtpDropReason[] = [
  'too_short',
  'bad_version',
  'rtcp',
  'csrc_overflow',
  'extension_overflow',
  'bad_padding',
  'padding_overflow',
  'empty_payload',
];

export interface RtpExtension {
  /** The 16-bit "defined by profile" field (0xBEDE for RFC 8285 one-byte headers). */
  readonly profile: number;
  /** Extension body, a multiple of 4 bytes. */
  readonly data: Uint8Array;
}

/** The fields a sender chooses; the input of `serializeRtp`. */
export interface RtpHeader {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly csrcs?: readonly number[];
  readonly extension?: RtpExtension | null;
  /** Padding bytes to append, including the final count byte (0 = no padding). */
  readonly paddingLength?: number;
}

export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  extension: RtpExtension | null;
  /** Padding bytes after the payload, including the count byte (0 when P is clear). */
  paddingLength: number;
  /** A view into the datagram (not a copy). */
  payload: Uint8Array;
}

export type RtpParseResult = { ok: true; packet: RtpPacket } | { ok: false; reason: RtpDropReason };

const EMPTY = new Uint8Array(0);

/** A blank packet for `parseRtpInto` to fill; reuse one per socket. */
export function createRtpPacket(): RtpPacket {
  return {
    marker: false,
    payloadType: 0,
    sequenceNumber: 0,
    timestamp: 0,
    ssrc: 0,
    csrcs: [],
    extension: null,
    paddingLength: 0,
    payload: EMPTY,
  };
}

function readUint32(b: Uint8Array, o: number): number {
  return (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0;
}

/**
 * Validate `buf` and fill `into` with its fields. Returns null on success, otherwise the
 * drop reason (and `into` holds partial garbage). The hot-path form of `parseRtp`: it
 * allocates nothing except the payload view (and the extension view when present).
 */
export function parseRtpInto(buf: Uint8Array, into: RtpPacket): RtpDropReason | null {
  const len = buf.length;
  if (len < RTP_HEADER_SIZE) return 'too_short';
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  if (b0 >> 6 !== RTP_VERSION) return 'bad_version';
  // RFC 5761 §4: RTCP packet types 192..223 occupy this byte where RTP has M + PT 64..95.
  if (b1 >= 192 && b1 <= 223) return 'rtcp';

  const csrcCount = b0 & 0x0f;
  let offset = RTP_HEADER_SIZE + csrcCount * 4;
  if (offset > len) return 'csrc_overflow';

  let extension: RtpExtension | null = null;
  if (b0 & 0x10) {
    if (offset + 4 > len) return 'extension_overflow';
    const profile = ((buf[offset] as number) << 8) | (buf[offset + 1] as number);
    const words = ((buf[offset + 2] as number) << 8) | (buf[offset + 3] as number);
    const end = offset + 4 + words * 4;
    if (end > len) return 'extension_overflow';
    extension = { profile, data: buf.subarray(offset + 4, end) };
    offset = end;
  }

  let paddingLength = 0;
  if (b0 & 0x20) {
    paddingLength = buf[len - 1] as number;
    if (paddingLength === 0) return 'bad_padding';
    if (offset + paddingLength > len) return 'padding_overflow';
  }

  const payloadEnd = len - paddingLength;
  if (payloadEnd <= offset) return 'empty_payload';

  into.marker = (b1 & 0x80) !== 0;
  into.payloadType = b1 & 0x7f;
  into.sequenceNumber = ((buf[2] as number) << 8) | (buf[3] as number);
  into.timestamp = readUint32(buf, 4);
  into.ssrc = readUint32(buf, 8);
  const csrcs = into.csrcs;
  csrcs.length = csrcCount;
  for (let i = 0; i < csrcCount; i++) csrcs[i] = readUint32(buf, RTP_HEADER_SIZE + i * 4);
  into.extension = extension;
  into.paddingLength = paddingLength;
  into.payload = buf.subarray(offset, payloadEnd);
  return null;
}

/** Validate and parse one datagram. Never throws. */
export function parseRtp(buf: Uint8Array): RtpParseResult {
  const packet = createRtpPacket();
  const reason = parseRtpInto(buf, packet);
  return reason === null ? { ok: true, packet } : { ok: false, reason };
}

function isUint(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

function checkHeader(h: RtpHeader): void {
  if (!isUint(h.payloadType, 127)) throw new RangeError(`RTP payload type must be 0..127, got ${h.payloadType}`);
  if (!isUint(h.sequenceNumber, 0xffff)) throw new RangeError(`RTP sequence number out of range: ${h.sequenceNumber}`);
  if (!isUint(h.timestamp, 0xffffffff)) throw new RangeError(`RTP timestamp out of range: ${h.timestamp}`);
  if (!isUint(h.ssrc, 0xffffffff)) throw new RangeError(`RTP SSRC out of range: ${h.ssrc}`);
  const csrcs = h.csrcs ?? [];
  if (csrcs.length > 15) throw new RangeError(`at most 15 CSRCs, got ${csrcs.length}`);
  for (const c of csrcs) if (!isUint(c, 0xffffffff)) throw new RangeError(`RTP CSRC out of range: ${c}`);
  const ext = h.extension;
  if (ext) {
    if (!isUint(ext.profile, 0xffff)) throw new RangeError(`extension profile out of range: ${ext.profile}`);
    if (ext.data.length % 4 !== 0 || ext.data.length > 0xffff * 4) {
      throw new RangeError(`extension data must be a multiple of 4 bytes up to 262140, got ${ext.data.length}`);
    }
  }
  if (!isUint(h.paddingLength ?? 0, 255)) throw new RangeError(`padding length must be 0..255, got ${h.paddingLength}`);
}

/** Bytes `serializeRtp` writes for this header and payload size. */
export function rtpPacketSize(header: RtpHeader, payloadLength: number): number {
  const ext = header.extension;
  return (
    RTP_HEADER_SIZE + (header.csrcs?.length ?? 0) * 4 + (ext ? 4 + ext.data.length : 0) + payloadLength + (header.paddingLength ?? 0)
  );
}

/**
 * Write the fixed 12-byte header (no CSRCs, extension or padding) at the start of `out`.
 * The pacer's per-packet path: no validation beyond masking, no allocation. The caller
 * guarantees `out.length >= 12` and in-range values.
 */
export function writeRtpFixedHeader(
  out: Uint8Array,
  marker: boolean,
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
): void {
  out[0] = 0x80;
  out[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  out[2] = (sequenceNumber >>> 8) & 0xff;
  out[3] = sequenceNumber & 0xff;
  out[4] = timestamp >>> 24;
  out[5] = (timestamp >>> 16) & 0xff;
  out[6] = (timestamp >>> 8) & 0xff;
  out[7] = timestamp & 0xff;
  out[8] = ssrc >>> 24;
  out[9] = (ssrc >>> 16) & 0xff;
  out[10] = (ssrc >>> 8) & 0xff;
  out[11] = ssrc & 0xff;
}

function writeUint32(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24;
  out[o + 1] = (v >>> 16) & 0xff;
  out[o + 2] = (v >>> 8) & 0xff;
  out[o + 3] = v & 0xff;
}

/**
 * Serialise a packet. Writes into `out` when given (it must be large enough; see
 * `rtpPacketSize`) and returns the view of the bytes written. Throws RangeError on
 * out-of-range header fields or a too-small `out`: those are programming errors.
 */
export function serializeRtp(header: RtpHeader, payload: Uint8Array, out?: Uint8Array): Uint8Array {
  checkHeader(header);
  const size = rtpPacketSize(header, payload.length);
  if (out && out.length < size) throw new RangeError(`output buffer of ${out.length} bytes is smaller than the packet (${size})`);
  const dst = out ?? new Uint8Array(size);
  const csrcs = header.csrcs ?? [];
  const ext = header.extension ?? null;
  const padding = header.paddingLength ?? 0;

  writeRtpFixedHeader(dst, header.marker, header.payloadType, header.sequenceNumber, header.timestamp, header.ssrc);
  dst[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length;
  let o = RTP_HEADER_SIZE;
  for (const c of csrcs) {
    writeUint32(dst, o, c);
    o += 4;
  }
  if (ext) {
    dst[o] = ext.profile >>> 8;
    dst[o + 1] = ext.profile & 0xff;
    const words = ext.data.length / 4;
    dst[o + 2] = words >>> 8;
    dst[o + 3] = words & 0xff;
    dst.set(ext.data, o + 4);
    o += 4 + ext.data.length;
  }
  dst.set(payload, o);
  o += payload.length;
  if (padding > 0) {
    dst.fill(0, o, o + padding - 1);
    dst[o + padding - 1] = padding;
    o += padding;
  }
  return dst.subarray(0, size);
}
