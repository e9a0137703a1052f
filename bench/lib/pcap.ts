/**
 * Loopback capture with tshark and a small reader for what it writes (classic libpcap,
 * IPv4/UDP/RTP), plus the on-the-wire turn analysis of the latency benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ulawDecode } from '../../src/audio/g711.js';
import { onCleanup, sleep } from './cleanup.js';

export interface UdpPacket {
  /** Capture time, ms since the epoch (microsecond resolution). */
  timeMs: number;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export interface RtpPacket extends UdpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  audio: Buffer;
}

/** Read a classic pcap file (any byte order, µs or ns timestamps); UDP over IPv4 only. */
export function readPcap(buf: Buffer): UdpPacket[] {
  if (buf.length < 24) throw new Error('pcap file too short');
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  let nanos: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nanos = magicLE === 0xa1b23c4d;
  } else {
    const magicBE = buf.readUInt32BE(0);
    if (magicBE !== 0xa1b2c3d4 && magicBE !== 0xa1b23c4d) throw new Error('not a classic pcap file (pcapng?)');
    le = false;
    nanos = magicBE === 0xa1b23c4d;
  }
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  const linkType = u32(20);
  const linkHeader: Record<number, number> = { 0: 4, 1: 14, 12: 0, 101: 0, 113: 16, 276: 20 };
  const skip = linkHeader[linkType];
  if (skip === undefined) throw new Error(`unsupported pcap link type ${linkType}`);
  const out: UdpPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const rec = off + 16;
    off = rec + incl;
    if (off > buf.length) break;
    if (linkType === 1 && buf.readUInt16BE(rec + 12) !== 0x0800) continue; // not IPv4
    const ip = rec + skip;
    if (ip + 20 > off || buf[ip]! >> 4 !== 4 || buf[ip + 9] !== 17) continue;
    const udp = ip + (buf[ip]! & 0x0f) * 4;
    if (udp + 8 > off) continue;
    out.push({
      timeMs: sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3),
      srcPort: buf.readUInt16BE(udp),
      dstPort: buf.readUInt16BE(udp + 2),
      payload: buf.subarray(udp + 8, Math.min(off, udp + buf.readUInt16BE(udp + 4))),
    });
  }
  return out;
}

/** RTP view of a UDP packet (undefined when it is not RTP version 2). */
export function asRtp(p: UdpPacket): RtpPacket | undefined {
  const b = p.payload;
  if (b.length < 12 || b[0]! >> 6 !== 2) return undefined;
  const cc = b[0]! & 0x0f;
  let start = 12 + 4 * cc;
  if (b[0]! & 0x10) {
    if (b.length < start + 4) return undefined;
    start += 4 + 4 * b.readUInt16BE(start + 2);
  }
  if (b.length < start) return undefined;
  return { ...p, marker: (b[1]! & 0x80) !== 0, payloadType: b[1]! & 0x7f, sequenceNumber: b.readUInt16BE(2), audio: b.subarray(start) };
}

/** RMS level of a mu-law payload, dBFS (-Infinity for digital silence). */
export function ulawDbfs(audio: Buffer): number {
  if (audio.length === 0) return -Infinity;
  const pcm = ulawDecode(audio);
  let acc = 0;
  for (const s of pcm) acc += s * s;
  return acc === 0 ? -Infinity : 10 * Math.log10(acc / pcm.length / (32768 * 32768));
}

/** A running tshark capture on loopback; `stop()` ends it and returns the packets. */
export class LoopbackCapture {
  private readonly exited: Promise<void>;
  private readonly unregister: () => void;

  private constructor(
    private readonly child: ChildProcess,
    readonly file: string,
  ) {
    this.exited = new Promise((r) => child.once('exit', () => r()));
    this.unregister = onCleanup(`stop tshark (pid ${child.pid})`, () => this.kill());
  }

  /** Start tshark (`filter` is a capture filter); resolves once it is capturing. */
  static async start(file: string, filter: string): Promise<LoopbackCapture> {
    const child = spawn('tshark', ['-i', 'lo', '-F', 'pcap', '-w', file, '-f', filter, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const cap = new LoopbackCapture(child, file);
    let err = '';
    const ready = new Promise<boolean>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Capturing on')) resolve(true);
      });
      child.once('exit', () => resolve(false));
      setTimeout(() => resolve(false), 15_000);
    });
    if (!(await ready)) {
      await cap.kill();
      throw new Error(`tshark did not start capturing: ${err.trim().slice(-300)}`);
    }
    await sleep(200); // the capture filter is attached just before the message
    return cap;
  }

  private async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGINT');
    const done = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  async stop(): Promise<UdpPacket[]> {
    await this.kill();
    this.unregister();
    return readPcap(await readFile(this.file));
  }
}

// ------------------------------------------------------------------------------------------
// Turn analysis on the wire.

export interface WireTurn {
  /** Caller's last voiced packet before the agent's talkspurt, capture ms. */
  lastVoicedAt: number;
  /** First packet of the agent's talkspurt. */
  firstAgentAt: number;
  latencyMs: number;
}

