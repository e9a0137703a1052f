/**
 * The test peer (test/support/rtp-peer.ts) that stands in for Asterisk in the call-session
 * tests, checked on its own: its RTP is well formed and paced (a plain socket inspects the
 * headers; the engine's RtpEndpoint accepts every packet without loss, reordering or
 * concealment), timestamps keep wall time across pauses, and what it records on receipt
 * is exactly what the endpoint sent.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/audio/frame.js';
import { ulawDecode, ulawEncode } from '../../src/audio/g711.js';
import { RtpEndpoint, type InboundAudio } from '../../src/rtp/endpoint.js';
import { parseRtp, type RtpPacket } from '../../src/rtp/packet.js';
import { RtpPeer } from '../support/rtp-peer.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function ramp(ms: number): AudioFrame {
  const n = (8000 * ms) / 1000;
  return { samples: Int16Array.from({ length: n }, (_, i) => ((i * 97) % 16000) - 8000), sampleRate: 8000 };
}

async function sink(): Promise<{ socket: Socket; packets: { p: RtpPacket; at: number }[]; port: number }> {
  const socket = createSocket('udp4');
  const packets: { p: RtpPacket; at: number }[] = [];
  socket.on('message', (msg) => {
    const r = parseRtp(msg);
    if (r.ok) packets.push({ p: { ...r.packet, payload: r.packet.payload.slice() }, at: performance.now() });
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => socket.close(() => r())));
  return { socket, packets, port: socket.address().port };
}

async function peerTo(port: number, opts: Partial<Parameters<typeof RtpPeer.open>[0]> = {}): Promise<RtpPeer> {
  const peer = await RtpPeer.open({ remote: `127.0.0.1:${port}`, ...opts });
  cleanups.push(() => peer.close());
  return peer;
}

describe('RtpPeer', () => {
  it('sends well-formed RTP in real time: one SSRC, seq +1, ts +160, marker after each pause only', { timeout: 10_000 }, async () => {
    const s = await sink();
    const peer = await peerTo(s.port, { idle: 'none', initialSequenceNumber: 65534, initialTimestamp: 0xffffff00 });
    const t0 = performance.now();
    const a = await peer.say(ramp(400));
    expect(a).toMatchObject({ completed: true, packets: 20 });
    // Wall-clock pacing, loosely: 20 packets span ~380 ms.
    expect(a.lastSentAt! - a.firstSentAt!).toBeGreaterThan(300);
    expect(performance.now() - t0).toBeGreaterThan(300);
    await new Promise((r) => setTimeout(r, 200)); // a pause: nothing is sent
    const b = await peer.say(ramp(200));
    await peer.waitFor(() => s.packets.length === 30, 2000, 'all packets');
    expect(peer.sent).toHaveLength(30);

    const ps = s.packets.map((x) => x.p);
    expect(new Set(ps.map((p) => p.ssrc)).size).toBe(1);
    ps.forEach((p, i) => {
      expect(p.payloadType).toBe(0);
      expect(p.sequenceNumber).toBe((65534 + i) & 0xffff); // wraps
      expect(p.payload.length).toBe(160);
      expect(p.marker).toBe(i === 0 || i === 20);
    });
    for (let i = 1; i < 20; i++) expect((ps[i]!.timestamp - ps[i - 1]!.timestamp) >>> 0).toBe(160);
    // Across the pause the timestamp jumps by the elapsed time, in whole packets.
    const gapTs = (ps[20]!.timestamp - ps[19]!.timestamp) >>> 0;
    const gapMs = b.firstSentAt! - a.lastSentAt!;
    expect(gapTs % 160).toBe(0);
    expect(gapTs / 8).toBeGreaterThanOrEqual(200);
    expect(Math.abs(gapTs / 8 - gapMs)).toBeLessThanOrEqual(60);
    // The payload is the audio, in order.
    const sent = ramp(400).samples;
    const got = ulawDecode(Uint8Array.from(ps.slice(0, 20).flatMap((p) => [...p.payload])));
    expect(got).toEqual(ulawDecode(ulawEncode(sent)));
  });

  it("idle 'silence' streams digital silence between utterances in one talkspurt; stop() ends it", { timeout: 10_000 }, async () => {
    const s = await sink();
    const peer = await peerTo(s.port);
    peer.start();
    expect(peer.streaming).toBe(true);
    await peer.waitFor(() => s.packets.length >= 10, 2000, 'silence');
    await peer.say(ramp(100));
    peer.stop();
    expect(peer.streaming).toBe(false);
    const n = peer.sent.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(peer.sent).toHaveLength(n);
    await peer.waitFor(() => s.packets.length === n, 1000, 'delivery');
    expect(s.packets.filter((x) => x.p.marker)).toHaveLength(1);
    const silent = peer.sent.filter((x) => x.utterance === undefined);
    expect(silent.length).toBeGreaterThanOrEqual(10);
    expect(silent.every((x) => x.pcm.every((v) => v === 0))).toBe(true);
    expect(peer.sent.filter((x) => x.utterance !== undefined)).toHaveLength(5);
  });

  it('stop() cuts an utterance short and resolves it as not completed', async () => {
    const s = await sink();
    const peer = await peerTo(s.port);
    const pending = peer.say(ramp(2000));
    await peer.waitFor(() => peer.sent.length >= 3, 2000, 'a few packets');
    peer.stop();
    const r = await pending;
    expect(r.completed).toBe(false);
    expect(r.packets).toBeGreaterThanOrEqual(3);
    expect(r.packets).toBeLessThan(100);
  });

  it('the real RtpEndpoint accepts every packet: none dropped, lost, reordered or concealed', { timeout: 10_000 }, async () => {
    const frames: InboundAudio[] = [];
    const ep = await RtpEndpoint.open({ codec: 'ulaw', handlers: { audio: (f) => frames.push({ ...f, samples: f.samples.slice() }) } });
    cleanups.push(() => ep.close());
    const peer = await peerTo(ep.address().port, { idle: 'none' });
    const audio = ramp(600);
    await peer.say(audio);
    await peer.waitFor(() => frames.length === 30, 2000, 'frames at the endpoint');
    const st = ep.stats();
    expect(st.packetsAccepted).toBe(30);
    expect(Object.values(st.dropped).every((n) => n === 0)).toBe(true);
    expect(st.jitter).toMatchObject({ lost: 0, concealed: 0, reordered: 0, duplicates: 0, late: 0 });
    const decoded = new Int16Array(frames.flatMap((f) => [...f.samples]));
    expect(decoded).toEqual(ulawDecode(ulawEncode(audio.samples)));
    // Arrival stamps are ordered and span the real-time sending.
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.arrivalMs).toBeGreaterThanOrEqual(frames[i - 1]!.arrivalMs);
    expect(frames[29]!.arrivalMs - frames[0]!.arrivalMs).toBeGreaterThan(450);
  });

  it('records what the endpoint sends back, decoded, with arrival times', { timeout: 10_000 }, async () => {
    const ep = await RtpEndpoint.open({ codec: 'ulaw' });
    cleanups.push(() => ep.close());
    const peer = await peerTo(ep.address().port, { idle: 'none' });
    ep.setRemote(peer.address.host, peer.address.port);
    const audio = ramp(300);
    ep.play(audio);
    await peer.waitForQuiet(100, 3000, 15);
    expect(peer.received).toHaveLength(15);
    expect(peer.garbage).toEqual([]);
    expect(peer.receivedPcm()).toEqual(ulawDecode(ulawEncode(audio.samples)));
    expect(peer.received[0]!.marker).toBe(true);
    for (let i = 1; i < 15; i++) expect(peer.received[i]!.at).toBeGreaterThanOrEqual(peer.received[i - 1]!.at);
    // sendRaw: malformed input reaches the endpoint and is counted there, not decoded.
    await peer.sendRaw(new Uint8Array([0x80, 0, 0]));
    await peer.waitFor(() => Object.values(ep.stats().dropped).reduce((a, b) => a + b, 0) === 1, 1000, 'the drop');
  });

  it('close() is idempotent and stops the timer', async () => {
    const s = await sink();
    const peer = await RtpPeer.open({ remote: `127.0.0.1:${s.port}` });
    peer.start();
    await peer.close();
    await peer.close();
    expect(peer.streaming).toBe(false);
    const r = await peer.say(ramp(100));
    expect(r.completed).toBe(false);
  });
});
