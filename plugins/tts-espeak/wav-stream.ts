/**
 * Incremental RIFF/WAVE reader for audio that arrives through a pipe in arbitrary pieces.
 *
 * Walks the chunk list (fmt, then any LIST/fact/... chunks, skipped by their size and pad
 * byte, then data) instead of assuming a 44-byte header, so a header split across reads, or
 * written by another tool, still parses. A writer that streams cannot know the length up
 * front: espeak-ng writes 0x7ffff000 into both the RIFF and data sizes, other tools write
 * 0 or 0xffffffff. Such a data chunk is read to end of stream; a real size is honoured and
 * whatever follows the data chunk is ignored.
 *
 * Samples come out as mono PCM16 (channels averaged) as soon as their bytes are complete;
 * a sample split across two reads is carried over.
 */

export interface WavFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
}

/** Sizes streaming writers put where the length belongs. */
export function isUnknownLength(size: number): boolean {
  return size === 0 || size >= 0x7ffff000;
}

type State = 'riff' | 'chunk-header' | 'fmt' | 'skip' | 'data' | 'after-data';

export class WavStreamParser {
  private state: State = 'riff';
  private pending: Buffer = Buffer.alloc(0);
  private chunkSize = 0;
  private skipRemaining = 0;
  /** Data bytes still expected (Infinity when the writer did not know). */
  private dataRemaining = 0;
  private fmt: WavFormat | undefined;
  /** Total mono samples emitted. */
  samplesOut = 0;

  get format(): WavFormat | undefined {
    return this.fmt;
  }

  /** True once the data chunk has started (the header is fully known). */
  get inData(): boolean {
    return this.state === 'data' || this.state === 'after-data';
  }

  /** Feed the next piece of the stream; returns the samples it completed (maybe none). */
  push(piece: Uint8Array): Int16Array {
    this.pending = this.pending.length === 0 ? Buffer.from(piece) : Buffer.concat([this.pending, piece]);
    for (;;) {
      switch (this.state) {
        case 'riff': {
          if (this.pending.length < 12) return EMPTY;
          if (this.pending.toString('ascii', 0, 4) !== 'RIFF' || this.pending.toString('ascii', 8, 12) !== 'WAVE') {
            throw new Error('not a RIFF/WAVE stream');
          }
          this.consume(12);
          this.state = 'chunk-header';
          break;
        }
        case 'chunk-header': {
          if (this.pending.length < 8) return EMPTY;
          const id = this.pending.toString('ascii', 0, 4);
          const size = this.pending.readUInt32LE(4);
          this.consume(8);
          if (id === 'fmt ') {
            this.chunkSize = size;
            this.state = 'fmt';
          } else if (id === 'data') {
            if (!this.fmt) throw new Error('WAV data chunk before its fmt chunk');
            this.dataRemaining = isUnknownLength(size) ? Infinity : size;
            this.state = 'data';
          } else {
            this.skipRemaining = size + (size & 1);
            this.state = 'skip';
          }
          break;
        }
        case 'fmt': {
          if (this.chunkSize < 16) throw new Error(`WAV fmt chunk of ${this.chunkSize} bytes is too short`);
          const padded = this.chunkSize + (this.chunkSize & 1);
          if (this.pending.length < padded) return EMPTY;
          let format = this.pending.readUInt16LE(0);
          if (format === 0xfffe && this.chunkSize >= 26) format = this.pending.readUInt16LE(24); // extensible: sub-format
          const fmt: WavFormat = {
            channels: this.pending.readUInt16LE(2),
            sampleRate: this.pending.readUInt32LE(4),
            bitsPerSample: this.pending.readUInt16LE(14),
          };
          if (format !== 1 || fmt.bitsPerSample !== 16) {
            throw new Error(`unsupported WAV encoding: format ${format}, ${fmt.bitsPerSample} bits (want 16-bit PCM)`);
          }
          if (fmt.channels < 1 || fmt.sampleRate < 1) throw new Error(`bad WAV format: ${fmt.channels} channels at ${fmt.sampleRate} Hz`);
          this.fmt = fmt;
          this.consume(padded);
          this.state = 'chunk-header';
          break;
        }
        case 'skip': {
          const n = Math.min(this.skipRemaining, this.pending.length);
          this.consume(n);
          this.skipRemaining -= n;
          if (this.skipRemaining > 0) return EMPTY;
          this.state = 'chunk-header';
          break;
        }
        case 'data':
          return this.takeSamples();
        case 'after-data':
          this.pending = Buffer.alloc(0);
          return EMPTY;
      }
    }
  }

  /**
   * The stream ended. Throws if it ended inside the header (nothing playable was sent);
   * a data chunk cut short (or a trailing half sample) is accepted: it is what a killed or
   * streaming writer leaves.
   */
  end(): void {
    if (this.state === 'riff' && this.pending.length === 0) throw new Error('empty WAV stream');
    if (!this.inData) throw new Error('WAV stream ended inside its header');
  }

  private takeSamples(): Int16Array {
    const fmt = this.fmt as WavFormat;
    const frameBytes = 2 * fmt.channels;
    const available = Math.min(this.pending.length, this.dataRemaining);
    const frames = Math.floor(available / frameBytes);
    const out = new Int16Array(frames);
    for (let i = 0; i < frames; i++) {
      if (fmt.channels === 1) {
        out[i] = this.pending.readInt16LE(2 * i);
      } else {
        let acc = 0;
        for (let c = 0; c < fmt.channels; c++) acc += this.pending.readInt16LE(i * frameBytes + 2 * c);
        out[i] = Math.round(acc / fmt.channels);
      }
    }
    const used = frames * frameBytes;
    this.consume(used);
    this.dataRemaining -= used;
    this.samplesOut += frames;
    if (this.dataRemaining < frameBytes) {
      // A known-length data chunk is complete: anything after it (LIST...) is not audio.
      this.state = 'after-data';
      this.pending = Buffer.alloc(0);
    }
    return out;
  }

  private consume(n: number): void {
    this.pending = this.pending.subarray(n);
  }
}

const EMPTY = new Int16Array(0);