export interface WireBargeIn {
  /** First voiced caller packet during the agent's talkspurt. */
  onsetAt: number;
  /** Agent's last packet of that talkspurt. */
  lastAgentAt: number;
  reactionMs: number;
}

export interface WireAnalysis {
  inboundPackets: number;
  outboundPackets: number;
  talkspurts: number;
  /** |interval - 20 ms| between consecutive agent packets within a talkspurt, ms. */
  outboundIntervalDeviationMs: number[];
  turns: WireTurn[];
  bargeIns: WireBargeIn[];
  /** Asterisk's forwarding delay, from identical voiced payloads seen on both legs (ms, per packet). */
  asteriskForwardMs: { callerToSwitchboard: number[]; switchboardToCaller: number[] };
}

/**
 * A caller packet carries sound when its level is above this. The scripted caller's pauses
 * are digital silence, so this catches quiet fricatives and nasal tails too (-60 dBFS in
 * 10 ms blocks is where the clip composer trims its speech).
 */
const VOICED_DBFS = -65;
/** Silence before a caller packet for it to count as a speech onset. */
const ONSET_QUIET_MS = 300;

/**
 * `sbPorts`: Switchboard's RTP ports (the ExternalMedia leg); `asteriskRange`: Asterisk's RTP
 * ports. Packets to/from `sbPorts` are the ExternalMedia leg; the rest in the range the SIP leg.
 */
export function analyzeWire(packets: UdpPacket[], sbPorts: ReadonlySet<number>, asteriskRange: { start: number; end: number }): WireAnalysis {
  const inAst = (port: number): boolean => port >= asteriskRange.start && port <= asteriskRange.end;
  const rtp = packets.map(asRtp).filter((p): p is RtpPacket => p !== undefined && p.payloadType === 0);
  rtp.sort((a, b) => a.timeMs - b.timeMs);
  const inbound = rtp.filter((p) => sbPorts.has(p.dstPort));
  const outbound = rtp.filter((p) => sbPorts.has(p.srcPort));
  const sipToAst = rtp.filter((p) => !sbPorts.has(p.srcPort) && !sbPorts.has(p.dstPort) && inAst(p.dstPort) && !inAst(p.srcPort));
  const astToSip = rtp.filter((p) => !sbPorts.has(p.srcPort) && !sbPorts.has(p.dstPort) && inAst(p.srcPort) && !inAst(p.dstPort));
  const voiced = (p: RtpPacket): boolean => ulawDbfs(p.audio) > VOICED_DBFS;
  const inboundVoiced = inbound.filter(voiced);

  // The agent's talkspurts: the marker bit starts one (the pacer sets it on every first packet).
  const spurts: Array<{ start: number; end: number }> = [];
  const intervalDev: number[] = [];
  for (const p of outbound) {
    const cur = spurts[spurts.length - 1];
    if (!cur || p.marker) spurts.push({ start: p.timeMs, end: p.timeMs });
    else {
      intervalDev.push(Math.abs(p.timeMs - cur.end - 20));
      cur.end = p.timeMs;
    }
  }

  const turns: WireTurn[] = [];
  const bargeIns: WireBargeIn[] = [];
  for (const s of spurts) {
    let last: RtpPacket | undefined;
    for (const p of inboundVoiced) {
      if (p.timeMs >= s.start) break;
      last = p;
    }
    if (last) turns.push({ lastVoicedAt: last.timeMs, firstAgentAt: s.start, latencyMs: s.start - last.timeMs });
    // A caller onset (voiced after >= 300 ms without voice) while the agent talks.
    let prevVoicedAt = -Infinity;
    for (const p of inboundVoiced) {
      if (p.timeMs > s.end) break;
      if (p.timeMs > s.start && p.timeMs - prevVoicedAt >= ONSET_QUIET_MS) {
        bargeIns.push({ onsetAt: p.timeMs, lastAgentAt: s.end, reactionMs: s.end - p.timeMs });
        break;
      }
      prevVoicedAt = p.timeMs;
    }
  }

  // Asterisk's forwarding: the same voiced payload on both legs.
  const firstSeen = (list: RtpPacket[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const p of list) {
      if (!voiced(p)) continue;
      const k = p.audio.toString('base64');
      if (!m.has(k)) m.set(k, p.timeMs);
    }
    return m;
  };
  const delays = (from: RtpPacket[], to: RtpPacket[]): number[] => {
    const a = firstSeen(from);
    const out: number[] = [];
    for (const [k, t] of firstSeen(to)) {
      const t0 = a.get(k);
      if (t0 !== undefined && t >= t0 && t - t0 < 1000) out.push(t - t0);
    }
    return out;
  };
  return {
    inboundPackets: inbound.length,
    outboundPackets: outbound.length,
    talkspurts: spurts.length,
    outboundIntervalDeviationMs: intervalDev,
    turns,
    bargeIns,
    asteriskForwardMs: { callerToSwitchboard: delays(sipToAst, inbound), switchboardToCaller: delays(outbound, astToSip) },
  };
}
