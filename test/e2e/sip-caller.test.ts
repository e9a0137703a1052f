/**
 * The scripted SIP caller (src/demo/sip-caller.ts).
 *
 * 1. SIP messages, digest and SDP: parsing edge cases, fuzzed garbage, RFC test vectors.
 * 2. Against a scripted in-process UAS on loopback (fast SIP timers): INVITE retransmission on
 *    Timer A, 2xx ACK as its own transaction (re-sent for a retransmitted 2xx), digest auth,
 *    CANCEL before the answer, Timer B, in-dialog OPTIONS/INFO/NOTIFY/re-INVITE, 481 for a foreign
 *    dialog, garbage, BYE retransmission on Timer E, far-end BYE, continuous RTP, a far end that
 *    stops sending RTP still ending its turn.
 * 3. Through the real sandbox Asterisk: extension 600 (Echo) hears our lines come back, 601
 *    (Playback hello-world, then Hangup) speaks and hangs up, barge-in timing, our BYE answered
 *    200, 404 for an unknown extension, digest auth as phone 6001.
 * Every call must leave no socket or timer behind.
 */
import { spawn } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rmsDbfs, type AudioFrame } from '../../src/audio/frame.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { buildAudioSdp, parseSdp } from '../../src/demo/sdp.js';
import { CallEndedError, SipCallError, SipCaller, type SipCallerOptions } from '../../src/demo/sip-caller.js';
import { computeDigestResponse } from '../../src/demo/sip-digest.js';
import {
  createResponse,
  cseqOf,
  parseAuthChallenge,
  parseNameAddr,
  parseSipMessage,
  parseVia,
  serializeSipMessage,
  SipParseError,
  tagOf,
  topViaOf,
  type SipMessage,
  type SipRequest,
} from '../../src/demo/sip-message.js';
import { synthesizeSpeech } from '../../src/demo/speech.js';
import { REPO_ROOT } from '../../src/pbx/paths.js';
import { RtpEndpoint } from '../../src/rtp/endpoint.js';
import { useSandbox } from '../support/pbx.js';

const T1 = 40; // fast SIP timers against the in-process UAS

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Wait (bounded) until the UDP sockets and timers are back to `before` (closing is async). */
async function expectNoLeaks(before: Record<string, number>): Promise<void> {
  const deadline = Date.now() + 2000;
  let now = resourceCounts();
  while (Date.now() < deadline && ((now.UDPWrap ?? 0) > (before.UDPWrap ?? 0) || (now.Timeout ?? 0) > (before.Timeout ?? 0))) {
    await new Promise((r) => setTimeout(r, 50));
    now = resourceCounts();
  }
  expect(now.UDPWrap ?? 0).toBeLessThanOrEqual(before.UDPWrap ?? 0);
  expect(now.Timeout ?? 0).toBeLessThanOrEqual(before.Timeout ?? 0);
}

/**
 * Observe a promise from now on: the returned promise resolves with its outcome. (A dial that
 * fails while the test is still scripting the far end must not count as an unhandled rejection.)
 */
function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

async function rejection(p: Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>): Promise<unknown> {
  const r = await p;
  if (r.ok) throw new Error('expected a rejection, the promise resolved');
  return r.error;
}

