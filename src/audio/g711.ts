/**
 * G.711 (ITU-T) mu-law and A-law, plus the `Codec` abstraction the RTP edge uses.
 *
 * Quantisation follows the ITU-T G.191 reference implementation of G.711: the 16-bit
 * input is reduced to the law's native resolution (14-bit for mu-law, 13-bit for A-law)
 * with a one's-complement magnitude for negative samples. Because of that reduction the
 * code for a sample depends only on `sample >> 2` (mu-law) or `sample >> 4` (A-law), so
 * encoding is a lookup in a 16 Ki / 4 Ki entry table; decoding is a 256-entry table.
 * All tables are built once at module load.
 */

const ULAW_BIAS = 0x84; // 132: the mu-law bias in 16-bit units (33 in 14-bit units)

/** Segment (exponent) of a positive value: number of significant bits beyond `minBits`. */
function segmentOf(value: number, minBits: number): number {
  const bits = 32 - Math.clz32(value);
  return bits > minBits ? bits - minBits : 0;
}

function ulawEncodeSample(sample: number): number {
  // One's-complement magnitude reduced to 14 bits, biased.
  const magnitude = ((sample < 0 ? ~sample : sample) >> 2) + (ULAW_BIAS >> 2);
  const clipped = magnitude > 0x1fff ? 0x1fff : magnitude;
  const segment = segmentOf(clipped, 6); // 0..7: biased value in [64 << s, 128 << s)
  const mantissa = (clipped >> (segment + 1)) & 0x0f;
  const code = ~((segment << 4) | mantissa) & 0x7f;
  return sample >= 0 ? code | 0x80 : code;
}

function ulawDecodeCode(code: number): number {
  const inverted = ~code & 0xff;
  const segment = (inverted >> 4) & 0x07;
  const mantissa = inverted & 0x0f;
  const magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
  return inverted & 0x80 ? -magnitude : magnitude;
}

function alawEncodeSample(sample: number): number {
  // One's-complement magnitude reduced to 12 bits (plus sign = 13-bit A-law input).
  // At most 2047, so the segment never exceeds 7 and no clipping is needed.
  const magnitude = (sample < 0 ? ~sample : sample) >> 4;
  const segment = segmentOf(magnitude, 4); // segment s >= 1 covers [16 << (s-1), 16 << s)
  const code = segment === 0 ? magnitude : (segment << 4) | ((magnitude >> (segment - 1)) & 0x0f);
  return (sample >= 0 ? code | 0x80 : code) ^ 0x55;
}

function alawDecodeCode(code: number): number {
  const value = code ^ 0x55;
  const segment = (value >> 4) & 0x07;
  const mantissa = value & 0x0f;
  let magnitude = (mantissa << 4) + 8;
  if (segment >= 1) magnitude += 0x100;
  if (segment >= 2) magnitude <<= segment - 1;
  return value & 0x80 ? magnitude : -magnitude;
}

const ULAW_DECODE = new Int16Array(256);
const ALAW_DECODE = new Int16Array(256);
for (let code = 0; code < 256; code++) {
  ULAW_DECODE[code] = ulawDecodeCode(code);
  ALAW_DECODE[code] = alawDecodeCode(code);
}

/** Indexed by `(sample >> 2) & 0x3fff`. */
const ULAW_ENCODE = new Uint8Array(1 << 14);
for (let i = 0; i < ULAW_ENCODE.length; i++) ULAW_ENCODE[i] = ulawEncodeSample(((i << 18) >> 16) | 0);

/** Indexed by `(sample >> 4) & 0x0fff`. */
const ALAW_ENCODE = new Uint8Array(1 << 12);
for (let i = 0; i < ALAW_ENCODE.length; i++) ALAW_ENCODE[i] = alawEncodeSample(((i << 20) >> 16) | 0);

function ensureInt16(out: Int16Array | undefined, length: number): Int16Array {
  return out && out.length >= length ? out : new Int16Array(length);
}

function ensureUint8(out: Uint8Array | undefined, length: number): Uint8Array {
  return out && out.length >= length ? out : new Uint8Array(length);
}

/**
 * Decode mu-law bytes to PCM16. Writes into `out` when it is large enough (the returned
 * array is then `out` itself, possibly longer than `bytes`; use `bytes.length` samples).
 */
export function ulawDecode(bytes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = ensureInt16(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) dst[i] = ULAW_DECODE[bytes[i] as number] as number;
  return dst;
}

/** Encode PCM16 to mu-law bytes (into `out` when it is large enough). */
export function ulawEncode(samples: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = ensureUint8(out, samples.length);
  for (let i = 0; i < samples.length; i++) dst[i] = ULAW_ENCODE[((samples[i] as number) >> 2) & 0x3fff] as number;
  return dst;
}

