import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { alawEncode, getCodec, slinDecode, slinEncode, ulawDecode, ulawEncode } from '../../src/audio/g711.js';
import { RtpEndpoint, type InboundAudio, type RtpEndpointOptions } from '../../src/rtp/endpoint.js';
import { MediaClock, sharedMediaClock } from '../../src/rtp/media-clock.js';
import { parseRtp, serializeRtp, type RtpPacket } from '../../src/rtp/packet.js';
import type { TalkspurtEnd, TalkspurtStart } from '../../src/rtp/pacer.js';

/** A raw UDP socket standing in for Asterisk's side of ExternalMedia. */
class FakeAsterisk {
  readonly received: { packet: RtpPacket; at: number }[] = [];
  readonly garbage: Buffer[] = [];
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg) => {
      const r = parseRtp(msg);
      if (r.ok) this.received.push({ packet: { ...r.packet, payload: r.packet.payload.slice() }, at: performance.now() });
      else this.garbage.push(msg);
    });
  }
  static async open(): Promise<FakeAsterisk> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new FakeAsterisk(socket);
  }
  get port(): number {
    return this.socket.address().port;
  }
  sendRaw(bytes: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }
  sendRtp(port: number, seq: number, payload: Uint8Array, o: { pt?: number; ssrc?: number; ts?: number; marker?: boolean } = {}): Promise<void> {
    const bytes = serializeRtp(
      { marker: o.marker ?? false, payloadType: o.pt ?? 0, sequenceNumber: seq & 0xffff, timestamp: (o.ts ?? 90000 + seq * 160) >>> 0, ssrc: o.ssrc ?? 0x1234 },
      payload,
    );
    return this.sendRaw(bytes, port);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

async function waitFor(cond: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Distinct, recognisable 20 ms mu-law payloads: frame k is a constant level. */
function ulawFrame(k: number): Uint8Array {
  return ulawEncode(new Int16Array(160).fill(100 * (k % 200) + 16));
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function endpoint(opts: Partial<RtpEndpointOptions> = {}): Promise<{ ep: RtpEndpoint; frames: InboundAudio[]; starts: TalkspurtStart[]; ends: TalkspurtEnd[]; errors: unknown[] }> {
  const frames: InboundAudio[] = [];
  const starts: TalkspurtStart[] = [];
  const ends: TalkspurtEnd[] = [];
  const errors: unknown[] = [];
  const ep = await RtpEndpoint.open({
    codec: 'ulaw',
    ...opts,
    handlers: { audio: (f) => frames.push(f), talkspurtStart: (e) => starts.push(e), talkspurtEnd: (e) => ends.push(e), error: (e) => errors.push(e), ...opts.handlers },
  });
  cleanups.push(() => ep.close());
  return { ep, frames, starts, ends, errors };
}

async function asterisk(): Promise<FakeAsterisk> {
  const a = await FakeAsterisk.open();
  cleanups.push(() => a.close());
  return a;
}

describe('RtpEndpoint: binding', () => {
  it('binds 127.0.0.1 on an ephemeral port and reports the ExternalMedia host', async () => {
    const { ep } = await endpoint();
    const { host, port } = ep.address();
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(ep.externalHost).toBe(`127.0.0.1:${port}`);
    expect(ep.remote).toBeUndefined();
  });

  it('advertises a different host when asked to', async () => {
    const { ep } = await endpoint({ advertisedHost: '10.1.2.3' });
    expect(ep.externalHost).toBe(`10.1.2.3:${ep.address().port}`);
  });

  it('picks free ports from a configured range and fails when it is exhausted', async () => {
    // Find two adjacent free ports by binding probes, then release them for the endpoints.
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
    const base = probe.address().port;
    await new Promise<void>((r) => probe.close(r));
    const range = { min: base, max: base + 1 };
    const a = await endpoint({ port: range });
    const b = await endpoint({ port: range });
    expect(new Set([a.ep.address().port, b.ep.address().port])).toEqual(new Set([base, base + 1]));
    await expect(RtpEndpoint.open({ codec: 'ulaw', port: range })).rejects.toThrow(/no free UDP port/);
  });

  it('rejects a hostname as the bind address or the remote', async () => {
    await expect(RtpEndpoint.open({ codec: 'ulaw', host: 'localhost' })).rejects.toThrow(TypeError);
    const { ep } = await endpoint();
    expect(() => ep.setRemote('asterisk', 4000)).toThrow(TypeError);
    expect(() => ep.setRemote('127.0.0.1', 0)).toThrow(RangeError);
  });
});

describe('RtpEndpoint: inbound', () => {
  it('decodes in-order packets to frames stamped with their arrival time', async () => {
    const { ep, frames } = await endpoint();
    const ast = await asterisk();
    const before = performance.now();
    for (let k = 0; k < 5; k++) await ast.sendRtp(ep.address().port, 500 + k, ulawFrame(k));
    await waitFor(() => frames.length === 5, 2000, 'five frames');
    expect(frames.map((f) => f.sequenceNumber)).toEqual([500, 501, 502, 503, 504]);
    expect(frames.every((f) => !f.concealed && f.sampleRate === 8000 && f.samples.length === 160)).toBe(true);
    expect(Array.from(frames[3]?.samples ?? [])).toEqual(Array.from(ulawDecode(ulawFrame(3))));
    for (const f of frames) expect(f.arrivalMs).toBeGreaterThanOrEqual(before);
    expect(ep.remote).toEqual({ address: '127.0.0.1', port: ast.port });
    expect(ep.remoteLatched).toBe(true);
    expect(ep.stats()).toMatchObject({ packetsIn: 5, packetsAccepted: 5, jitter: { released: 5 } });
  });

  it('drops garbage by reason while the stream continues, and refuses other sources once latched', async () => {
    const { ep, frames } = await endpoint();
    const ast = await asterisk();
    const stranger = await asterisk();
    const port = ep.address().port;
    const good = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: 1, timestamp: 0, ssrc: 1 }, ulawFrame(1));
    await ast.sendRtp(port, 10, ulawFrame(0));
    await ast.sendRaw(good.subarray(0, 7), port); // too_short
    const v1 = good.slice();
    v1[0] = 0x40;
    await ast.sendRaw(v1, port); // bad_version
    const rr = new Uint8Array(32);
    rr.set([0x81, 201, 0, 7]);
    await ast.sendRaw(rr, port); // RTCP receiver report
    await ast.sendRaw(Uint8Array.of(0xa0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 1, 9, 200), port); // padding_overflow
    await ast.sendRtp(port, 11, ulawFrame(1), { pt: 8 }); // A-law on a mu-law stream
    await ast.sendRtp(port, 11, Uint8Array.of(1, 2, 3, 4), { pt: 101 }); // DTMF telephone-event
    await stranger.sendRtp(port, 11, ulawFrame(9), { ssrc: 0x1234 }); // valid RTP, wrong source
    await ast.sendRtp(port, 11, ulawFrame(1));
    await ast.sendRtp(port, 12, ulawFrame(2));
    await waitFor(() => frames.length === 3, 2000, 'stream to continue');
    const s = ep.stats();
    expect(frames.map((f) => f.sequenceNumber)).toEqual([10, 11, 12]);
    expect(s.dropped).toMatchObject({ too_short: 1, bad_version: 1, rtcp: 1, padding_overflow: 1, unexpected_payload_type: 1, wrong_source: 1 });
    expect(s.telephoneEvents).toBe(1);
    expect(s.packetsIn).toBe(10);
    expect(s.packetsAccepted).toBe(3);
  });

  it('reorders, conceals a lost packet after the hold time, and drops duplicates and late packets', async () => {
    const { ep, frames } = await endpoint({ jitter: { maxHoldMs: 40 } });
    const ast = await asterisk();
    const port = ep.address().port;
    for (const seq of [10, 11, 13, 12, 12, 15]) await ast.sendRtp(port, seq, ulawFrame(seq));
    await waitFor(() => frames.length >= 4, 2000, 'reordered frames');
    await waitFor(() => frames.length === 6, 2000, 'concealment after hold'); // 14 concealed, 15 released
    await ast.sendRtp(port, 14, ulawFrame(14)); // too late now
    await ast.sendRtp(port, 16, ulawFrame(16));
    await waitFor(() => frames.length === 7, 2000, 'frame 16');
    expect(frames.map((f) => `${f.sequenceNumber}${f.concealed ? 'c' : ''}`)).toEqual(['10', '11', '12', '13', '14c', '15', '16']);
    const concealed = frames[4] as InboundAudio;
    const last = frames[3] as InboundAudio;
    expect(concealed.samples[0]).toBe(last.samples[0]); // repeats the last frame, fading
    expect(Math.abs(concealed.samples[159] as number)).toBeLessThan(Math.abs(last.samples[159] as number));
    expect(ep.stats().jitter).toMatchObject({ duplicates: 1, late: 1, lost: 1, concealed: 1, reordered: 1 });
  });

  it('resyncs on an SSRC change', async () => {
    const { ep, frames } = await endpoint();
    const ast = await asterisk();
    const port = ep.address().port;
    await ast.sendRtp(port, 100, ulawFrame(0));
    await ast.sendRtp(port, 40000, ulawFrame(1), { ssrc: 0x9999 });
    await ast.sendRtp(port, 40001, ulawFrame(2), { ssrc: 0x9999 });
    await waitFor(() => frames.length === 3);
    expect(frames.every((f) => !f.concealed)).toBe(true);
    expect(ep.stats().jitter.ssrcChanges).toBe(1);
  });

  it('accepts slin16 under whatever dynamic payload type the peer uses, and answers in 8 kHz L16 (PT 11)', async () => {
    const { ep, frames } = await endpoint({ codec: 'slin16' });
    const ast = await asterisk();
    const port = ep.address().port;
    const pcm = Int16Array.from({ length: 320 }, (_, i) => i * 50 - 8000);
    await ast.sendRtp(port, 1, slinEncode(pcm), { pt: 96, ts: 0 });
    await ast.sendRtp(port, 2, slinEncode(pcm), { pt: 118, ts: 320 }); // not the type in use
    await ast.sendRtp(port, 3, Uint8Array.of(1, 2, 3), { pt: 96, ts: 640 }); // odd length
    await waitFor(() => ep.stats().packetsIn === 3);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.sampleRate).toBe(16000);
    expect(frames[0]?.samples).toEqual(pcm);
    expect(ep.stats().dropped).toMatchObject({ unexpected_payload_type: 1, bad_payload_length: 1 });
    // Asterisk's chan_rtp drops every dynamic payload type it receives (see asteriskSendFormat).
    ep.play({ samples: new Int16Array(640).fill(1000), sampleRate: 16000 });
    await waitFor(() => ast.received.length === 2);
    const sent = ast.received.map((r) => r.packet);
    expect(sent.map((p) => p.payloadType)).toEqual([11, 11]);
    expect(sent.map((p) => p.payload.length)).toEqual([320, 320]);
    expect((sent[1]!.timestamp - sent[0]!.timestamp) >>> 0).toBe(160);
    expect(Array.from(slinDecode(sent[1]!.payload).subarray(0, 100))).toEqual(new Array(100).fill(1000));
  });
});

