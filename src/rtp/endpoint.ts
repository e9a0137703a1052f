/**
 * One call's RTP edge towards an Asterisk ExternalMedia channel.
 *
 * Inbound: datagram -> source check -> RFC 3550 validation -> payload type check ->
 * jitter buffer -> codec decode (+ loss concealment) -> `InboundAudio` with the arrival
 * time of its packet. Every rejected datagram is counted by reason; nothing on this path
 * throws (handler exceptions are caught and reported).
 *
 * Outbound: `play`/`enqueue` -> pacer -> one packet per tick of the shared media clock, in
 * the format Asterisk can receive for the codec (`asteriskSendFormat`): the codec itself for
 * G.711; for slin16, 8 kHz L16 under static payload type 11, because chan_rtp drops every
 * packet that carries a dynamic payload type (118 included) — see g711.ts.
 *
 * Symmetric RTP: the remote address is latched from the first valid inbound packet
 * (Asterisk sends from the RTP port it expects our packets on); from then on datagrams
 * from anywhere else are dropped. `setRemote` (e.g. from UNICASTRTP_LOCAL_ADDRESS/PORT)
 * lets output start before the first inbound packet; the first valid packet still wins.
 * Until a remote is known, outbound audio waits in the queue.
 *
 * In-band DTMF (RFC 4733 telephone-event) is not decoded here — ARI delivers DTMF — but
 * such packets are counted and skipped.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { AudioFrame } from '../audio/frame.js';
import { asteriskSendFormat, getCodec, type Codec, type CodecName } from '../audio/g711.js';
import type { HistogramSummary } from './histogram.js';
import { JitterBuffer, type JitterBufferOptions, type JitterSink, type JitterStats } from './jitter-buffer.js';
import { sharedMediaClock, type ClockTick, type MediaClock } from './media-clock.js';
import { createRtpPacket, parseRtpInto, RTP_DROP_REASONS, type RtpDropReason } from './packet.js';
import { Pacer, type ClearResult, type TalkspurtEnd, type TalkspurtStart, type Utterance } from './pacer.js';
import { PacketLossConcealer } from './plc.js';
import { mediaSlab } from './slab.js';
import { monotonicMs } from './time.js';
import { bindUdp, type PortRange } from './udp-bind.js';

export type EndpointDropReason =
  | RtpDropReason
  | 'wrong_source' // not from the latched remote address
  | 'unexpected_payload_type' // not the codec's payload type (nor telephone-event)
  | 'bad_payload_length'; // an odd number of bytes for 16-bit linear

export const ENDPOINT_DROP_REASONS: readonly EndpointDropReason[] = [...RTP_DROP_REASONS, 'wrong_source', 'unexpected_payload_type', 'bad_payload_length'];

export const TELEPHONE_EVENT_PAYLOAD_TYPE = 101;

/** Decoded inbound audio: PCM16 at the codec rate, stamped with its packet's arrival. */
export interface InboundAudio extends AudioFrame {
  /** Monotonic ms (performance.now()) the packet arrived; for concealment, when it was decided. */
  readonly arrivalMs: number;
  /** True when synthesised to fill a lost packet. */
  readonly concealed: boolean;
  readonly sequenceNumber: number;
  readonly timestamp: number;
}

export interface RtpEndpointHandlers {
  /**
   * Inbound audio, in playout order. The frame belongs to the handler; its samples are a
   * view on a shared slab (see slab.ts): never transfer `samples.buffer`.
   */
  audio?: (frame: InboundAudio) => void;
  talkspurtStart?: (e: TalkspurtStart) => void;
  talkspurtEnd?: (e: TalkspurtEnd) => void;
  utteranceDone?: (u: Utterance) => void;
  /** Exceptions thrown by the other handlers, and socket errors. */
  error?: (err: unknown) => void;
}

export interface RtpEndpointOptions {
  codec: CodecName | Codec;
  /** Address to bind (an IP literal). Default 127.0.0.1. */
  host?: string;
  /** Host Asterisk should send to, when it differs from the bind address (e.g. 0.0.0.0). */
  advertisedHost?: string;
  /** 0 (default) for any free port, a fixed port, or a range to pick a free port from. */
  port?: number | PortRange;
  /** Default: the process-wide shared clock. */
  clock?: MediaClock;
  jitter?: Omit<JitterBufferOptions, 'clockRate' | 'samplesPerPacket'>;
  telephoneEventPayloadType?: number;
  handlers?: RtpEndpointHandlers;
}

export interface RtpEndpointStats {
  packetsIn: number;
  bytesIn: number;
  /** Inbound packets handed to the jitter buffer. */
  packetsAccepted: number;
  telephoneEvents: number;
  dropped: Record<EndpointDropReason, number>;
  jitter: JitterStats;
  packetsOut: number;
  bytesOut: number;
  sendErrors: number;
  playedMs: number;
  clearedMs: number;
  underruns: number;
  pacing: { sendDeviation: HistogramSummary; intervalJitter: HistogramSummary };
}