/** Decode A-law bytes to PCM16 (into `out` when it is large enough). */
export function alawDecode(bytes: Uint8Array, out?: Int16Array): Int16Array {
  const dst = ensureInt16(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) dst[i] = ALAW_DECODE[bytes[i] as number] as number;
  return dst;
}

/** Encode PCM16 to A-law bytes (into `out` when it is large enough). */
export function alawEncode(samples: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = ensureUint8(out, samples.length);
  for (let i = 0; i < samples.length; i++) dst[i] = ALAW_ENCODE[((samples[i] as number) >> 4) & 0x0fff] as number;
  return dst;
}

/**
 * Decode Asterisk slin16 (signed 16-bit big-endian) to PCM16. A trailing odd byte is
 * ignored. Writes into `out` when it is large enough.
 */
export function slinDecode(bytes: Uint8Array, out?: Int16Array): Int16Array {
  const count = bytes.length >> 1;
  const dst = ensureInt16(out, count);
  for (let i = 0, j = 0; i < count; i++, j += 2) {
    dst[i] = (((bytes[j] as number) << 24) | ((bytes[j + 1] as number) << 16)) >> 16;
  }
  return dst;
}

/** Encode PCM16 to signed 16-bit big-endian bytes (into `out` when it is large enough). */
export function slinEncode(samples: Int16Array, out?: Uint8Array): Uint8Array {
  const dst = ensureUint8(out, samples.length * 2);
  for (let i = 0, j = 0; i < samples.length; i++, j += 2) {
    const s = samples[i] as number;
    dst[j] = (s >> 8) & 0xff;
    dst[j + 1] = s & 0xff;
  }
  return dst;
}

export type CodecName = 'ulaw' | 'alaw' | 'slin16';
export const CODEC_NAMES: readonly CodecName[] = ['ulaw', 'alaw', 'slin16'];

/** Static RTP payload types (RFC 3551) and Asterisk's default dynamic type for slin16. */
export const PAYLOAD_TYPE_PCMU = 0;
export const PAYLOAD_TYPE_PCMA = 8;
export const PAYLOAD_TYPE_SLIN16_DEFAULT = 118;

export interface Codec {
  readonly name: CodecName;
  /** Payload type we send (for a dynamic type, until the peer shows the one it uses). */
  readonly payloadType: number;
  /**
   * False: inbound packets must carry `payloadType` (static G.711 types). True: the type
   * is negotiated out of band (slin16), so whatever type the peer sends is accepted.
   */
  readonly dynamicPayloadType: boolean;
  readonly sampleRate: 8000 | 16000;
  readonly samplesPer20ms: number;
  /** Encoded bytes per PCM sample (1 for G.711, 2 for slin16). */
  readonly bytesPerSample: 1 | 2;
  /** Payload bytes to PCM16; writes into `out` when it is large enough. */
  decode(payload: Uint8Array, out?: Int16Array): Int16Array;
  /** PCM16 to payload bytes; writes into `out` when it is large enough. */
  encode(samples: Int16Array, out?: Uint8Array): Uint8Array;
}

const ULAW: Codec = {
  name: 'ulaw',
  payloadType: PAYLOAD_TYPE_PCMU,
  sampleRate: 8000,
  samplesPer20ms: 160,
  bytesPerSample: 1,
  dynamicPayloadType: false,
  decode: ulawDecode,
  encode: ulawEncode,
};

const ALAW: Codec = {
  name: 'alaw',
  payloadType: PAYLOAD_TYPE_PCMA,
  sampleRate: 8000,
  samplesPer20ms: 160,
  bytesPerSample: 1,
  dynamicPayloadType: false,
  decode: alawDecode,
  encode: alawEncode,
};

function slin16(payloadType: number): Codec {
  return {
    name: 'slin16',
    payloadType,
    sampleRate: 16000,
    samplesPer20ms: 320,
    bytesPerSample: 2,
    dynamicPayloadType: true,
    decode: slinDecode,
    encode: slinEncode,
  };
}

const SLIN16_DEFAULT = slin16(PAYLOAD_TYPE_SLIN16_DEFAULT);

/**
 * The codec for an ExternalMedia format name. `payloadType` overrides the outbound type
 * of slin16 (dynamic); it is ignored for the static G.711 types.
 */
export function getCodec(name: CodecName, opts: { payloadType?: number } = {}): Codec {
  switch (name) {
    case 'ulaw':
      return ULAW;
    case 'alaw':
      return ALAW;
    case 'slin16': {
      const pt = opts.payloadType;
      if (pt === undefined || pt === PAYLOAD_TYPE_SLIN16_DEFAULT) return SLIN16_DEFAULT;
      if (!Number.isInteger(pt) || pt < 0 || pt > 127) throw new RangeError(`slin16 payload type must be 0..127, got ${pt}`);
      return slin16(pt);
    }
  }
}

export function isCodecName(s: string): s is CodecName {
  return (CODEC_NAMES as readonly string[]).includes(s);
}