describe('RtpEndpoint: outbound', () => {
  it('paces audio back to the latched source: 20 ms apart, consecutive seq, +160 timestamps, one marker', async () => {
    const { ep, starts, ends } = await endpoint();
    const ast = await asterisk();
    await ast.sendRtp(ep.address().port, 1, ulawFrame(0)); // latch
    await waitFor(() => ep.remoteLatched);
    const audio = Int16Array.from({ length: 160 * 10 }, (_, i) => Math.round(6000 * Math.sin(i / 7)));
    const u = ep.play({ samples: audio, sampleRate: 8000 }, 'hello');
    await waitFor(() => ast.received.length === 10, 3000, 'ten packets');
    await waitFor(() => ends.length === 1, 1000, 'talkspurt end');
    const pk = ast.received.map((r) => r.packet);
    for (let i = 1; i < pk.length; i++) {
      expect(pk[i]?.sequenceNumber).toBe(((pk[0]?.sequenceNumber ?? 0) + i) & 0xffff);
      expect(pk[i]?.timestamp).toBe(((pk[0]?.timestamp ?? 0) + i * 160) >>> 0);
      expect(pk[i]?.ssrc).toBe(pk[0]?.ssrc);
    }
    expect(pk.map((p) => p.marker)).toEqual([true, ...new Array<boolean>(9).fill(false)]);
    const payload = new Uint8Array(1600);
    pk.forEach((p, i) => payload.set(p.payload, i * 160));
    expect(Array.from(payload)).toEqual(Array.from(ulawEncode(audio)));
    // Arrival spacing: the whole run spans ~180 ms.
    const span = (ast.received.at(-1)?.at ?? 0) - (ast.received[0]?.at ?? 0);
    expect(span).toBeGreaterThan(150);
    expect(span).toBeLessThan(260);
    expect(u.state).toBe('played');
    expect(u.playedMs).toBe(200);
    expect(starts).toHaveLength(1);
    expect(starts[0]?.utteranceId).toBe('hello');
    expect(ends[0]?.lastSentAtMs).toBe(u.lastSentAtMs);
    const st = ep.stats();
    expect(st.packetsOut).toBe(10);
    expect(st.bytesOut).toBe(1720);
    expect(st.pacing.sendDeviation.count).toBe(10);
  });

  it('holds output until the remote is known, then sends to it', async () => {
    const { ep } = await endpoint();
    const ast = await asterisk();
    ep.play({ samples: new Int16Array(480), sampleRate: 8000 });
    await sleep(100);
    expect(ep.pacer.queuedMs).toBe(60);
    await ast.sendRtp(ep.address().port, 1, ulawFrame(0));
    await waitFor(() => ast.received.length === 3);
    expect(ep.pacer.busy).toBe(false);
  });

  it('sends to setRemote() before inbound traffic, then follows the real source', async () => {
    const { ep } = await endpoint();
    const announced = await asterisk();
    const actual = await asterisk();
    ep.setRemote('127.0.0.1', announced.port);
    ep.play({ samples: new Int16Array(160 * 3), sampleRate: 8000 });
    await waitFor(() => announced.received.length === 3);
    await actual.sendRtp(ep.address().port, 1, ulawFrame(0));
    await waitFor(() => ep.remoteLatched);
    ep.setRemote('127.0.0.1', announced.port); // ignored once latched
    ep.play({ samples: new Int16Array(160 * 2), sampleRate: 8000 });
    await waitFor(() => actual.received.length === 2);
    expect(announced.received).toHaveLength(3);
    expect(ep.remote).toEqual({ address: '127.0.0.1', port: actual.port });
  });

  it('clear() stops output within one frame', async () => {
    const { ep, ends } = await endpoint();
    const ast = await asterisk();
    await ast.sendRtp(ep.address().port, 1, ulawFrame(0));
    await waitFor(() => ep.remoteLatched);
    ep.play({ samples: new Int16Array(8000 * 2).fill(1000), sampleRate: 8000 }, 'long');
    await waitFor(() => ast.received.length >= 5, 2000, 'playback to start');
    const r = ep.clear();
    const clearedAt = performance.now();
    const sentBeforeClear = ep.stats().packetsOut;
    await sleep(120);
    expect(ep.stats().packetsOut).toBe(sentBeforeClear);
    // Anything still arriving was sent before clear() and in flight; none arrives > 20 ms later.
    const after = ast.received.filter((x) => x.at > clearedAt);
    expect(after.length).toBeLessThanOrEqual(1);
    for (const x of after) expect(x.at - clearedAt).toBeLessThan(20);
    expect(ast.received).toHaveLength(sentBeforeClear);
    expect(r.droppedMs + sentBeforeClear * 20).toBeCloseTo(2000, 6);
    expect(r.utterances.map((u) => u.id)).toEqual(['long']);
    expect(r.lastSentAtMs).toBeLessThanOrEqual(clearedAt);
    await waitFor(() => ends.length === 1);
    expect(ends[0]?.cleared).toBe(true);
  });
});

