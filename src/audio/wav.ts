/**
 * RIFF/WAVE for 16-bit PCM: parse what espeak-ng (or any TTS) writes, write recordings.
 * The parser walks the chunk list instead of assuming a 44-byte header, honours odd-size chunk
 * padding, and accepts the 0 / oversized data sizes that streaming writers (espeak-ng --stdout)
 * leave behind. Multi-channel audio is mixed down to mono.
 */
import type { AudioFrame } from './frame.js';

export interface WavPcm {
  /** Mono PCM16 (channels averaged). */
  samples: Int16Array;
  sampleRate: number;
  channels: number;
}

export function parseWav(buf: Buffer): WavPcm {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const declared = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (declared < 16 || body + 16 > buf.length) throw new Error('WAV fmt chunk too short');
      let format = buf.readUInt16LE(body);
      if (format === 0xfffe && declared >= 40 && body + 26 <= buf.length) format = buf.readUInt16LE(body + 24);
      fmt = { format, channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data chunk before fmt chunk');
      if (fmt.format !== 1 || fmt.bits !== 16) throw new Error(`unsupported WAV encoding: format ${fmt.format}, ${fmt.bits} bits (want 16-bit PCM)`);
      if (fmt.channels < 1) throw new Error('WAV has no channels');
      const available = buf.length - body;
      const size = declared === 0 || declared > available ? available : declared;
      const frameBytes = 2 * fmt.channels;
      const frames = Math.floor(size / frameBytes);
      const samples = new Int16Array(frames);
      for (let i = 0; i < frames; i++) {
        let acc = 0;
        for (let c = 0; c < fmt.channels; c++) acc += buf.readInt16LE(body + i * frameBytes + 2 * c);
        samples[i] = Math.round(acc / fmt.channels);
      }
      return { samples, sampleRate: fmt.sampleRate, channels: fmt.channels };
    }
    off = body + declared + (declared % 2);
  }
  throw new Error('WAV file has no data chunk');
}

/** A mono 16-bit PCM WAV file holding `frame`. */
export function encodeWav(frame: AudioFrame): Buffer {
  const data = Buffer.alloc(frame.samples.length * 2);
  for (let i = 0; i < frame.samples.length; i++) data.writeInt16LE(frame.samples[i] as number, i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(frame.sampleRate, 24);
  h.writeUInt32LE(frame.sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