async function answered<T>(p: Promise<{ ok: true; value: T } | { ok: false; error: unknown }>): Promise<T> {
  const r = await p;
  if (!r.ok) throw r.error;
  return r.value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// --- 1. messages -----------------------------------------------------------------------------------

describe('SIP messages, digest and SDP', () => {
  test('compact and case-insensitive headers, several Via, folded lines, Content-Length', () => {
    const body = 'v=0\r\nextra';
    const raw =
      'SIP/2.0 200 OK\r\n' +
      'v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKaaa;rport=5070, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKbbb\r\n' +
      'VIA: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKccc\r\n' +
      'f: "Caller, One" <sip:caller1@127.0.0.1>;tag=abc\r\n' +
      't: <sip:600@127.0.0.1>\r\n' +
      ' ;tag=xyz\r\n' +
      'i: call-1@host\r\n' +
      'cseq: 7 INVITE\r\n' +
      'm: <sip:600@127.0.0.1:5060;transport=udp>\r\n' +
      'Record-Route: <sip:p1@10.0.0.9;lr>, <sip:p2@10.0.0.8;lr>\r\n' +
      'c: application/sdp\r\n' +
      'l: 3\r\n\r\n' +
      body;
    const msg = parseSipMessage(Buffer.from(raw));
    expect(msg.kind).toBe('response');
    if (msg.kind !== 'response') return;
    expect(msg.status).toBe(200);
    expect(msg.headers.getList('Via')).toHaveLength(3);
    expect(parseVia(msg.headers.getList('via')[1] as string)).toMatchObject({ host: '10.0.0.1', port: undefined, transport: 'UDP' });
    expect(topViaOf(msg)?.params.get('branch')).toBe('z9hG4bKaaa');
    expect(msg.headers.get('CALL-ID')).toBe('call-1@host');
    expect(tagOf(msg.headers.get('to'))).toBe('xyz');
    expect(parseNameAddr(msg.headers.get('from') as string).displayName).toBe('Caller, One');
    expect(cseqOf(msg)).toEqual({ seq: 7, method: 'INVITE' });
    expect(msg.headers.getList('record-route')).toEqual(['<sip:p1@10.0.0.9;lr>', '<sip:p2@10.0.0.8;lr>']);
    expect(msg.body.toString()).toBe('v=0'); // exactly Content-Length bytes
    expect(msg.headers.get('content-type')).toBe('application/sdp');
  });

  test('serialise then parse gives the same message; bare LF line ends are accepted', () => {
    const req = parseSipMessage(
      Buffer.from(
        'OPTIONS sip:caller1@127.0.0.1:5099 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\nFrom: <sip:asterisk@127.0.0.1>;tag=1\n' +
          'To: <sip:caller1@127.0.0.1>\nCall-ID: x\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n',
      ),
    ) as SipRequest;
    expect(req.method).toBe('OPTIONS');
    const res = createResponse(req, 200, { toTag: 'me', headers: [['Allow', 'INVITE, BYE']] });
    const again = parseSipMessage(serializeSipMessage(res));
    expect(again.kind === 'response' && again.status).toBe(200);
    expect(tagOf(again.headers.get('to'))).toBe('me');
    expect(again.headers.get('via')).toBe(req.headers.get('via'));
    expect(serializeSipMessage(res).toString()).toContain('Content-Length: 0\r\n\r\n');
  });

  test('malformed messages are refused with SipParseError', () => {
    const good =
      'BYE sip:a@1.2.3.4 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nFrom: <sip:b@1.2.3.4>;tag=1\r\nTo: <sip:a@1.2.3.4>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n';
    expect(() => parseSipMessage(Buffer.from(`${good}\r\n`))).not.toThrow();
    const bad = [
      '',
      '\r\n\r\n',
      'HELLO\r\n\r\n',
      good.replace('CSeq: 2 BYE', 'CSeq: 2 INVITE') + '\r\n', // method mismatch
      good.replace('Call-ID: c\r\n', '') + '\r\n', // missing Call-ID
      good.replace('Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx', 'Via: nonsense') + '\r\n',
      good + 'Content-Length: 50\r\n\r\nshort', // truncated body
      good + 'Content-Length: -1\r\n\r\n',
      good + 'Bad Header Line\r\n\r\n',
      'SIP/2.0 999 Nope\r\n\r\n',
    ];
    for (const b of bad) expect(() => parseSipMessage(Buffer.from(b)), JSON.stringify(b.slice(0, 40))).toThrow(SipParseError);
  });

  test('fuzz: random and mutated datagrams only ever raise SipParseError', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const base = Buffer.from(
      'INVITE sip:600@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKq;rport\r\nf: <sip:c@h>;tag=1\r\nt: <sip:600@h>\r\n' +
        'i: id\r\nCSeq: 1 INVITE\r\nm: <sip:c@127.0.0.1:5070>\r\nc: application/sdp\r\nl: 4\r\n\r\nv=0\r\n',
    );
    let parsed = 0;
    for (let i = 0; i < 5000; i++) {
      let buf: Buffer;
      if (i % 3 === 0) {
        buf = Buffer.alloc(rnd(300));
        for (let k = 0; k < buf.length; k++) buf[k] = rnd(256);
      } else {
        buf = Buffer.from(base.subarray(0, rnd(base.length + 1)));
        for (let k = 0, n = rnd(4); k < n && buf.length > 0; k++) buf[rnd(buf.length)] = rnd(256);
      }
      try {
        parseSipMessage(buf);
        parsed++;
      } catch (err) {
        expect(err).toBeInstanceOf(SipParseError);
      }
    }
    expect(parsed).toBeGreaterThan(0); // some mutations leave a valid message
  });

  test('digest: RFC 2617 (MD5) and RFC 7616 (SHA-256) vectors; challenge parsing', () => {
    expect(
      computeDigestResponse({
        username: 'Mufasa',
        password: 'Circle Of Life',
        realm: 'testrealm@host.com',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        method: 'GET',
        uri: '/dir/index.html',
        qop: 'auth',
        nc: 1,
        cnonce: '0a4f113b',
      }),
    ).toBe('6629fae49393a05397450978507c4ef1');
    expect(
      computeDigestResponse({
        username: 'Mufasa',
        password: 'Circle of Life',
        realm: 'http-auth@example.org',
        nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
        method: 'GET',
        uri: '/dir/index.html',
        algorithm: 'SHA-256',
        qop: 'auth',
        nc: 1,
        cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
      }),
    ).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
    const c = parseAuthChallenge('Digest realm="asterisk",nonce="1700000000/abc",opaque="5c1b",algorithm=MD5, qop="auth"');
    expect(c.scheme).toBe('Digest');
    expect(Object.fromEntries(c.params)).toEqual({ realm: 'asterisk', nonce: '1700000000/abc', opaque: '5c1b', algorithm: 'MD5', qop: 'auth' });
  });

  test('SDP: offer is PCMU + telephone-event at ptime 20; an answer is read with media-level c= winning', () => {
    const offer = buildAudioSdp({ address: '127.0.0.1', port: 40000, sessionId: '1', sessionVersion: 1 });
    expect(offer).toContain('m=audio 40000 RTP/AVP 0 101\r\n');
    expect(offer).toContain('a=rtpmap:101 telephone-event/8000');
    expect(offer).toContain('a=ptime:20');
    const answer = parseSdp(
      'v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=Asterisk\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 30440 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\n' +
        'a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendonly\r\n',
    );
    expect(answer.audio).toMatchObject({ address: '127.0.0.1', port: 30440, payloadTypes: [0, 101], telephoneEventPayloadType: 101, direction: 'sendonly' });
  });
});