describe('RtpEndpoint: endpoint to endpoint', () => {
  it('carries A-law audio from one endpoint to another with loss-free ordering', async () => {
    const rx = await endpoint({ codec: 'alaw' });
    const tx = await endpoint({ codec: 'alaw' });
    tx.ep.setRemote('127.0.0.1', rx.ep.address().port);
    const audio = Int16Array.from({ length: 160 * 8 }, (_, i) => Math.round(10000 * Math.sin(i / 11)));
    tx.ep.play({ samples: audio, sampleRate: 8000 });
    await waitFor(() => rx.frames.length === 8, 3000, 'eight frames');
    const got = new Int16Array(1280);
    rx.frames.forEach((f, i) => got.set(f.samples, i * 160));
    const expected = getCodec('alaw').decode(alawEncode(audio));
    expect(Array.from(got)).toEqual(Array.from(expected));
    expect(rx.ep.remote).toEqual({ address: '127.0.0.1', port: tx.ep.address().port });
    expect(rx.ep.stats().jitter).toMatchObject({ released: 8, lost: 0, reordered: 0 });
  });
});

describe('RtpEndpoint: close', () => {
  it('leaves the clock, closes the socket and ignores further use', async () => {
    const clock = new MediaClock();
    const { ep, errors } = await endpoint({ clock });
    const other = await endpoint({ clock });
    expect(clock.listenerCount).toBe(2);
    const port = ep.address().port;
    ep.play({ samples: new Int16Array(1600), sampleRate: 8000 }, 'cut-by-hangup');
    await ep.close();
    await ep.close(); // idempotent
    expect(ep.closed).toBe(true);
    expect(ep.address().port).toBe(port);
    expect(clock.listenerCount).toBe(1);
    await other.ep.close();
    expect(clock.listenerCount).toBe(0);
    expect(clock.running).toBe(false);
    expect(ep.pacer.busy).toBe(false);
    // The port is free again: the socket really is closed.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => probe.close(r));
    expect(errors).toEqual([]);
  });

  it('leaves the shared clock stopped when the last endpoint closes', async () => {
    const a = await RtpEndpoint.open({ codec: 'ulaw' });
    const b = await RtpEndpoint.open({ codec: 'ulaw' });
    expect(sharedMediaClock.listenerCount).toBe(2);
    expect(sharedMediaClock.running).toBe(true);
    await Promise.all([a.close(), b.close()]);
    expect(sharedMediaClock.listenerCount).toBe(0);
    expect(sharedMediaClock.running).toBe(false);
  });
});
