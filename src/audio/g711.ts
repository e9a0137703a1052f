/**
 * G.711 (ITU-T) mu-law and A-law, plus the `Codec` abstraction the RTP edge uses.
 *
 * Quantisation follows the ITU-T G.191 reference implementation of G.711: the 16-bit
 * input is reduced to the law's native resolution (14-bit for mu-law, 13-bit for A-law)
 * with a one's-complement magnitude for negative samples. Because of that reduction the
 * code for a sample depends only on `sample >> 2` (mu-law) or `sample >> 4` (A-law), so
 * encoding is a lookup in a 16 Ki / 4 Ki entry table; decoding is a 256-entry table.
 * All tables are built once at module load.
 *
 * A `Codec` describes one ExternalMedia format as Asterisk sends it to us (what we decode);
 * a `SendFormat` describes what we send back, which for slin16 is not the same thing (see
 * `asteriskSendFormat`).
 */
import { createResampler, type Resampler } from './resampler.js';

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
  /**
   * The format's RTP payload type: static for G.711; for slin16 the dynamic type Asterisk
   * uses by default. (What we send is `asteriskSendFormat(codec).payloadType`.)
   */
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
 * The codec for an ExternalMedia format name. `payloadType` overrides the (dynamic) type
 * of slin16; it is ignored for the static G.711 types.
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

/** Encodes one stream's 20 ms frames; it may carry state (filter history) between frames. */
export interface PayloadEncoder {
  /** Encode exactly `samplesPer20ms` PCM16 samples into `out[0 .. payloadBytes)`. */
  encode(samples: Int16Array, out: Uint8Array): void;
  /** The stream was cut (barge-in): forget history, the next frame starts afresh. */
  reset(): void;
}

/**
 * What the pacer puts on the wire: 20 ms of PCM16 at `sampleRate` (`samplesPer20ms`
 * samples) in, one payload of `payloadBytes` out, under `payloadType`, its RTP timestamp
 * advancing by `clockRate` units per second.
 */
export interface SendFormat {
  readonly name: string;
  readonly payloadType: number;
  readonly sampleRate: 8000 | 16000;
  readonly samplesPer20ms: number;
  readonly clockRate: number;
  readonly payloadBytes: number;
  /** A fresh encoder for one stream (each pacer owns one). */
  createEncoder(): PayloadEncoder;
}

/** The codec's own format on the way out: same payload type, rate and encoding. */
export function sendFormatOf(codec: Codec): SendFormat {
  const encoder: PayloadEncoder = { encode: (samples, out) => void codec.encode(samples, out), reset: () => undefined };
  return {
    name: codec.name,
    payloadType: codec.payloadType,
    sampleRate: codec.sampleRate,
    samplesPer20ms: codec.samplesPer20ms,
    clockRate: codec.sampleRate,
    payloadBytes: codec.samplesPer20ms * codec.bytesPerSample,
    createEncoder: () => encoder, // stateless: one object serves every stream
  };
}

/**
 * Asterisk's static payload type for 8 kHz signed linear ("L16/8000", network byte order):
 * `add_static_payload(11, ast_format_slin, 0)` in main/rtp_engine.c. (RFC 3551 registers
 * PT 11 as L16 at 44.1 kHz; Asterisk, the only peer here, maps it to its 8 kHz slin.)
 */
export const PAYLOAD_TYPE_ASTERISK_SLIN8 = 11;

const EMPTY_PCM = new Int16Array(0);

/**
 * 16 kHz PCM in, 8 kHz big-endian L16 out. The 2:1 decimation is the project's resampler
 * (windowed-sinc low-pass, passband to 3.4 kHz), run as one continuous stream so frames
 * join without edges. Its look-ahead (26 output samples, 3.25 ms) is paid once: the first
 * frame after a start or reset is padded with that much leading silence, after which every
 * 320 samples in yield exactly 160 out.
 */
class Slin16ToSlin8Encoder implements PayloadEncoder {
  private readonly resampler: Resampler = createResampler(16000, 8000);
  /** Resampled samples not yet sent (at most a few, and only after a partial read). */
  private pending: Int16Array = EMPTY_PCM;
  private fresh = true;

  encode(samples: Int16Array, out: Uint8Array): void {
    const got = this.resampler.process({ samples, sampleRate: 16000 }).samples;
    const want = samples.length >> 1;
    let avail = got;
    if (this.pending.length > 0) {
      avail = new Int16Array(this.pending.length + got.length);
      avail.set(this.pending);
      avail.set(got, this.pending.length);
    }
    // Short only while the filter fills (the first frame): lead with silence, keep time.
    const lead = this.fresh ? Math.max(0, want - avail.length) : 0;
    this.fresh = false;
    const take = Math.min(want - lead, avail.length);
    out.fill(0, 0, lead * 2);
    slinEncode(avail.subarray(0, take), out.subarray(lead * 2));
    out.fill(0, (lead + take) * 2, want * 2);
    this.pending = take < avail.length ? avail.slice(take) : EMPTY_PCM;
  }

  reset(): void {
    this.resampler.reset();
    this.pending = EMPTY_PCM;
    this.fresh = true;
  }
}

const SLIN16_TO_ASTERISK: SendFormat = {
  name: 'slin16>L16/8000',
  payloadType: PAYLOAD_TYPE_ASTERISK_SLIN8,
  sampleRate: 16000,
  samplesPer20ms: 320,
  clockRate: 8000,
  payloadBytes: 320,
  createEncoder: () => new Slin16ToSlin8Encoder(),
};

/**
 * What to send an Asterisk ExternalMedia (chan_rtp) channel of `codec`'s format.
 *
 * G.711: the codec itself. slin16: Asterisk cannot receive it. chan_rtp has no SDP and
 * never registers a receive payload mapping on its RTP instance; a received payload type is
 * looked up in that mapping and falls back to the static table only for types 0..34
 * (`ast_rtp_codecs_get_payload` in main/rtp_engine.c: `if (!type && payload <=
 * AST_RTP_PT_LAST_STATIC)`). Asterisk *sends* slin16 as 118 because the transmit lookup
 * falls back to the whole static table, but every packet it receives with 118 (or any other
 * dynamic type) is dropped without a log line, by the "Unknown payload type" early return
 * of ast_rtp_interpret in res/res_rtp_asterisk.c, after `rtp set debug` has printed it.
 * No static type below 35 is 16 kHz linear, so the closest format that is not a lossy codec
 * is 8 kHz L16 under type 11: chan_rtp reads it as slin and the core translates it to
 * whatever the bridge needs (it accepts any voice format on read). Inbound audio stays at
 * 16 kHz; only the agent's voice towards the caller is narrowband.
 */
export function asteriskSendFormat(codec: Codec): SendFormat {
  return codec.name === 'slin16' ? SLIN16_TO_ASTERISK : sendFormatOf(codec);
}
