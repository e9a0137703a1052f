/**
 * A raw UDP socket playing Asterisk's side of an ExternalMedia channel, for tests that run
 * the real RTP endpoint without a PBX.
 *
 * Sending: audio handed to `say()` goes out as G.711 (or slin16) RTP in real time, one 20 ms
 * packet per tick of the peer's own drift-free timer (independent of the engine's media
 * clock, so it never shows up as a listener there). Between utterances the peer either keeps
 * streaming digital silence, as Asterisk does (`idle: 'silence'`), or sends nothing, like a
 * phone with silence suppression (`idle: 'none'`). Headers are proper RFC 3550: one SSRC,
 * sequence +1 per packet sent, timestamp +samples per 20 ms of wall time (sent or not), and
 * the marker bit on the first packet after a pause. `stop()` stops sending altogether: a
 * caller who goes quiet without any silence packets.
 *
 * Receiving: every datagram is recorded with its arrival time (performance.now(), the
 * engine's clock) and, if it parses as RTP, its header and decoded PCM.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AudioFrame } from '../../src/audio/frame.js';
import { getCodec, type Codec, type CodecName } from '../../src/audio/g711.js';
import { parseRtp, serializeRtp } from '../../src/rtp/packet.js';

export interface ReceivedRtp {
  /** Arrival, performance.now() ms. */
  at: number;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** The payload decoded with the peer's codec. */
  pcm: Int16Array;
}

export interface SentRtp {
  /** When the datagram was handed to the socket, performance.now() ms. */
  at: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  /** What the receiver decodes from this packet (the codec round trip of what was sent). */
  pcm: Int16Array;
  /** Which `say()` call the packet belongs to (undefined for idle silence). */
  utterance: number | undefined;
}

export interface SayResult {
  /** Index of the utterance in `sent[].utterance`. */
  utterance: number;
  /** False when `stop()` or `close()` cut it short. */
  completed: boolean;
  packets: number;
  firstSentAt: number | undefined;
  lastSentAt: number | undefined;
}

export interface RtpPeerOptions {
  /** Where the engine's endpoint listens (`host:port`, as in `externalHost`). */
  remote: string;
  codec?: CodecName;
  /** What to send when nothing is queued once streaming has begun. Default 'silence'. */
  idle?: 'silence' | 'none';
  /** Payload type to send (default the codec's; slin16 uses Asterisk's 118). */
  payloadType?: number;
  ssrc?: number;
  initialSequenceNumber?: number;
  initialTimestamp?: number;
  /** Most overdue packets sent back to back when the timer fired late. Default 5. */
  maxCatchUp?: number;
}

interface Pending {
  frames: Int16Array[];
  result: SayResult;
  resolve: (r: SayResult) => void;
}

const PERIOD_MS = 20;

export class RtpPeer {
  readonly received: ReceivedRtp[] = [];
  readonly sent: SentRtp[] = [];
  /** Datagrams that did not parse as RTP. */
  readonly garbage: Buffer[] = [];
  /** Socket errors (sends to a closed port on loopback can report ECONNREFUSED). */
  readonly errors: Error[] = [];
  readonly codec: Codec;
  idle: 'silence' | 'none';

  private readonly remoteHost: string;
  private readonly remotePort: number;
  private readonly pt: number;
  private readonly ssrc: number;
  private seq: number;
  private readonly ts0: number;
  private readonly maxCatchUp: number;
  private readonly queue: Pending[] = [];
  private utterances = 0;
  private timer: NodeJS.Timeout | undefined;
  private anchor: number | undefined;
  private tickNo = 0;
  private sentLastTick = false;
  private closed = false;
  private readonly silenceFrame: Int16Array;

