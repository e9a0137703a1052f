/**
 * The SDP a G.711 phone needs (RFC 4566 / RFC 3264): build our audio offer (PCMU/8000 plus
 * telephone-event/8000, ptime 20) and answers to re-offers, and read the far end's audio
 * address, port, payload types and direction out of its SDP.
 */
import { isIP } from 'node:net';

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpOfferOptions {
  /** Our RTP address (an IP literal). */
  address: string;
  /** Our RTP port. */
  port: number;
  /** o= session id and version (keep the same id, bump the version when the SDP changes). */
  sessionId: string;
  sessionVersion: number;
  direction?: MediaDirection;
  /** telephone-event payload type (default 101). */
  telephoneEventPayloadType?: number;
  /** s= line (default "switchboard-caller"). */
  sessionName?: string;
}

export const PCMU_PAYLOAD_TYPE = 0;

export function buildAudioSdp(o: SdpOfferOptions): string {
  const family = isIP(o.address) === 6 ? 'IP6' : 'IP4';
  const te = o.telephoneEventPayloadType ?? 101;
  return [
    'v=0',
    `o=- ${o.sessionId} ${o.sessionVersion} IN ${family} ${o.address}`,
    `s=${o.sessionName ?? 'switchboard-caller'}`,
    `c=IN ${family} ${o.address}`,
    't=0 0',
    `m=audio ${o.port} RTP/AVP ${PCMU_PAYLOAD_TYPE} ${te}`,
    `a=rtpmap:${PCMU_PAYLOAD_TYPE} PCMU/8000`,
    `a=rtpmap:${te} telephone-event/8000`,
    `a=fmtp:${te} 0-16`,
    'a=ptime:20',
    `a=${o.direction ?? 'sendrecv'}`,
    '',
  ].join('\r\n');
}

export interface SdpAudio {
  /** Where to send RTP (media-level c= wins over session-level). */
  address: string;
  port: number;
  /** Payload types listed on the m= line, in order. */
  payloadTypes: number[];
  /** rtpmap: payload type -> "PCMU/8000" etc. (static types filled in when absent). */
  rtpmap: Map<number, string>;
  /** telephone-event payload type, if offered. */
  telephoneEventPayloadType: number | undefined;
  direction: MediaDirection;
  ptime: number | undefined;
}

export interface ParsedSdp {
  /** o= session id and version. */
  origin: { sessionId: string; sessionVersion: string } | undefined;
  /** The first audio stream (undefined when there is none). */
  audio: SdpAudio | undefined;
}

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

const STATIC_RTPMAP: Readonly<Record<number, string>> = { 0: 'PCMU/8000', 8: 'PCMA/8000', 9: 'G722/8000', 18: 'G729/8000' };

/** Parse an SDP body. Throws SdpError when it has no v= line or its audio stream is malformed. */
export function parseSdp(text: string): ParsedSdp {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (!lines[0]?.startsWith('v=')) throw new SdpError('SDP does not start with v=');
  let origin: ParsedSdp['origin'];
  let sessionAddress: string | undefined;
  let sessionDirection: MediaDirection | undefined;
  let audio: (Omit<SdpAudio, 'address' | 'direction'> & { address: string | undefined; direction: MediaDirection | undefined }) | undefined;
  let inAudio = false;
  let seenAudio = false;
  for (const line of lines) {
    const type = line[0];
    const value = line.slice(2);
    if (line[1] !== '=') throw new SdpError(`malformed SDP line "${line.slice(0, 60)}"`);
    if (type === 'm') {
      inAudio = false;
      const m = /^(\S+) (\d+)(?:\/\d+)? (\S+)((?: \S+)*)$/.exec(value);
      if (!m) throw new SdpError(`malformed m= line "${value}"`);
      if (m[1] !== 'audio' || seenAudio) continue;
      seenAudio = true;
      inAudio = true;
      const payloadTypes = (m[4] ?? '')
        .trim()
        .split(/\s+/)
        .filter((s) => s.length > 0)
        .map(Number)
        .filter((n) => Number.isInteger(n) && n >= 0 && n <= 127);
      audio = {
        address: undefined,
        port: Number(m[2]),
        payloadTypes,
        rtpmap: new Map(),
        telephoneEventPayloadType: undefined,
        direction: undefined,
        ptime: undefined,
      };
      for (const pt of payloadTypes) {
        const known = STATIC_RTPMAP[pt];
        if (known) audio.rtpmap.set(pt, known);
      }
    } else if (type === 'o') {
      const parts = value.split(/\s+/);
      if (parts.length >= 3) origin = { sessionId: parts[1] as string, sessionVersion: parts[2] as string };
    } else if (type === 'c') {
      const c = /^IN IP[46] ([^\s/]+)/.exec(value);
      if (!c) throw new SdpError(`malformed c= line "${value}"`);
      if (inAudio && audio) audio.address = c[1];
      else if (!seenAudio) sessionAddress = c[1];
    } else if (type === 'a') {
      const dir = /^(sendrecv|sendonly|recvonly|inactive)$/.exec(value)?.[1] as MediaDirection | undefined;
      if (dir) {
        if (inAudio && audio) audio.direction = dir;
        else if (!seenAudio) sessionDirection = dir;
        continue;
      }
      if (!inAudio || !audio) continue;
      const rtpmap = /^rtpmap:(\d+) (\S+)$/.exec(value);
      if (rtpmap) {
        const pt = Number(rtpmap[1]);
        audio.rtpmap.set(pt, rtpmap[2] as string);
        if (/^telephone-event\/8000/i.test(rtpmap[2] as string)) audio.telephoneEventPayloadType = pt;
        continue;
      }
      const ptime = /^ptime:(\d+)$/.exec(value);
      if (ptime) audio.ptime = Number(ptime[1]);
    }
  }
  if (!audio) return { origin, audio: undefined };
  const address = audio.address ?? sessionAddress;
  if (audio.port !== 0 && address === undefined) throw new SdpError('audio stream has no connection address');
  if (audio.port > 65535) throw new SdpError(`audio port ${audio.port} out of range`);
  return {
    origin,
    audio: { ...audio, address: address ?? '0.0.0.0', direction: audio.direction ?? sessionDirection ?? 'sendrecv' },
  };
}

/** Whether a stream offers or accepts PCMU. */
export function acceptsPcmu(audio: SdpAudio): boolean {
  return audio.payloadTypes.some((pt) => /^PCMU\/8000/i.test(audio.rtpmap.get(pt) ?? ''));
}

/** The direction to answer an offer with (RFC 3264 §6.1), for an endpoint that wants sendrecv. */
export function answerDirection(offered: MediaDirection): MediaDirection {
  switch (offered) {
    case 'sendonly':
      return 'recvonly';
    case 'recvonly':
      return 'sendonly';
    case 'inactive':
      return 'inactive';
    default:
      return 'sendrecv';
  }
}
