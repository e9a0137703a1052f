import { describe, expect, it } from 'vitest';
import { isUnknownLength, WavStreamParser } from './wav-stream.js';

function chunk(id: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'ascii');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function fmtBody(rate: number, channels: number, bits = 16, format = 1): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(format, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  return b;
}

function pcm(samples: number[]): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, 2 * i));
  return b;
}

function wav(parts: Buffer[], riffSize?: number): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'ascii'), ...parts]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(riffSize ?? body.length, 4);
  return Buffer.concat([head, body]);
}

/** A data chunk header declaring `size` (for streaming writers that do not know it). */
function dataHeader(size: number): Buffer {
  const h = Buffer.alloc(8);
  h.write('data', 0, 'ascii');
  h.writeUInt32LE(size, 4);
  return h;
}

function feed(parser: WavStreamParser, buf: Buffer, pieceSizes: number[]): number[] {
  const out: number[] = [];
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = pieceSizes[i++ % pieceSizes.length] as number;
    out.push(...parser.push(buf.subarray(off, off + n)));
    off += n;
  }
  parser.end();
  return out;
}

const SAMPLES = Array.from({ length: 501 }, (_, i) => Math.round(Math.sin(i / 7) * 20000) - (i % 3));

describe('WavStreamParser', () => {
  it('reads the espeak-ng stream header (unknown length 0x7ffff000) to end of stream, in any piece sizes', () => {
    const stream = Buffer.concat([wav([chunk('fmt ', fmtBody(22050, 1))], 0x7ffff024).subarray(0), dataHeader(0x7ffff000), pcm(SAMPLES)]);
    for (const sizes of [[1], [3], [7, 1, 44], [4096]]) {
      const p = new WavStreamParser();
      expect(feed(p, stream, sizes)).toEqual(SAMPLES);
      expect(p.format).toEqual({ sampleRate: 22050, channels: 1, bitsPerSample: 16 });
      expect(p.samplesOut).toBe(SAMPLES.length);
    }
  });

  it('emits samples as soon as their bytes are complete', () => {
    const p = new WavStreamParser();
    const head = Buffer.concat([wav([chunk('fmt ', fmtBody(16000, 1))]), dataHeader(0xffffffff)]);
    expect(p.push(head).length).toBe(0);
    expect(p.inData).toBe(true);
    expect([...p.push(pcm([1, 2, 3]).subarray(0, 5))]).toEqual([1, 2]);
    expect([...p.push(pcm([1, 2, 3]).subarray(5))]).toEqual([3]);
  });

  it('skips chunks before data (odd sizes padded) and stops at a known data size', () => {
    const list = chunk('LIST', Buffer.from('INFOISFT\u0003\u0000\u0000\u0000ab', 'latin1')); // odd body: 15 bytes + pad
    const data = chunk('data', pcm([10, -10, 20]));
    const trailer = chunk('id3 ', Buffer.from('garbage!'));
    const buf = wav([chunk('fmt ', fmtBody(8000, 1)), list, data, trailer]);
    const p = new WavStreamParser();
    expect(feed(p, buf, [5])).toEqual([10, -10, 20]);
  });

  it('averages channels to mono and reads WAVE_FORMAT_EXTENSIBLE PCM', () => {
    const ext = Buffer.alloc(40);
    fmtBody(48000, 2).copy(ext);
    ext.writeUInt16LE(0xfffe, 0);
    ext.writeUInt16LE(22, 16);
    ext.writeUInt16LE(1, 24); // sub-format GUID starts with 0x0001 = PCM
    const buf = wav([chunk('fmt ', ext), chunk('data', pcm([100, 200, -50, -151]))]);
    const p = new WavStreamParser();
    expect(feed(p, buf, [9])).toEqual([150, -100]);
    expect(p.format?.channels).toBe(2);
  });

  it('refuses what is not 16-bit PCM WAV, and a stream cut inside its header', () => {
    expect(() => new WavStreamParser().push(Buffer.from('RIFX\u0000\u0000\u0000\u0000WAVE', 'latin1'))).toThrow(/not a RIFF/);
    expect(() => new WavStreamParser().push(wav([chunk('fmt ', fmtBody(8000, 1, 8)), chunk('data', Buffer.alloc(4))]))).toThrow(/16-bit PCM/);
    expect(() => new WavStreamParser().push(wav([chunk('fmt ', fmtBody(8000, 1, 32, 3)), chunk('data', Buffer.alloc(4))]))).toThrow(/format 3/);
    expect(() => new WavStreamParser().push(wav([chunk('data', Buffer.alloc(4))]))).toThrow(/before its fmt/);
    const cut = new WavStreamParser();
    cut.push(wav([chunk('fmt ', fmtBody(8000, 1))]).subarray(0, 30));
    expect(() => cut.end()).toThrow(/inside its header/);
    expect(() => new WavStreamParser().end()).toThrow(/empty/);
  });

  it('knows the sizes streaming writers use for "unknown"', () => {
    expect(isUnknownLength(0)).toBe(true);
    expect(isUnknownLength(0x7ffff000)).toBe(true);
    expect(isUnknownLength(0xffffffff)).toBe(true);
    expect(isUnknownLength(44100)).toBe(false);
  });
});