  private constructor(
    private readonly socket: Socket,
    opts: RtpPeerOptions,
  ) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(opts.remote);
    if (!m) throw new Error(`remote must be host:port, got "${opts.remote}"`);
    this.remoteHost = m[1] as string;
    this.remotePort = Number(m[2]);
    this.codec = getCodec(opts.codec ?? 'ulaw');
    this.idle = opts.idle ?? 'silence';
    this.pt = opts.payloadType ?? this.codec.payloadType;
    this.ssrc = (opts.ssrc ?? 0x5eed1234) >>> 0;
    this.seq = (opts.initialSequenceNumber ?? 4321) & 0xffff;
    this.ts0 = (opts.initialTimestamp ?? 160_000) >>> 0;
    this.maxCatchUp = opts.maxCatchUp ?? 5;
    this.silenceFrame = new Int16Array(this.codec.samplesPer20ms);
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('error', (err) => this.errors.push(err));
  }

  static async open(opts: RtpPeerOptions): Promise<RtpPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RtpPeer(socket, opts);
  }

  /** The peer's own address, for `setRemote` on the endpoint. */
  get address(): { host: string; port: number } {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  /** Whether the send timer is running. */
  get streaming(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Begin (or resume) streaming now, idle audio until something is said. Timestamps keep
   * counting wall time across a stop: a resumed stream carries on where the clock is.
   */
  start(): void {
    if (this.closed || this.timer) return;
    const now = performance.now();
    if (this.anchor === undefined) {
      this.anchor = now;
      this.tickNo = 0;
    } else {
      this.tickNo = Math.floor((now - this.anchor) / PERIOD_MS);
    }
    this.sentLastTick = false;
    this.fire();
  }

  /**
   * Queue `audio` (at the codec's rate) after anything already queued; streaming starts if
   * it had not. Resolves once its last packet has been sent, or it was cut by stop/close.
   */
  say(audio: AudioFrame): Promise<SayResult> {
    if (audio.sampleRate !== this.codec.sampleRate) throw new Error(`peer sends ${this.codec.sampleRate} Hz, got ${audio.sampleRate} Hz`);
    const spf = this.codec.samplesPer20ms;
    const frames: Int16Array[] = [];
    for (let off = 0; off < audio.samples.length; off += spf) {
      const f = new Int16Array(spf); // a short last frame is padded with silence
      f.set(audio.samples.subarray(off, Math.min(off + spf, audio.samples.length)));
      frames.push(f);
    }
    const result: SayResult = { utterance: this.utterances++, completed: false, packets: 0, firstSentAt: undefined, lastSentAt: undefined };
    if (this.closed) return Promise.resolve(result);
    return new Promise<SayResult>((resolve) => {
      if (frames.length === 0) {
        result.completed = true;
        resolve(result);
        return;
      }
      this.queue.push({ frames, result, resolve });
      this.start();
    });
  }

  /** Send `ms` of digital silence as an utterance (streams even when idle is 'none'). */
  saySilence(ms: number): Promise<SayResult> {
    return this.say({ samples: new Int16Array(Math.round((this.codec.sampleRate * ms) / 1000)), sampleRate: this.codec.sampleRate });
  }

  /** Stop sending anything (queued audio is dropped); `start`/`say` resume with a marker. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const p of this.queue.splice(0)) p.resolve(p.result);
  }

  /** Send one raw datagram to the remote (for malformed-input tests). */
  sendRaw(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, this.remotePort, this.remoteHost, (err) => (err ? reject(err) : resolve())));
  }

  /** Received packets decoded and concatenated, in arrival order. */
  receivedPcm(from = 0, to = this.received.length): Int16Array {
    const parts = this.received.slice(from, to);
    const out = new Int16Array(parts.reduce((a, p) => a + p.pcm.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p.pcm, off);
      off += p.pcm.length;
    }
    return out;
  }

  /** Resolve when `cond` holds (checked every 5 ms); reject after `timeoutMs`. */
  async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Resolve once no datagram has arrived for `quietMs` (and at least `atLeast` have). */
  async waitForQuiet(quietMs: number, timeoutMs: number, atLeast = 1): Promise<void> {
    const last = (): number => this.received[this.received.length - 1]?.at ?? -Infinity;
    await this.waitFor(() => this.received.length >= atLeast && performance.now() - last() >= quietMs, timeoutMs, `${quietMs} ms without packets`);
  }

  /** Stop sending and close the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stop();
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(msg: Buffer): void {
    const at = performance.now();
    const r = parseRtp(msg);
    if (!r.ok) {
      this.garbage.push(msg);
      return;
    }
    const p = r.packet;
    this.received.push({
      at,
      marker: p.marker,
      payloadType: p.payloadType,
      sequenceNumber: p.sequenceNumber,
      timestamp: p.timestamp,
      ssrc: p.ssrc,
      pcm: this.codec.decode(p.payload.slice(), new Int16Array(p.payload.length / this.codec.bytesPerSample)),
    });
  }

  /** Run every tick due by now (a few at most after a stall), then arm for the next. */
  private fire(): void {
    this.timer = undefined;
    if (this.closed || this.anchor === undefined) return;
    const anchor = this.anchor;
    const now = performance.now();
    let due = Math.floor((now - anchor) / PERIOD_MS) - this.tickNo + 1;
    if (due > this.maxCatchUp) {
      // After a long stall skip ahead like a real sender: time (and timestamps) moved on.
      this.tickNo += due - this.maxCatchUp;
      this.sentLastTick = false;
      due = this.maxCatchUp;
    }
    for (let i = 0; i < due; i++) this.tick();
    const next = anchor + this.tickNo * PERIOD_MS;
    this.timer = setTimeout(() => this.fire(), Math.max(1, next - performance.now()));
  }

  private tick(): void {
    const timestamp = (this.ts0 + this.tickNo * this.codec.samplesPer20ms) >>> 0;
    this.tickNo++;
    const head = this.queue[0];
    let pcm: Int16Array | undefined;
    let utterance: number | undefined;
    if (head) {
      pcm = head.frames.shift();
      utterance = head.result.utterance;
    } else if (this.idle === 'silence') {
      pcm = this.silenceFrame;
    }
    if (!pcm) {
      this.sentLastTick = false;
      return;
    }
    const marker = !this.sentLastTick;
    const payload = this.codec.encode(pcm);
    const bytes = serializeRtp({ marker, payloadType: this.pt, sequenceNumber: this.seq, timestamp, ssrc: this.ssrc }, payload);
    const at = performance.now();
    this.socket.send(bytes, this.remotePort, this.remoteHost);
    this.sent.push({ at, marker, sequenceNumber: this.seq, timestamp, pcm: this.codec.decode(payload), utterance });
    this.seq = (this.seq + 1) & 0xffff;
    this.sentLastTick = true;
    if (head) {
      const r = head.result;
      r.packets++;
      r.firstSentAt ??= at;
      r.lastSentAt = at;
      if (head.frames.length === 0) {
        this.queue.shift();
        r.completed = true;
        head.resolve(r);
      }
    }
  }
}
