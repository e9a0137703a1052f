import { describe, expect, it } from 'vitest';
import { resampleFrame } from '../../src/audio/resampler.js';
import {
  alawDecode,
  alawEncode,
  asteriskSendFormat,
  getCodec,
  isCodecName,
  slinDecode,
  slinEncode,
  ulawDecode,
  ulawEncode,
} from '../../src/audio/g711.js';

/*
 * Independent reference: a transcription of the ITU-T G.191 STL g711.c routines
 * (ulaw_compress / ulaw_expand / alaw_compress / alaw_expand), one sample at a time,
 * with their loops and arithmetic kept as written there.
 */
function refUlawCompress(x: number): number {
  let absno = x < 0 ? (~x >> 2) + 33 : (x >> 2) + 33;
  if (absno > 0x1fff) absno = 0x1fff;
  let i = absno >> 6;
  let segno = 1;
  while (i !== 0) {
    segno++;
    i >>= 1;
  }
  const highNibble = 0x0008 - segno;
  const lowNibble = 0x000f - ((absno >> segno) & 0x000f);
  let out = (highNibble << 4) | lowNibble;
  if (x >= 0) out |= 0x0080;
  return out;
}

function refUlawExpand(code: number): number {
  const sign = code < 0x80 ? -1 : 1;
  let mantissa = ~code;
  const exponent = (mantissa >> 4) & 0x0007;
  const segment = exponent + 1;
  mantissa &= 0x000f;
  const step = 4 << segment;
  return (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) | 0; // C int: no -0
}

function refAlawCompress(x: number): number {
  let ix = x < 0 ? ~x >> 4 : x >> 4;
  if (ix > 15) {
    let iexp = 1;
    while (ix > 16 + 15) {
      ix >>= 1;
      iexp++;
    }
    ix -= 16;
    ix += iexp << 4;
  }
  if (x >= 0) ix |= 0x0080;
  return ix ^ 0x0055;
}

function refAlawExpand(code: number): number {
  let ix = code ^ 0x0055;
  ix &= 0x007f;
  const iexp = ix >> 4;
  let mant = ix & 0x000f;
  if (iexp > 0) mant += 16;
  mant = (mant << 4) + 0x0008;
  if (iexp > 1) mant <<= iexp - 1;
  return code > 127 ? mant : -mant;
}

const ALL_CODES = Uint8Array.from({ length: 256 }, (_, i) => i);
const ALL_SAMPLES = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);