function emptyDrops(): Record<EndpointDropReason, number> {
  const drops = {} as Record<EndpointDropReason, number>;
  for (const r of ENDPOINT_DROP_REASONS) drops[r] = 0;
  return drops;
}

function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export class RtpEndpoint {
  readonly codec: Codec;
  readonly pacer: Pacer;

  private readonly socket: Socket;
  private readonly clock: MediaClock;
  private readonly unregisterClock: () => void;
  private readonly jitter: JitterBuffer;
  private readonly plc: PacketLossConcealer;
  private readonly local: { host: string; port: number };
  private readonly advertisedHost: string;
  private readonly telephoneEventPt: number;
  private handlers: RtpEndpointHandlers;
  private readonly scratch = createRtpPacket();
  private readonly drops = emptyDrops();
  private readonly counters = { packetsIn: 0, bytesIn: 0, packetsAccepted: 0, telephoneEvents: 0, sendErrors: 0 };

  private remoteAddress: string | undefined;
  private remotePort = 0;
  private latched = false;
  /** For a dynamic payload type: the one the peer sends, once seen. */
  private peerPayloadType: number | undefined;
  private isClosed = false;
  private closing: Promise<void> | undefined;

  /** Bind a socket and register with the media clock. */
  static async open(opts: RtpEndpointOptions): Promise<RtpEndpoint> {
    const host = opts.host ?? '127.0.0.1';
    const socket = await bindUdp(host, opts.port ?? 0);
    return new RtpEndpoint(socket, opts);
  }

  private constructor(socket: Socket, opts: RtpEndpointOptions) {
    this.socket = socket;
    this.codec = typeof opts.codec === 'string' ? getCodec(opts.codec) : opts.codec;
    this.clock = opts.clock ?? sharedMediaClock;
    this.handlers = opts.handlers ?? {};
    this.telephoneEventPt = opts.telephoneEventPayloadType ?? TELEPHONE_EVENT_PAYLOAD_TYPE;
    const bound = socket.address();
    this.local = { host: bound.address, port: bound.port };
    this.advertisedHost = opts.advertisedHost ?? bound.address;
    this.plc = new PacketLossConcealer(this.codec.samplesPer20ms);
    this.jitter = new JitterBuffer(this.jitterSink, { ...opts.jitter, clockRate: this.codec.sampleRate, samplesPerPacket: this.codec.samplesPer20ms });
    this.pacer = new Pacer({
      codec: this.codec,
      format: asteriskSendFormat(this.codec),
      send: this.sendPacket,
      events: {
        talkspurtStart: (e) => this.handlers.talkspurtStart?.(e),
        talkspurtEnd: (e) => this.handlers.talkspurtEnd?.(e),
        utteranceDone: (u) => this.handlers.utteranceDone?.(u),
      },
      onEventError: this.reportError,
    });
    socket.on('message', this.onMessage);
    socket.on('error', this.onSocketError);
    this.unregisterClock = this.clock.register(this.onTick);
  }

  /** Replace some or all handlers. */
  setHandlers(handlers: RtpEndpointHandlers): void {
    this.handlers = { ...this.handlers, ...handlers };
  }

  /** The bound local address (still answers after close). */
  address(): { host: string; port: number } {
    return { ...this.local };
  }

  /** `host:port` to give Asterisk as ExternalMedia `external_host`. */
  get externalHost(): string {
    return formatHostPort(this.advertisedHost, this.local.port);
  }

  /** Where outbound packets go, once known. */
  get remote(): { address: string; port: number } | undefined {
    return this.remoteAddress === undefined ? undefined : { address: this.remoteAddress, port: this.remotePort };
  }

  /** Whether the remote was learned from inbound traffic (and other sources are refused). */
  get remoteLatched(): boolean {
    return this.latched;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Send to `address:port` until the first valid inbound packet shows where the peer
   * really is. `address` must be an IP literal (no DNS on the media path).
   */
  setRemote(address: string, port: number): void {
    if (isIP(address) === 0) throw new TypeError(`RTP remote must be an IP address, got "${address}"`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`RTP remote port must be 1..65535, got ${port}`);
    if (this.latched) return;
    this.remoteAddress = address;
    this.remotePort = port;
  }

  /** Queue outbound PCM16 at the codec rate (see `Pacer.enqueue`). */
  enqueue(frame: AudioFrame): void {
    this.pacer.enqueue(frame);
  }

  /** Queue `frame` as one utterance and follow its progress. */
  play(frame: AudioFrame, id?: string): Utterance {
    return this.pacer.play(frame, id);
  }

  /** Drop all queued outbound audio now; no packet is sent after this call. */
  clear(): ClearResult {
    return this.pacer.clear();
  }

  stats(): RtpEndpointStats {
    const p = this.pacer.stats;
    return {
      ...this.counters,
      dropped: { ...this.drops },
      jitter: { ...this.jitter.stats },
      packetsOut: p.packetsSent,
      bytesOut: p.bytesSent,
      playedMs: p.playedMs,
      clearedMs: p.droppedMs,
      underruns: p.underruns,
      pacing: { sendDeviation: p.sendDeviation.summary(), intervalJitter: p.intervalJitter.summary() },
    };
  }

  /** Stop output, leave the clock, close the socket. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.isClosed = true;
      this.unregisterClock();
      this.pacer.clear();
      this.jitter.reset();
      this.socket.off('message', this.onMessage);
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    return this.closing;
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (this.isClosed) return;
    const arrivalMs = monotonicMs();
    const c = this.counters;
    c.packetsIn++;
    c.bytesIn += msg.length;
    if (this.latched && (rinfo.port !== this.remotePort || rinfo.address !== this.remoteAddress)) {
      this.drops.wrong_source++;
      return;
    }
    const p = this.scratch;
    const reason = parseRtpInto(msg, p);
    if (reason !== null) {
      this.drops[reason]++;
      return;
    }
    if (p.payloadType === this.telephoneEventPt) {
      c.telephoneEvents++;
      this.latch(rinfo);
      return;
    }
    if (this.codec.bytesPerSample === 2 && (p.payload.length & 1) !== 0) {
      this.drops.bad_payload_length++;
      return;
    }
    if (!this.payloadTypeAccepted(p.payloadType)) {
      this.drops.unexpected_payload_type++;
      return;
    }
    this.latch(rinfo);
    c.packetsAccepted++;
    this.jitter.push(p, arrivalMs);
  };

  /**
   * A static type must match the codec's. A dynamic one (slin16) is whatever the peer's
   * first audio packet carries: later packets must carry the same. (It is not mirrored:
   * Asterisk would drop it. What we send is fixed by the pacer's send format.)
   */
  private payloadTypeAccepted(pt: number): boolean {
    if (!this.codec.dynamicPayloadType) return pt === this.codec.payloadType;
    this.peerPayloadType ??= pt;
    return pt === this.peerPayloadType;
  }

  private latch(rinfo: RemoteInfo): void {
    if (this.latched) return;
    this.latched = true;
    this.remoteAddress = rinfo.address;
    this.remotePort = rinfo.port;
  }

  private readonly jitterSink: JitterSink = {
    release: (payload, sequenceNumber, timestamp, arrivalMs) => {
      const samples = this.codec.decode(payload, mediaSlab.int16(payload.length / this.codec.bytesPerSample));
      this.plc.remember(samples);
      this.emitAudio({ samples, sampleRate: this.codec.sampleRate, arrivalMs, concealed: false, sequenceNumber, timestamp });
    },
    conceal: (frames, firstSequenceNumber, firstTimestamp, nowMs) => {
      for (let i = 0; i < frames; i++) {
        this.emitAudio({
          samples: this.plc.conceal(mediaSlab.int16(this.plc.frameLength)),
          sampleRate: this.codec.sampleRate,
          arrivalMs: nowMs,
          concealed: true,
          sequenceNumber: (firstSequenceNumber + i) & 0xffff,
          timestamp: (firstTimestamp + i * this.codec.samplesPer20ms) >>> 0,
        });
      }
    },
  };

  private emitAudio(frame: InboundAudio): void {
    const handler = this.handlers.audio;
    if (!handler) return;
    try {
      handler(frame);
    } catch (err) {
      this.reportError(err);
    }
  }

  private readonly onTick = (tick: ClockTick): void => {
    if (this.isClosed) return;
    this.jitter.poll(tick.firedMs);
    if (this.remoteAddress !== undefined) this.pacer.tick(tick);
  };

  private readonly sendPacket = (packet: Uint8Array): void => {
    try {
      // The pacer reuses its packet buffers (PACKET_RING). A datagram normally leaves
      // synchronously; if the socket has sends queued, this one may wait, so give it its own copy.
      this.socket.send(this.socket.getSendQueueCount() > 0 ? Buffer.from(packet) : packet, this.remotePort, this.remoteAddress);
    } catch (err) {
      this.counters.sendErrors++;
      this.reportError(err);
    }
  };

  private readonly onSocketError = (err: Error): void => {
    this.counters.sendErrors++;
    this.reportError(err);
  };

  private readonly reportError = (err: unknown): void => {
    const handler = this.handlers.error;
    if (handler) {
      try {
        handler(err);
        return;
      } catch {
        // fall through to the process warning
      }
    }
    process.emitWarning(`RTP endpoint: ${err instanceof Error ? err.message : String(err)}`, 'RtpEndpointWarning');
  };
}
