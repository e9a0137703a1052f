/**
 * The media worker seen from the main thread (MediaWorkerClient / RemoteSessionMedia) over
 * real UDP: inbound audio arrives with arrival times on the main thread's clock, playout is
 * paced out and reported, clear() cuts output and answers with what it cut, and a worker
 * that dies takes its calls' audio with it but is reported (onLost), settles everything that
 * was waiting and is replaced for the next call. The full session over both threads is
 * test/integration/call-session.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/audio/frame.js';
import { MediaWorkerClient, type RemoteSessionMedia } from '../../src/call/media-worker-client.js';
import type { ClosedMediaStats } from '../../src/call/rtp-session-media.js';
import { silentLogger } from '../../src/log.js';
import { RtpPeer } from '../support/rtp-peer.js';

const RATE = 8000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tone(ms: number, hz = 440): AudioFrame {
  const n = Math.round((RATE * ms) / 1000);
  const samples = new Int16Array(n);
  for (let i = 0; i < n; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / RATE));
  return { samples, sampleRate: RATE };
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Opened {
  client: MediaWorkerClient;
  media: RemoteSessionMedia;
  peer: RtpPeer;
  closed: ClosedMediaStats[];
}

async function openCall(entry?: URL, replyTimeoutMs?: number): Promise<Opened> {
  const client = new MediaWorkerClient({ log: silentLogger, ...(entry ? { entry } : {}), clockReportMs: 200, ...(replyTimeoutMs ? { replyTimeoutMs } : {}) });
  cleanups.push(() => client.stop());
  const closed: ClosedMediaStats[] = [];
  const media = await client.open({ format: 'ulaw', host: '127.0.0.1', port: 0, log: silentLogger, onClose: (s) => closed.push(s) });
  const peer = await RtpPeer.open({ remote: media.externalHost, idle: 'silence' });
  cleanups.push(() => peer.close());
  media.setRemote(peer.address.host, peer.address.port);
  return { client, media, peer, closed };
}

describe('media worker', () => {
  it('delivers inbound frames stamped on the main thread clock, in order', { timeout: 20_000 }, async () => {
    const { media, peer } = await openCall();
    const frames: Array<{ at: number; seenAt: number; n: number }> = [];
    media.onFrame((f, at) => frames.push({ at, seenAt: performance.now(), n: f.samples.length }));
    peer.start();
    await waitUntil(() => frames.length >= 25, 5_000, '25 inbound frames');
    for (const f of frames) {
      expect(f.n).toBe(160);
      // Stamped in the worker when the datagram arrived, moved onto this thread's timeline:
      // never after this thread saw it, and not long before (the worker posts every 5 ms).
      expect(f.at).toBeLessThanOrEqual(f.seenAt + 0.01);
      expect(f.seenAt - f.at).toBeLessThan(500);
    }
    const sentFirst = peer.sent[0]!.at;
    expect(Math.abs(frames[0]!.at - sentFirst)).toBeLessThan(100); // same clock as the peer's send time
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.at).toBeGreaterThanOrEqual(frames[i - 1]!.at);
  });

  it('paces a written utterance out and reports it played; talkspurt start is on this clock', { timeout: 20_000 }, async () => {
    const { media, peer } = await openCall();
    const starts: number[] = [];
    media.onTalkspurtStart((at) => starts.push(at));
    peer.start();
    const writer = media.openPlayout();
    const before = performance.now();
    writer.write(tone(300));
    writer.write(tone(200, 660));
    writer.end();
    expect(media.busy).toBe(true);
    const r = await writer.done;
    expect(r).toEqual({ completed: true, playedMs: 500, droppedMs: 0 });
    expect(media.busy).toBe(false);
    await waitUntil(() => peer.received.filter((p) => p.pcm.some((v) => v !== 0)).length >= 25, 3_000, '25 packets at the peer');
    expect(starts).toHaveLength(1);
    expect(starts[0]!).toBeGreaterThanOrEqual(before);
    const firstHeard = peer.received.find((p) => p.pcm.some((v) => v !== 0))!;
    expect(firstHeard.marker).toBe(true);
    expect(firstHeard.at - starts[0]!).toBeGreaterThanOrEqual(-1);
    expect(firstHeard.at - starts[0]!).toBeLessThan(50);
  });

  it('clear() stops output once the worker reads it and answers with what it dropped', { timeout: 20_000 }, async () => {
    const { media, peer } = await openCall();
    peer.start();
    const writer = media.openPlayout();
    writer.write(tone(3_000));
    writer.end();
    await waitUntil(() => peer.received.filter((p) => p.pcm.some((v) => v !== 0)).length >= 10, 3_000, 'output to start');
    const cut = await media.clear();
    expect(media.busy).toBe(false);
    expect(cut.droppedMs).toBeGreaterThan(2_000);
    expect(cut.droppedMs).toBeLessThan(3_000);
    expect(cut.lastPacketAt).toBeDefined();
    expect(cut.lastPacketAt!).toBeLessThanOrEqual(performance.now());
    const r = await writer.done;
    expect(r.completed).toBe(false);
    expect(r.playedMs + r.droppedMs).toBe(3_000);
    // Nothing after the cut: what reaches the peer from now on is at most a packet already in flight.
    const heard = peer.received.length;
    await new Promise((res) => setTimeout(res, 300));
    expect(peer.received.length - heard).toBeLessThanOrEqual(1);
    // Writes to the cut item are ignored; a new item plays.
    writer.write(tone(100));
    const again = media.openPlayout();
    again.write(tone(100));
    again.end();
    expect(await again.done).toMatchObject({ completed: true, playedMs: 100 });
  });

  it('close() reports the endpoint stats and pacing, frees the port and the clock', { timeout: 20_000 }, async () => {
    const { client, media, peer, closed } = await openCall();
    peer.start();
    const w = media.openPlayout();
    w.write(tone(200));
    w.end();
    await w.done;
    await waitUntil(() => client.clockListeners === 2, 2_000, 'clock listeners reported');
    await media.close();
    expect(closed).toHaveLength(1);
    expect(closed[0]!.endpoint.packetsIn).toBeGreaterThan(0);
    expect(closed[0]!.endpoint.packetsOut).toBeGreaterThanOrEqual(10);
    expect(closed[0]!.intervalJitter.count).toBeGreaterThan(0);
    expect(client.openMedia).toBe(0);
    expect(client.clockListeners).toBe(0);
    expect(client.clockLateness.count).toBeGreaterThan(0);
    // After close: clear answers at once, new items finish unplayed.
    expect(await media.clear()).toEqual({ droppedMs: 0, lastPacketAt: undefined });
    const late = media.openPlayout();
    late.write(tone(100));
    late.end();
    expect(await late.done).toEqual({ completed: false, playedMs: 0, droppedMs: 0 });
  });

  it('a worker that dies: its calls are reported lost, everything waiting settles, the next call gets a new worker', { timeout: 30_000 }, async () => {
    const entry = new URL('../support/media-worker-crashable.ts', import.meta.url);
    const { client, media, peer } = await openCall(entry);
    peer.start();
    const lost: Error[] = [];
    media.onLost((err) => lost.push(err));
    const writer = media.openPlayout();
    writer.write(tone(5_000));
    writer.end();
    await waitUntil(() => peer.received.some((p) => p.pcm.some((v) => v !== 0)), 3_000, 'output to start');
    await waitUntil(() => client.clockListeners > 0, 2_000, 'clock listeners reported');
    (client as unknown as { post(m: unknown): void }).post({ type: 'test-crash' });
    await waitUntil(() => lost.length === 1, 5_000, 'onLost');
    expect(lost[0]!.message).toMatch(/exited with code 3/);
    expect(client.crashes).toBe(1);
    expect(client.clockListeners).toBe(0); // the dead worker's clock, not its last report
    expect(await writer.done).toEqual({ completed: false, playedMs: 0, droppedMs: 0 });
    expect(await media.clear()).toEqual({ droppedMs: 0, lastPacketAt: undefined });
    await media.close(); // resolves; nothing to close
    // Its socket died with it: the peer hears nothing more.
    const heard = peer.received.length;
    await new Promise((res) => setTimeout(res, 200));
    expect(peer.received.length - heard).toBeLessThanOrEqual(1);

    const next = await client.open({ format: 'ulaw', host: '127.0.0.1', port: 0, log: silentLogger, onClose: () => undefined });
    const peer2 = await RtpPeer.open({ remote: next.externalHost, idle: 'silence' });
    cleanups.push(() => peer2.close());
    next.setRemote(peer2.address.host, peer2.address.port);
    const w2 = next.openPlayout();
    w2.write(tone(200));
    w2.end();
    expect(await w2.done).toMatchObject({ completed: true, playedMs: 200 });
    await next.close();
  });

  it('a worker that dies before the controller listens: onLost still fires (at once) when it does', { timeout: 20_000 }, async () => {
    const entry = new URL('../support/media-worker-crashable.ts', import.meta.url);
    const { client, media } = await openCall(entry);
    (client as unknown as { post(m: unknown): void }).post({ type: 'test-crash' });
    await waitUntil(() => !client.alive, 5_000, 'the worker to be gone');
    const lost: Error[] = [];
    media.onLost((err) => lost.push(err));
    await waitUntil(() => lost.length === 1, 1_000, 'onLost');
    expect(lost[0]!.message).toMatch(/exited with code 3/);
  });

  it('a worker that stops answering is terminated as hung: its calls are lost, the next call gets a new worker', { timeout: 20_000 }, async () => {
    const entry = new URL('../support/media-worker-crashable.ts', import.meta.url);
    const { client, media } = await openCall(entry, 500);
    const lost: Error[] = [];
    media.onLost((err) => lost.push(err));
    (client as unknown as { post(m: unknown): void }).post({ type: 'test-hang' });
    const started = performance.now();
    // The clear is never answered: after replyTimeoutMs the worker is declared hung.
    expect(await media.clear()).toEqual({ droppedMs: 0, lastPacketAt: undefined });
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.message).toMatch(/hung/);
    await media.close();
    const next = await client.open({ format: 'ulaw', host: '127.0.0.1', port: 0, log: silentLogger, onClose: () => undefined });
    expect(client.alive).toBe(true);
    await next.close();
  });

  it('stop() closes every call, ends the worker, and refuses new calls', { timeout: 20_000 }, async () => {
    const { client, media, closed } = await openCall();
    await client.stop();
    expect(closed).toHaveLength(1);
    expect(client.alive).toBe(false);
    await expect(client.open({ format: 'ulaw', host: '127.0.0.1', port: 0, log: silentLogger, onClose: () => undefined })).rejects.toThrow(/stopped/);
    expect(await media.clear()).toEqual({ droppedMs: 0, lastPacketAt: undefined });
  });

  it('a port that cannot be bound is a clear error, and the worker carries on', { timeout: 20_000 }, async () => {
    const { client, media } = await openCall();
    const port = Number(media.externalHost.split(':').pop());
    await expect(client.open({ format: 'ulaw', host: '127.0.0.1', port, log: silentLogger, onClose: () => undefined })).rejects.toThrow(/RTP endpoint: .*EADDRINUSE/);
    const other = await client.open({ format: 'alaw', host: '127.0.0.1', port: 0, log: silentLogger, onClose: () => undefined });
    expect(other.sampleRate).toBe(8000);
    await other.close();
  });
});