describe('G.711 mu-law', () => {
  it('decodes reference values', () => {
    const d = ulawDecode(Uint8Array.of(0xff, 0x7f, 0x00, 0x80, 0xfe, 0x7e));
    expect(Array.from(d)).toEqual([0, 0, -32124, 32124, 8, -8]);
  });

  it('decodes every code exactly as the G.191 reference', () => {
    const d = ulawDecode(ALL_CODES);
    for (let c = 0; c < 256; c++) expect(d[c], `code ${c}`).toBe(refUlawExpand(c));
  });

  it('encodes every 16-bit sample exactly as the G.191 reference', () => {
    const e = ulawEncode(ALL_SAMPLES);
    let mismatches = 0;
    for (let i = 0; i < ALL_SAMPLES.length; i++) {
      if (e[i] !== refUlawCompress(ALL_SAMPLES[i] as number)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('re-encodes every decoded value to the same code (0x7f, negative zero, becomes 0xff)', () => {
    const back = ulawEncode(ulawDecode(ALL_CODES));
    for (let c = 0; c < 256; c++) expect(back[c], `code ${c}`).toBe(c === 0x7f ? 0xff : c);
  });

  it('round-trips the full 16-bit range within the quantisation step of each segment', () => {
    const rt = ulawDecode(ulawEncode(ALL_SAMPLES));
    for (let i = 0; i < ALL_SAMPLES.length; i++) {
      const x = ALL_SAMPLES[i] as number;
      const err = Math.abs((rt[i] as number) - x);
      const mag = Math.min(Math.abs(x), 32124);
      // Step in segment s is 8 << s; the error is at most one step (half a step plus the
      // truncation to 14 bits), and beyond the top decision level the signal clips.
      const seg = Math.max(0, Math.floor(Math.log2((mag + 132) / 256)) + 1);
      const bound = Math.abs(x) > 32124 ? Math.abs(x) - 32124 + 1024 : 8 << Math.min(seg, 7);
      if (err > bound) expect.fail(`sample ${x} -> ${rt[i]} (error ${err} > ${bound})`);
    }
  });

  it('encodes into a caller buffer without allocating', () => {
    const out = new Uint8Array(4);
    const r = ulawEncode(Int16Array.of(0, -1, 1000), out);
    expect(r).toBe(out);
    expect(Array.from(r.subarray(0, 3))).toEqual([0xff, 0x7f, refUlawCompress(1000)]);
    const pcm = new Int16Array(8);
    expect(ulawDecode(Uint8Array.of(0), pcm)).toBe(pcm);
    expect(pcm[0]).toBe(-32124);
  });
});

describe('G.711 A-law', () => {
  it('decodes reference values', () => {
    const d = alawDecode(Uint8Array.of(0xd5, 0x55, 0xaa, 0x2a));
    expect(Array.from(d)).toEqual([8, -8, 32256, -32256]);
  });

  it('decodes every code exactly as the G.191 reference', () => {
    const d = alawDecode(ALL_CODES);
    for (let c = 0; c < 256; c++) expect(d[c], `code ${c}`).toBe(refAlawExpand(c));
  });

  it('encodes every 16-bit sample exactly as the G.191 reference', () => {
    const e = alawEncode(ALL_SAMPLES);
    let mismatches = 0;
    for (let i = 0; i < ALL_SAMPLES.length; i++) {
      if (e[i] !== refAlawCompress(ALL_SAMPLES[i] as number)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('re-encodes every decoded value to the same code', () => {
    const back = alawEncode(alawDecode(ALL_CODES));
    expect(Array.from(back)).toEqual(Array.from(ALL_CODES));
  });

  it('round-trips the full 16-bit range within one quantisation step', () => {
    const rt = alawDecode(alawEncode(ALL_SAMPLES));
    for (let i = 0; i < ALL_SAMPLES.length; i++) {
      const x = ALL_SAMPLES[i] as number;
      const err = Math.abs((rt[i] as number) - x);
      const mag = Math.abs(x);
      // Segments 0 and 1 step by 16; segment s >= 2 steps by 16 << (s - 1). Beyond the
      // top reconstruction level (32256) the error grows with the clipped excess.
      const seg = mag < 512 ? 1 : Math.min(7, Math.floor(Math.log2(mag / 256)) + 1);
      const bound = mag > 32256 ? mag - 32256 + 1024 : 16 << (seg - 1);
      if (err > bound) expect.fail(`sample ${x} -> ${rt[i]} (error ${err} > ${bound})`);
    }
  });

  it('is odd-symmetric around the one\'s-complement midpoint', () => {
    const pos = alawEncode(Int16Array.of(0, 100, 5000, 32767));
    const neg = alawEncode(Int16Array.of(-1, -101, -5001, -32768));
    for (let i = 0; i < 4; i++) expect((pos[i] as number) ^ 0x80).toBe(neg[i]);
  });
});

describe('slin16 (big-endian signed linear)', () => {
  it('decodes network byte order and sign-extends', () => {
    const d = slinDecode(Uint8Array.of(0x00, 0x01, 0xff, 0xff, 0x80, 0x00, 0x7f, 0xff, 0x12));
    expect(Array.from(d)).toEqual([1, -1, -32768, 32767]);
  });

  it('round-trips every sample value exactly', () => {
    const bytes = slinEncode(ALL_SAMPLES);
    expect(bytes.length).toBe(ALL_SAMPLES.length * 2);
    expect(bytes[0]).toBe(0x80);
    expect(bytes[1]).toBe(0x00);
    expect(slinDecode(bytes)).toEqual(ALL_SAMPLES);
  });
});

describe('Codec', () => {
  it('describes ulaw, alaw and slin16', () => {
    const u = getCodec('ulaw');
    expect([u.payloadType, u.sampleRate, u.samplesPer20ms, u.bytesPerSample]).toEqual([0, 8000, 160, 1]);
    const a = getCodec('alaw');
    expect([a.payloadType, a.sampleRate, a.samplesPer20ms, a.bytesPerSample]).toEqual([8, 8000, 160, 1]);
    const s = getCodec('slin16');
    expect([s.payloadType, s.sampleRate, s.samplesPer20ms, s.bytesPerSample]).toEqual([118, 16000, 320, 2]);
  });

  it('marks G.711 payload types static and slin16 dynamic', () => {
    expect(getCodec('ulaw').dynamicPayloadType).toBe(false);
    expect(getCodec('alaw').dynamicPayloadType).toBe(false);
    expect(getCodec('slin16').dynamicPayloadType).toBe(true);
  });

  it('lets slin16 use another dynamic payload type and rejects invalid ones', () => {
    expect(getCodec('slin16', { payloadType: 96 }).payloadType).toBe(96);
    expect(getCodec('ulaw', { payloadType: 96 }).payloadType).toBe(0);
    expect(() => getCodec('slin16', { payloadType: 128 })).toThrow(RangeError);
  });

  it('encodes and decodes 20 ms through the codec interface', () => {
    for (const name of ['ulaw', 'alaw', 'slin16'] as const) {
      const c = getCodec(name);
      const pcm = Int16Array.from({ length: c.samplesPer20ms }, (_, i) => Math.round(8000 * Math.sin(i / 5)));
      const payload = c.encode(pcm);
      expect(payload.length).toBe(c.samplesPer20ms * c.bytesPerSample);
      const back = c.decode(payload);
      expect(back.length).toBe(c.samplesPer20ms);
      for (let i = 0; i < pcm.length; i++) expect(Math.abs((back[i] as number) - (pcm[i] as number))).toBeLessThanOrEqual(256);
    }
  });

  it('recognises codec names', () => {
    expect(isCodecName('slin16')).toBe(true);
    expect(isCodecName('g722')).toBe(false);
  });
});

describe('asteriskSendFormat', () => {
  const tone = (hz: number, n: number, rate: number, amp = 8000, delay = 0): Int16Array =>
    Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * (i - delay)) / rate)));

  /** Encode `pcm` (16 kHz) frame by frame and decode the 8 kHz L16 payloads back. */
  function through(pcm: Int16Array, enc = asteriskSendFormat(getCodec('slin16')).createEncoder()): Int16Array {
    const out = new Int16Array(pcm.length / 2);
    const payload = new Uint8Array(320);
    for (let f = 0; f < pcm.length / 320; f++) {
      enc.encode(pcm.subarray(f * 320, (f + 1) * 320), payload);
      out.set(slinDecode(payload), f * 160);
    }
    return out;
  }

  it('sends G.711 as the codec itself', () => {
    for (const name of ['ulaw', 'alaw'] as const) {
      const c = getCodec(name);
      const f = asteriskSendFormat(c);
      expect([f.payloadType, f.sampleRate, f.samplesPer20ms, f.clockRate, f.payloadBytes]).toEqual([c.payloadType, 8000, 160, 8000, 160]);
      const pcm = tone(440, 160, 8000);
      const out = new Uint8Array(160);
      f.createEncoder().encode(pcm, out);
      expect(out).toEqual(c.encode(pcm));
    }
  });

  it('sends slin16 as 8 kHz L16 under static payload type 11, whatever dynamic type it receives', () => {
    for (const c of [getCodec('slin16'), getCodec('slin16', { payloadType: 96 })]) {
      const f = asteriskSendFormat(c);
      expect([f.payloadType, f.sampleRate, f.samplesPer20ms, f.clockRate, f.payloadBytes]).toEqual([11, 16000, 320, 8000, 320]);
    }
  });

  it('decimates as one continuous stream: frames join exactly like a one-shot resample, 26 samples late', () => {
    const pcm = tone(1000, 320 * 25, 16000);
    const out = through(pcm);
    const ref = resampleFrame({ samples: pcm, sampleRate: 16000 }, 8000).samples;
    expect(Array.from(out.subarray(0, 26))).toEqual(new Array(26).fill(0));
    expect(out.subarray(26)).toEqual(ref.subarray(0, out.length - 26));
    // ... and that is the tone at 8 kHz, in network byte order.
    const expected = tone(1000, out.length, 8000, 8000, 26);
    let worst = 0;
    for (let i = 26 + 40; i < out.length; i++) worst = Math.max(worst, Math.abs((out[i] as number) - (expected[i] as number)));
    expect(worst).toBeLessThan(40); // 0.5% of the amplitude
  });

  it('removes what 8 kHz cannot carry instead of aliasing it', () => {
    const out = through(tone(6000, 320 * 25, 16000));
    let e = 0;
    for (let i = 100; i < out.length; i++) e += (out[i] as number) ** 2;
    const rms = Math.sqrt(e / (out.length - 100));
    expect(20 * Math.log10(rms / (8000 / Math.SQRT2))).toBeLessThan(-55);
  });

  it('starts afresh after reset: no history from the cut stream', () => {
    const enc = asteriskSendFormat(getCodec('slin16')).createEncoder();
    through(tone(1000, 320 * 3, 16000, 20000), enc);
    enc.reset();
    const after = through(new Int16Array(320), enc);
    expect(Array.from(after)).toEqual(new Array(160).fill(0));
  });
});