// --- 2. a scripted UAS in-process ----------------------------------------------------------------

interface Received {
  msg: SipMessage;
  from: RemoteInfo;
  at: number;
  taken: boolean;
}

/** A scripted far end: a SIP socket that records everything and answers what the test says. */
class FakeUas {
  readonly inbox: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (buf, from) => {
      try {
        this.inbox.push({ msg: parseSipMessage(buf), from, at: performance.now(), taken: false });
      } catch {
        return;
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(): Promise<FakeUas> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new FakeUas(socket, socket.address().port);
  }

  /** The next unconsumed message matching `pred`. */
  async next(pred: (m: SipMessage) => boolean, what: string, timeoutMs = 3000): Promise<Received> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.inbox.find((r) => !r.taken && pred(r.msg));
      if (hit) {
        hit.taken = true;
        return hit;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`FakeUas: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  request(method: string): (m: SipMessage) => boolean {
    return (m) => m.kind === 'request' && m.method === method;
  }

  response(status: number, method: string): (m: SipMessage) => boolean {
    return (m) => m.kind === 'response' && m.status === status && cseqOf(m).method === method;
  }

  send(msg: SipMessage | Buffer | string, to: RemoteInfo): void {
    const buf = typeof msg === 'string' ? Buffer.from(msg) : Buffer.isBuffer(msg) ? msg : serializeSipMessage(msg);
    this.socket.send(buf, to.port, to.address);
  }

  reply(r: Received, status: number, opts: Parameters<typeof createResponse>[2] = {}): void {
    this.send(createResponse(r.msg as SipRequest, status, opts), r.from);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

describe('SIP caller against a scripted UAS', () => {
  let model: SileroVadModel;
  let uas: FakeUas;
  let media: RtpEndpoint;
  let speech: AudioFrame;
  let baseline: Record<string, number>;
  const calls: SipCaller[] = [];

  beforeAll(async () => {
    model = await SileroVadModel.load();
    speech = await synthesizeSpeech('Thank you for calling today.');
    baseline = resourceCounts();
  });

  afterAll(async () => {
    await model.close();
  });

  async function setup(): Promise<void> {
    uas = await FakeUas.open();
    media = await RtpEndpoint.open({ codec: 'ulaw' });
  }

  function track(call: SipCaller): SipCaller {
    calls.push(call);
    return call;
  }

  async function teardown(): Promise<void> {
    // A failed test may leave its call up: end it before the far end goes away.
    for (const c of calls.splice(0)) if (!c.isEnded) await c.hangup();
    await media.close();
    await uas.close();
  }

  function options(extra: Partial<SipCallerOptions> = {}): SipCallerOptions {
    return {
      host: '127.0.0.1',
      port: uas.port,
      extension: '600',
      vad: model,
      sipTimers: { t1: T1, t2: 8 * T1, t4: 10 * T1 },
      ...extra,
    };
  }

  const uasTag = 'uas-tag-1';
  function answerSdp(): string {
    const a = media.address();
    return buildAudioSdp({ address: a.host, port: a.port, sessionId: '42', sessionVersion: 1, sessionName: 'fake' });
  }

  function answer(invite: Received): void {
    uas.reply(invite, 200, {
      toTag: uasTag,
      headers: [
        ['Contact', `<sip:600@127.0.0.1:${uas.port}>`],
        ['Content-Type', 'application/sdp'],
      ],
      body: answerSdp(),
    });
  }

  /** A request from the UAS inside the dialog the INVITE created. */
  function inDialog(invite: SipRequest, method: string, seq: number, opts: { fromTag?: string; body?: string; headers?: string[] } = {}): string {
    const body = opts.body ?? '';
    return (
      `${method} ${parseNameAddr(invite.headers.get('contact') as string).uri} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:${uas.port};branch=z9hG4bK${method}${seq}\r\n` +
      `From: <sip:600@127.0.0.1>;tag=${opts.fromTag ?? uasTag}\r\n` +
      `To: ${invite.headers.get('from')}\r\n` +
      `Call-ID: ${invite.headers.get('call-id')}\r\n` +
      `CSeq: ${seq} ${method}\r\n` +
      `Contact: <sip:600@127.0.0.1:${uas.port}>\r\n` +
      (opts.headers ?? []).map((h) => `${h}\r\n`).join('') +
      (body ? 'Content-Type: application/sdp\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    );
  }

  test('INVITE retransmitted on Timer A; 2xx ACKed (and re-ACKed); continuous RTP; a silent far end ends its turn; far-end BYE', async () => {
    await setup();
    try {
      const dialledAt = performance.now();
      const dialed = outcome(SipCaller.dial(options()));
      const first = await uas.next(uas.request('INVITE'), 'INVITE');
      const second = await uas.next(uas.request('INVITE'), 'INVITE retransmission');
      const third = await uas.next(uas.request('INVITE'), 'second INVITE retransmission');
      const inv = first.msg as SipRequest;
      expect(topViaOf(second.msg)?.params.get('branch')).toBe(topViaOf(inv)?.params.get('branch'));
      // Stamps are taken when the datagram is handled, so they can be late, never early.
      expect(second.at - dialledAt).toBeGreaterThanOrEqual(T1);
      expect(third.at - dialledAt).toBeGreaterThanOrEqual(3 * T1); // T1, then 2·T1
      expect(third.at - dialledAt).toBeLessThan(3 * T1 + 1000);
      expect(inv.headers.get('content-type')).toBe('application/sdp');
      const offer = parseSdp(inv.body.toString()).audio;
      expect(offer).toMatchObject({ payloadTypes: [0, 101], ptime: 20, direction: 'sendrecv' });
      media.setRemote(offer?.address as string, offer?.port as number);

      uas.reply(first, 100);
      uas.reply(first, 180, { toTag: uasTag });
      answer(first);
      const call = track(await answered(dialed));
      const ack = (await uas.next(uas.request('ACK'), 'ACK')).msg as SipRequest;
      expect(ack.uri).toBe(`sip:600@127.0.0.1:${uas.port}`); // the Contact of the 2xx
      expect(cseqOf(ack)).toEqual({ seq: cseqOf(inv).seq, method: 'ACK' });
      expect(topViaOf(ack)?.params.get('branch')).not.toBe(topViaOf(inv)?.params.get('branch')); // its own transaction
      expect(tagOf(ack.headers.get('to'))).toBe(uasTag);
      answer(first); // a retransmitted 2xx (as if our ACK were lost) is ACKed again
      await uas.next(uas.request('ACK'), 'second ACK');

      // Continuous RTP from the caller while it says nothing (comfort silence).
      const before = media.stats().packetsAccepted;
      await sleep(400);
      expect(media.stats().packetsAccepted - before).toBeGreaterThanOrEqual(15);

      // The far end speaks, then sends no RTP at all: the turn must still end.
      const played = media.play(speech);
      const turn = await call.waitForAgentTurn({ timeoutMs: 10_000 });
      expect(played.state).toBe('played');
      const lastPacket = played.lastSentAtMs as number;
      expect(turn.speechMs).toBeGreaterThan(700);
      // Ends at the line's last packet (the speech is trimmed: its last packet is sound)...
      expect(Math.abs(turn.endedAt - lastPacket)).toBeLessThan(30);
      expect(Math.abs(turn.startedAt - (played.firstSentAtMs as number))).toBeLessThan(30);
      // ...decided after 700 ms of silence although no packet came after the line.
      expect(turn.decidedAt - turn.endedAt).toBeGreaterThanOrEqual(650);
      expect(turn.decidedAt - lastPacket).toBeLessThan(1200);
      expect(turn.audio.samples.length).toBeGreaterThan(8000 * 0.7);
      expect(turn.cutByHangup).toBe(false);
      expect(turn.latencyMs).toBeUndefined(); // the greeting follows no line of ours

      // A line, then the far end answers 400 ms after our last speech packet: the turn's latency
      // on the wire is measured from that packet to the far end's first one.
      const heardBefore = media.stats().packetsAccepted;
      const said = await call.say('I need help with my scooter');
      expect(said.lastSpeechSentAt).toBeDefined();
      expect(media.stats().packetsAccepted - heardBefore).toBeGreaterThanOrEqual(Math.floor(said.durationMs / 20) - 2);
      await sleep((said.lastSpeechSentAt as number) + 400 - performance.now());
      const reply = media.play(speech);
      const answerTurn = await call.waitForAgentTurn({ timeoutMs: 10_000 });
      const firstReplyPacket = reply.firstSentAtMs as number;
      expect(Math.abs(answerTurn.startedAt - firstReplyPacket)).toBeLessThan(30); // loopback: arrival ≈ departure
      expect(answerTurn.callerLine?.id).toBe(said.id);
      expect(answerTurn.overlappedCaller).toBe(false);
      expect(Math.abs((answerTurn.latencyMs as number) - (firstReplyPacket - (said.lastSpeechSentAt as number)))).toBeLessThan(30);
      expect(answerTurn.latencyMs).toBeGreaterThanOrEqual(390);
      expect(answerTurn.latencyMs).toBeLessThan(460);
      expect(call.timings[1]).toMatchObject({ turn: 1, callerLine: 'I need help with my scooter', latencyMs: answerTurn.latencyMs });

      // The far end hangs up.
      uas.send(inDialog(inv, 'BYE', 1), first.from);
      await uas.next(uas.response(200, 'BYE'), '200 to BYE');
      const end = await call.ended;
      expect(end.reason).toBe('remote-bye');
      expect(end.durationMs).toBeGreaterThan(400);
      await expect(call.say('too late')).rejects.toBeInstanceOf(CallEndedError);
    } finally {
      await teardown();
    }
  }, 60_000);

  test('digest authentication: a 401 is answered with credentials (new CSeq, same Call-ID); refused twice is an auth error', async () => {
    await setup();
    try {
      const dialing = outcome(SipCaller.dial(options({ from: '6001', password: 'secret' })));
      const first = await uas.next(uas.request('INVITE'), 'INVITE');
      uas.reply(first, 401, { toTag: 'a1', headers: [['WWW-Authenticate', 'Digest realm="asterisk",nonce="n0nce",opaque="op",algorithm=MD5,qop="auth"']] });
      const ack401 = (await uas.next(uas.request('ACK'), 'ACK of 401')).msg as SipRequest;
      expect(topViaOf(ack401)?.params.get('branch')).toBe(topViaOf(first.msg)?.params.get('branch')); // same transaction
      const second = await uas.next(uas.request('INVITE'), 'authenticated INVITE');
      const inv = second.msg as SipRequest;
      expect(cseqOf(inv).seq).toBe(cseqOf(first.msg).seq + 1);
      expect(inv.headers.get('call-id')).toBe(first.msg.headers.get('call-id'));
      expect(tagOf(inv.headers.get('from'))).toBe(tagOf(first.msg.headers.get('from')));
      const auth = parseAuthChallenge(inv.headers.get('authorization') as string).params;
      expect(auth.get('username')).toBe('6001');
      expect(auth.get('opaque')).toBe('op');
      expect(auth.get('response')).toBe(
        computeDigestResponse({
          username: '6001',
          password: 'secret',
          realm: 'asterisk',
          nonce: 'n0nce',
          method: 'INVITE',
          uri: inv.uri,
          algorithm: 'MD5',
          qop: 'auth',
          nc: parseInt(auth.get('nc') as string, 16),
          cnonce: auth.get('cnonce'),
        }),
      );
      // Refuse again (as for a wrong password): the caller must give up, not loop.
      uas.reply(second, 401, { toTag: 'a2', headers: [['WWW-Authenticate', 'Digest realm="asterisk",nonce="n0nce2",algorithm=MD5']] });
      const err = await rejection(dialing);
      expect(err).toBeInstanceOf(SipCallError);
      expect(err).toMatchObject({ kind: 'auth', status: 401 });
    } finally {
      await teardown();
    }
  });

  test('CANCEL before the answer (AbortSignal): same branch as the INVITE, 487 ACKed, dial rejects "cancelled"', async () => {
    await setup();
    try {
      const ac = new AbortController();
      const dialing = outcome(SipCaller.dial(options({ signal: ac.signal })));
      const inv = await uas.next(uas.request('INVITE'), 'INVITE');
      uas.reply(inv, 100);
      uas.reply(inv, 180, { toTag: 'r1' });
      await sleep(50);
      ac.abort();
      const cancel = await uas.next(uas.request('CANCEL'), 'CANCEL');
      const c = cancel.msg as SipRequest;
      expect(c.uri).toBe((inv.msg as SipRequest).uri);
      expect(topViaOf(c)?.params.get('branch')).toBe(topViaOf(inv.msg)?.params.get('branch'));
      expect(cseqOf(c)).toEqual({ seq: cseqOf(inv.msg).seq, method: 'CANCEL' });
      expect(tagOf(c.headers.get('to'))).toBeUndefined();
      uas.reply(cancel, 200, { toTag: 'r1' });
      uas.reply(inv, 487, { toTag: 'r1' });
      const ack = (await uas.next(uas.request('ACK'), 'ACK of 487')).msg;
      expect(topViaOf(ack)?.params.get('branch')).toBe(topViaOf(inv.msg)?.params.get('branch'));
      expect(await rejection(dialing)).toMatchObject({ name: 'SipCallError', kind: 'cancelled', status: 487 });
    } finally {
      await teardown();
    }
  });

  test('answerTimeoutMs CANCELs a call left ringing; no response at all is a Timer B timeout', async () => {
    await setup();
    try {
      const dialledAt = performance.now();
      const ringing = outcome(SipCaller.dial(options({ answerTimeoutMs: 300 })));
      const inv = await uas.next(uas.request('INVITE'), 'INVITE');
      uas.reply(inv, 180, { toTag: 'r2' });
      const cancel = await uas.next(uas.request('CANCEL'), 'CANCEL', 2000);
      expect(cancel.at - dialledAt).toBeGreaterThanOrEqual(300);
      expect(cancel.at - dialledAt).toBeLessThan(1300);
      uas.reply(cancel, 200, { toTag: 'r2' });
      uas.reply(inv, 487, { toTag: 'r2' });
      expect(await rejection(ringing)).toMatchObject({ kind: 'timeout', status: 487 });

      const started = performance.now();
      await expect(SipCaller.dial(options())).rejects.toMatchObject({ kind: 'timeout', status: undefined });
      const took = performance.now() - started;
      expect(took).toBeGreaterThanOrEqual(64 * T1 * 0.9);
      expect(took).toBeLessThan(64 * T1 + 2000);
      // Timer A: 1 + retransmissions at T1, 3T1, 7T1, 15T1, 31T1 and 63T1 — the last races
      // Timer B (64·T1) when timers fire late on a loaded machine.
      const invites = uas.inbox.filter((r) => r.msg.kind === 'request' && r.msg.method === 'INVITE' && r.at >= started);
      expect(invites.length).toBeGreaterThanOrEqual(6);
      expect(invites.length).toBeLessThanOrEqual(7);
      expect((invites[5] as Received).at - started).toBeGreaterThanOrEqual(31 * T1);
    } finally {
      await teardown();
    }
  });

  test('in-dialog requests: OPTIONS/INFO/NOTIFY 200, re-INVITE answered and its 200 repeated until ACK, foreign tags 481, garbage ignored, BYE retransmitted on Timer E', async () => {
    await setup();
    try {
      const dialed = outcome(SipCaller.dial(options()));
      const invR = await uas.next(uas.request('INVITE'), 'INVITE');
      const inv = invR.msg as SipRequest;
      answer(invR);
      const call = track(await answered(dialed));
      await uas.next(uas.request('ACK'), 'ACK');
      const to = invR.from;

      uas.send('\x00\x01garbage\xff', to);
      uas.send('INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n', to);
      uas.send('\r\n\r\n', to);
      for (const [i, m] of (['OPTIONS', 'INFO', 'NOTIFY'] as const).entries()) {
        uas.send(inDialog(inv, m, 10 + i, { headers: m === 'NOTIFY' ? ['Event: talk'] : [] }), to);
        await uas.next(uas.response(200, m), `200 to ${m}`);
      }
      expect(call.stats().sip.garbage).toBe(2);

      // re-INVITE with an unchanged offer: same SDP back (same o= version), 200 repeated until ACK.
      const origin = parseSdp(inv.body.toString()).origin;
      const reInviteSentAt = performance.now();
      uas.send(inDialog(inv, 'INVITE', 20, { body: answerSdp() }), to);
      const ok1 = await uas.next(uas.response(200, 'INVITE'), '200 to re-INVITE');
      const ok2 = await uas.next(uas.response(200, 'INVITE'), 'retransmitted 200 to re-INVITE');
      expect(ok2.at - reInviteSentAt).toBeGreaterThanOrEqual(T1);
      const reAnswer = parseSdp(ok1.msg.body.toString());
      expect(reAnswer.origin).toEqual(origin);
      expect(reAnswer.audio?.direction).toBe('sendrecv');
      uas.send(
        `ACK ${parseNameAddr(inv.headers.get('contact') as string).uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${uas.port};branch=z9hG4bKack20\r\n` +
          `From: <sip:600@127.0.0.1>;tag=${uasTag}\r\nTo: ${inv.headers.get('from')}\r\nCall-ID: ${inv.headers.get('call-id')}\r\nCSeq: 20 ACK\r\nContent-Length: 0\r\n\r\n`,
        to,
      );
      await sleep(6 * T1);
      const repeats = uas.inbox.filter((r) => r.msg.kind === 'response' && cseqOf(r.msg).seq === 20).length;
      await sleep(10 * T1);
      expect(uas.inbox.filter((r) => r.msg.kind === 'response' && cseqOf(r.msg).seq === 20).length).toBe(repeats); // stopped by the ACK

      // Hold (sendonly): answered recvonly, SDP version bumped.
      uas.send(inDialog(inv, 'INVITE', 21, { body: answerSdp().replace('a=sendrecv', 'a=sendonly') }), to);
      const hold = parseSdp((await uas.next(uas.response(200, 'INVITE'), '200 to hold')).msg.body.toString());
      expect(hold.audio?.direction).toBe('recvonly');
      expect(Number(hold.origin?.sessionVersion)).toBe(Number(origin?.sessionVersion) + 1);

      // A BYE for another dialog (wrong tag) is refused and the call goes on.
      uas.send(inDialog(inv, 'BYE', 30, { fromTag: 'someone-else' }), to);
      await uas.next(uas.response(481, 'BYE'), '481 to a foreign BYE');
      expect(call.isEnded).toBe(false);

      // Our hang-up: the first BYE goes unanswered, so it is retransmitted (same branch).
      const hanging = call.hangup();
      const bye1 = await uas.next(uas.request('BYE'), 'BYE');
      const bye2 = await uas.next(uas.request('BYE'), 'BYE retransmission');
      expect(topViaOf(bye2.msg)?.params.get('branch')).toBe(topViaOf(bye1.msg)?.params.get('branch'));
      expect((bye1.msg as SipRequest).uri).toBe(`sip:600@127.0.0.1:${uas.port}`);
      expect(tagOf(bye1.msg.headers.get('to'))).toBe(uasTag);
      expect(cseqOf(bye1.msg).seq).toBeGreaterThan(cseqOf(inv).seq);
      uas.reply(bye1, 200);
      const end = await hanging;
      expect(end).toMatchObject({ reason: 'local-bye', byeStatus: 200 });
      expect(end.error).toBeUndefined();
    } finally {
      await teardown();
    }
  });

  test('no socket or timer is left behind by the calls above', async () => {
    await expectNoLeaks(baseline);
  });
});

// --- 3. the sandbox Asterisk ----------------------------------------------------------------------

describe('SIP caller through the sandbox Asterisk', () => {
  const sandbox = useSandbox('sipcaller');
  let model: SileroVadModel;
  let baseline: Record<string, number>;

  beforeAll(async () => {
    model = await SileroVadModel.load();
    // Warm the speech cache so timings below are not skewed by espeak-ng start-up.
    await synthesizeSpeech('Hello, this is a test of the echo line. My scooter number is four two seven.');
    baseline = resourceCounts();
  });

  afterAll(async () => {
    await model.close();
  });

  function opts(extra: Partial<SipCallerOptions>): SipCallerOptions {
    const sip = sandbox().connection.sip;
    if (!sip) throw new Error('sandbox connection has no SIP section');
    return { host: sip.host, port: sip.port, extension: '600', vad: model, ...extra };
  }

  test('extension 600 (Echo): each line comes back and is heard as the far end speaking; our BYE is answered 200', async () => {
    const call = await SipCaller.dial(opts({ extension: '600' }));
    try {
      expect(call.remoteAudio?.payloadTypes).toContain(0);
      for (const line of ['Hello, this is a test of the echo line. My scooter number is four two seven.', 'Can you hear me now?']) {
        const said = await call.say(line);
        const turn = await call.waitForAgentTurn({ timeoutMs: 10_000 });
        const spoken = (said.lastSpeechSentAt as number) - (said.speechStartSentAt as number);
        // The echo starts right after our first speech packet and ends right after our last.
        expect(turn.overlappedCaller).toBe(true);
        expect(turn.startedAt - (said.speechStartSentAt as number)).toBeGreaterThanOrEqual(0);
        expect(turn.startedAt - (said.speechStartSentAt as number)).toBeLessThan(300);
        expect(Math.abs(turn.endedAt - (said.lastSpeechSentAt as number))).toBeLessThan(300);
        expect(turn.speechMs).toBeGreaterThan(spoken * 0.5);
        expect(turn.speechMs).toBeLessThan(spoken + 300);
        expect(rmsDbfs(turn.audio.samples)).toBeGreaterThan(-40);
      }
      expect(call.turns).toHaveLength(2);
      expect(call.timings).toHaveLength(2);
    } finally {
      const end = await call.hangup();
      expect(end).toMatchObject({ reason: 'local-bye', byeStatus: 200 });
    }
    expect(call.stats().rtp.packetsOut).toBeGreaterThan(150); // continuous RTP, not just the lines
    expect(call.recording().samples.length).toBeGreaterThan(8000 * 3);
  }, 60_000);

  test('extension 601 (Playback hello-world, Hangup): the far end speaks, then its BYE ends the call', async () => {
    const call = await SipCaller.dial(opts({ extension: '601' }));
    const turn = await call.waitForAgentTurn({ timeoutMs: 10_000 });
    const end = await call.ended;
    expect(end.reason).toBe('remote-bye');
    expect(end.byeStatus).toBeUndefined();
    expect(turn.speechMs).toBeGreaterThan(500);
    expect(turn.speechMs).toBeLessThan(2500);
    expect(turn.startedAt - (call.answeredAt as number)).toBeGreaterThanOrEqual(150); // Wait(0.2) first
    expect(turn.latencyMs).toBeUndefined(); // nothing said before it
    expect(end.at).toBeGreaterThan(turn.endedAt);
    await expect(call.waitForAgentTurn({ timeoutMs: 1000 })).rejects.toBeInstanceOf(CallEndedError);
    expect(call.stats().sip.retransmissionsSent).toBe(0);
  });

  test('barge-in: a line said 150 ms into the far end speaking is sent while it still speaks', async () => {
    const call = await SipCaller.dial(opts({ extension: '601' }));
    try {
      // hello-world lasts about a second, then Asterisk hangs up: a short line, early.
      const r = await call.sayWhileAgentSpeaks('Stop', { afterMs: 150, timeoutMs: 10_000 });
      expect(r.agentSpeakingWhenSent).toBe(true);
      expect(r.firstSentAt - r.agentStartedAt).toBeGreaterThanOrEqual(140);
      expect(r.firstSentAt - r.agentStartedAt).toBeLessThan(270);
      const turn = await call.waitForAgentTurn({ timeoutMs: 10_000 });
      expect(turn.overlappedCaller).toBe(false); // it started before we spoke
      expect(turn.endedAt).toBeGreaterThan(r.firstSentAt); // and went on after we began
    } finally {
      await call.hangup();
    }
    expect(['remote-bye', 'local-bye']).toContain((await call.ended).reason);
  });

  test('an unknown extension is a 404 rejection, reported at once', async () => {
    const started = performance.now();
    const err = await rejection(outcome(SipCaller.dial(opts({ extension: '4049999' }))));
    expect(err).toBeInstanceOf(SipCallError);
    expect(err).toMatchObject({ kind: 'rejected', status: 404 });
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test('digest auth as phone 6001: the right password gets through, none or a wrong one is an auth error', async () => {
    const account = sandbox().connection.sip?.accounts.find((a) => a.username === '6001');
    if (!account) throw new Error('no 6001 account in the sandbox credentials');
    const call = await SipCaller.dial(opts({ extension: '600', from: '6001', password: account.password }));
    expect((await call.hangup()).byeStatus).toBe(200);
    await expect(SipCaller.dial(opts({ extension: '600', from: '6001' }))).rejects.toMatchObject({ kind: 'auth', status: 401 });
    await expect(SipCaller.dial(opts({ extension: '600', from: '6001', password: 'wrong' }))).rejects.toMatchObject({ kind: 'auth', status: 401 });
  });

  test('no socket or timer is left behind', async () => {
    await expectNoLeaks(baseline);
  });

  test('a script that dials, talks and hangs up exits by itself (sip-call CLI, its own VAD model)', async () => {
    const sip = sandbox().connection.sip;
    if (!sip) throw new Error('sandbox connection has no SIP section');
    const args = ['--import', 'tsx', 'src/demo/sip-call.ts', '--port', String(sip.port), '--extension', '600', '--no-greeting', '--say', 'Testing one two three', '--json'];
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 45_000);
      child.on('close', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code, `did not exit on its own (stderr: ${err})`).toBe(0);
    const summary = JSON.parse(out.trim().split('\n').pop() as string) as { turns: unknown[]; ended: { reason: string; byeStatus: number } };
    expect(summary.turns).toHaveLength(1);
    expect(summary.ended).toMatchObject({ reason: 'local-bye', byeStatus: 200 });
  }, 60_000);
});
