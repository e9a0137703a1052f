/**
 * Reads the RIFF/WAVE files the flite binary writes: walks the chunk list rather than
 * assuming a 44-byte header, and accepts only 16-bit PCM.
 */
export interface Pcm16 {
  samples: Int16Array;
  sampleRate: number;
}

export function parseWav(buf: Buffer): Pcm16 {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new Error('truncated fmt chunk');
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      if (fmt.format !== 1 || fmt.bits !== 16 || fmt.channels < 1) {
        throw new Error(`unsupported WAV encoding (format ${fmt.format}, ${fmt.bits} bits, ${fmt.channels} channels)`);
      }
      // A writer that could not seek back leaves the size unknown: take what is there.
      const bytes = Math.min(size, buf.length - body);
      const frames = Math.floor(bytes / (2 * fmt.channels));
      const samples = new Int16Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = buf.readInt16LE(body + i * 2 * fmt.channels);
      return { samples, sampleRate: fmt.sampleRate };
    }
    off = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}
