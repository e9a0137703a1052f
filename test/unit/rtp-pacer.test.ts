import { describe, expect, it } from 'vitest';
import type { AudioFrame } from '../../src/audio/frame.js';
import { asteriskSendFormat, getCodec, slinDecode, ulawEncode, type CodecName } from '../../src/audio/g711.js';
import type { ClockTick } from '../../src/rtp/media-clock.js';
import { parseRtp, type RtpPacket } from '../../src/rtp/packet.js';
import { Pacer, type PacerEvents, type PacerOptions, type TalkspurtEnd, type TalkspurtStart, type Utterance } from '../../src/rtp/pacer.js';

function pcm(n: number, f: (i: number) => number = (i) => ((i * 37) % 2000) - 1000): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => f(i));
}

function frame(samples: Int16Array, sampleRate: 8000 | 16000 = 8000): AudioFrame {
  return { samples, sampleRate };
}

interface Harness {
  pacer: Pacer;
  sent: { packet: RtpPacket; bytes: Uint8Array; tick: number }[];
  /** Run `n` ticks; `now()` during tick i is its scheduled time plus `lateMs(i)`. */
  run(n: number, lateMs?: (i: number) => number): void;
  tickNo: () => number;
  starts: TalkspurtStart[];
  ends: TalkspurtEnd[];
  done: Utterance[];
}

function harness(codec: CodecName = 'ulaw', opts: Partial<PacerOptions> = {}, extraEvents: PacerEvents = {}): Harness {
  let nowMs = 0;
  let tickIndex = 0;
  const starts: TalkspurtStart[] = [];
  const ends: TalkspurtEnd[] = [];
  const done: Utterance[] = [];
  const sent: Harness['sent'] = [];
  const pacer = new Pacer({
    codec: getCodec(codec),
    ssrc: 0xcafebabe,
    initialSequenceNumber: 1000,
    initialTimestamp: 5000,
    now: () => nowMs,
    send: (bytes) => {
      const r = parseRtp(bytes);
      if (!r.ok) throw new Error(`pacer sent an invalid packet: ${r.reason}`);
      sent.push({ packet: { ...r.packet, payload: r.packet.payload.slice() }, bytes, tick: tickIndex });
    },
    events: {
      talkspurtStart: (e) => starts.push(e),
      talkspurtEnd: (e) => ends.push(e),
      utteranceDone: (u) => done.push({ ...u }),
      ...extraEvents,
    },
    ...opts,
  });
  const run = (n: number, lateMs: (i: number) => number = () => 0): void => {
    for (let k = 0; k < n; k++) {
      tickIndex++;
      const scheduledMs = tickIndex * 20;
      nowMs = scheduledMs + lateMs(tickIndex);
      const tick: ClockTick = { index: tickIndex, scheduledMs, firedMs: nowMs };
      pacer.tick(tick);
    }
  };
  return { pacer, sent, run, tickNo: () => tickIndex, starts, ends, done };
}

describe('Pacer: RTP header generation', () => {
  it('sends one packet per tick with consecutive sequence numbers, 160-sample timestamps and the marker on the first', () => {
    const h = harness();
    h.pacer.enqueue(frame(pcm(160 * 4)));
    h.run(6);
    expect(h.sent.map((s) => s.packet.sequenceNumber)).toEqual([1000, 1001, 1002, 1003]);
    expect(h.sent.map((s) => s.packet.timestamp)).toEqual([5000, 5160, 5320, 5480]);
    expect(h.sent.map((s) => s.packet.marker)).toEqual([true, false, false, false]);
    expect(h.sent.every((s) => s.packet.ssrc === 0xcafebabe && s.packet.payloadType === 0)).toBe(true);
    expect(h.sent.map((s) => s.bytes.length)).toEqual([172, 172, 172, 172]);
    expect(h.sent.map((s) => s.tick)).toEqual([1, 2, 3, 4]);
  });

  it('wraps the sequence number at 2^16 and the timestamp at 2^32', () => {
    const h = harness('ulaw', { initialSequenceNumber: 65534, initialTimestamp: 0xffffff00 });
    h.pacer.enqueue(frame(pcm(160 * 3)));
    h.run(3);
    expect(h.sent.map((s) => s.packet.sequenceNumber)).toEqual([65534, 65535, 0]);
    expect(h.sent.map((s) => s.packet.timestamp)).toEqual([0xffffff00, 0xffffffa0, 0x40]);
  });

  it('keeps the timestamp advancing with the clock through silence, and marks the next talkspurt', () => {
    const h = harness();
    h.pacer.enqueue(frame(pcm(320)));
    h.run(2 + 5); // 2 packets, then 5 idle ticks
    h.pacer.enqueue(frame(pcm(160)));
    h.run(1);
    const [a, b, c] = h.sent.map((s) => s.packet);
    expect([a?.sequenceNumber, b?.sequenceNumber, c?.sequenceNumber]).toEqual([1000, 1001, 1002]);
    expect((c?.timestamp ?? 0) - (b?.timestamp ?? 0)).toBe(6 * 160);
    expect([a?.marker, b?.marker, c?.marker]).toEqual([true, false, true]);
    expect(h.starts.map((s) => [s.sequenceNumber, s.timestamp, s.scheduledMs])).toEqual([
      [1000, 5000, 20],
      [1002, 5000 + 7 * 160, 160],
    ]);
    expect(h.ends).toEqual([{ lastSentAtMs: 40, playedMs: 40, cleared: false }]);
  });

  it('advances the timestamp by the elapsed scheduled time when ticks were skipped', () => {
    const h = harness();
    h.pacer.enqueue(frame(pcm(320)));
    h.pacer.tick({ index: 1, scheduledMs: 20, firedMs: 20 });
    h.pacer.tick({ index: 51, scheduledMs: 1020, firedMs: 1020 }); // 49 skipped periods
    expect(h.sent.map((s) => s.packet.timestamp)).toEqual([5000, 5000 + 50 * 160]);
  });

  it('uses the payload type it is given and lets it change', () => {
    const h = harness('slin16');
    h.pacer.payloadType = 96;
    h.pacer.enqueue(frame(pcm(320), 16000));
    h.run(1);
    expect(h.sent[0]?.packet.payloadType).toBe(96);
    expect(() => (h.pacer.payloadType = 128)).toThrow(RangeError);
  });

  it('picks random initial sequence, timestamp and SSRC by default', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const p = new Pacer({ codec: getCodec('ulaw'), send: () => undefined });
      const sent: RtpPacket[] = [];
      const q = new Pacer({
        codec: getCodec('ulaw'),
        send: (b) => {
          const r = parseRtp(b);
          if (r.ok) sent.push(r.packet);
        },
      });
      q.enqueue(frame(pcm(160)));
      q.tick({ index: 1, scheduledMs: 20, firedMs: 20 });
      seen.add(`${p.ssrc}/${q.ssrc}/${sent[0]?.sequenceNumber}/${sent[0]?.timestamp}`);
    }
    expect(seen.size).toBe(5);
  });
});

describe('Pacer: framing', () => {
  it('slices any length into 20 ms frames, padding the final partial frame with silence', () => {
    const h = harness();
    const input = pcm(400); // 50 ms: 2 full frames + 80 samples
    h.pacer.play(frame(input));
    h.run(4);
    expect(h.sent).toHaveLength(3);
    const expected = ulawEncode(input);
    expect(Array.from(h.sent[0]?.packet.payload ?? [])).toEqual(Array.from(expected.subarray(0, 160)));
    expect(Array.from(h.sent[1]?.packet.payload ?? [])).toEqual(Array.from(expected.subarray(160, 320)));
    const last = h.sent[2]?.packet.payload ?? new Uint8Array();
    expect(Array.from(last.subarray(0, 80))).toEqual(Array.from(expected.subarray(320, 400)));
    expect(last.subarray(80).every((b) => b === 0xff)).toBe(true); // mu-law silence
  });

  it('joins audio across enqueue calls without inserting silence', () => {
    const h = harness();
    const input = pcm(480);
    h.pacer.beginUtterance();
    h.pacer.enqueue(frame(input.subarray(0, 100)));
    h.pacer.enqueue(frame(input.subarray(100, 170)));
    h.pacer.enqueue(frame(input.subarray(170, 480)));
    h.pacer.endUtterance();
    h.run(3);
    const all = new Uint8Array(480);
    h.sent.forEach((s, i) => all.set(s.packet.payload, i * 160));
    expect(Array.from(all)).toEqual(Array.from(ulawEncode(input)));
  });

  it('pads and sends a partial frame when the queue runs dry, counting an underrun', () => {
    const h = harness();
    h.pacer.beginUtterance('slow-tts');
    h.pacer.enqueue(frame(pcm(100)));
    expect(h.pacer.queuedMs).toBeCloseTo(12.5, 6);
    h.run(1);
    expect(h.sent).toHaveLength(1);
    expect(h.pacer.stats.underruns).toBe(1);
    expect(h.pacer.busy).toBe(false);
    expect(h.pacer.utterance('slow-tts')?.playedMs).toBeCloseTo(12.5, 6);
  });

  it('frames slin16 at 320 samples per packet in network byte order', () => {
    const h = harness('slin16');
    h.pacer.enqueue(frame(Int16Array.from({ length: 640 }, (_, i) => (i === 0 ? 0x1234 : i === 320 ? -2 : 0)), 16000));
    h.run(2);
    expect(h.sent.map((s) => s.bytes.length)).toEqual([12 + 640, 12 + 640]);
    expect(h.sent.map((s) => s.packet.timestamp - 5000)).toEqual([0, 320]);
    expect(Array.from(h.sent[0]?.packet.payload.subarray(0, 2) ?? [])).toEqual([0x12, 0x34]);
    expect(Array.from(h.sent[1]?.packet.payload.subarray(0, 2) ?? [])).toEqual([0xff, 0xfe]);
  });

  it('sends slin16 in a send format of its own: 8 kHz L16, PT 11, +160 per 20 ms, filter reset by clear()', () => {
    const h = harness('slin16', { format: asteriskSendFormat(getCodec('slin16')) });
    const loud = Int16Array.from({ length: 320 * 3 }, (_, i) => (i % 2 ? 12000 : -12000) + 4000);
    h.pacer.play(frame(loud, 16000), 'a');
    h.run(3);
    expect(h.sent.map((s) => [s.bytes.length, s.packet.payloadType, s.packet.timestamp - 5000])).toEqual([
      [332, 11, 0],
      [332, 11, 160],
      [332, 11, 320],
    ]);
    // The 8 kHz alternation is removed (to the filter's 65 dB), the DC level (4000) kept.
    for (const v of slinDecode(h.sent[2]!.packet.payload).subarray(0, 50)) expect(Math.abs(v - 4000)).toBeLessThanOrEqual(8);
    expect(h.pacer.queuedMs).toBe(0);
    expect(h.done.map((u) => [u.id, u.playedMs])).toEqual([['a', 60]]);

    h.pacer.play(frame(loud, 16000), 'b');
    h.pacer.clear();
    h.run(1);
    h.pacer.play(frame(new Int16Array(320), 16000), 'c');
    h.run(1);
    expect(h.sent).toHaveLength(4);
    expect(h.sent[3]!.packet.timestamp - 5000).toBe(160 * 4);
    expect(h.sent[3]!.packet.marker).toBe(true);
    expect(Array.from(slinDecode(h.sent[3]!.packet.payload))).toEqual(new Array(160).fill(0)); // nothing of 'b'
  });

  it('refuses a send format for another sample rate than the codec', () => {
    expect(() => harness('ulaw', { format: asteriskSendFormat(getCodec('slin16')) })).toThrow(RangeError);
  });

  it('rejects audio at a rate other than the codec rate', () => {
    const h = harness('ulaw');
    expect(() => h.pacer.enqueue(frame(pcm(320), 16000))).toThrow(RangeError);
    const s = harness('slin16');
    expect(() => s.pacer.enqueue(frame(pcm(160), 8000))).toThrow(RangeError);
    expect(() => s.pacer.play(frame(pcm(160), 8000), 'bad')).toThrow(RangeError);
    expect(s.pacer.utterance('bad')).toBeUndefined();
  });
});

describe('Pacer: clear and utterances', () => {
  it('clear() drops everything at once: no packet after it, and reports what was dropped', () => {
    const h = harness();
    const u = h.pacer.play(frame(pcm(160 * 10)), 'greeting');
    h.run(3);
    const result = h.pacer.clear();
    h.run(5);
    expect(h.sent).toHaveLength(3);
    expect(result.droppedMs).toBeCloseTo(140, 6);
    expect(result.lastSentAtMs).toBe(60);
    expect(result.utterances.map((x) => [x.id, x.state, x.playedMs, x.droppedMs])).toEqual([['greeting', 'cleared', 60, 140]]);
    expect(u.state).toBe('cleared');
    expect(h.done.map((x) => [x.id, x.state])).toEqual([['greeting', 'cleared']]);
    expect(h.ends).toEqual([{ lastSentAtMs: 60, playedMs: 60, cleared: true }]);
    expect(h.pacer.busy).toBe(false);
    expect(h.pacer.stats.droppedMs).toBeCloseTo(140, 6);
  });

  it('clear() counts the partial frame and open utterances, and the next audio starts a new talkspurt', () => {
    const h = harness();
    h.pacer.beginUtterance('streaming');
    h.pacer.enqueue(frame(pcm(160 + 40)));
    h.run(1);
    const r = h.pacer.clear();
    expect(r.droppedMs).toBeCloseTo(5, 6);
    expect(r.utterances.map((x) => [x.id, x.playedMs, x.droppedMs])).toEqual([['streaming', 20, 5]]);
    h.run(1);
    h.pacer.play(frame(pcm(160)));
    h.run(1);
    expect(h.sent.map((s) => [s.packet.sequenceNumber, s.packet.marker])).toEqual([
      [1000, true],
      [1001, true],
    ]);
  });

  it('reports each utterance played in order with its first and last send times', () => {
    const h = harness();
    h.pacer.play(frame(pcm(320)), 'a');
    h.pacer.play(frame(pcm(200)), 'b');
    expect(h.pacer.queuedMs).toBeCloseTo(65, 6);
    h.run(6);
    expect(h.done).toEqual([
      { id: 'a', state: 'played', enqueuedMs: 40, playedMs: 40, droppedMs: 0, firstSentAtMs: 20, lastSentAtMs: 40, pendingFrames: 0 },
      { id: 'b', state: 'played', enqueuedMs: 25, playedMs: 25, droppedMs: 0, firstSentAtMs: 60, lastSentAtMs: 80, pendingFrames: 0 },
    ]);
    // Utterances back to back are one talkspurt.
    expect(h.starts.map((s) => s.utteranceId)).toEqual(['a']);
    expect(h.pacer.playedMs).toBeCloseTo(65, 6);
    expect(h.pacer.utterance('a')).toBeUndefined();
  });

  it('finishes an empty utterance at once and keeps an open one until it ends', () => {
    const h = harness();
    h.pacer.beginUtterance('empty');
    h.pacer.endUtterance();
    expect(h.done.map((u) => [u.id, u.state])).toEqual([['empty', 'played']]);
    const open = h.pacer.beginUtterance('open');
    h.pacer.enqueue(frame(pcm(160)));
    h.run(2);
    expect(open.state).toBe('open');
    expect(h.pacer.utterance('open')?.playedMs).toBe(20);
    h.pacer.endUtterance();
    expect(open.state).toBe('played');
  });

  it('keeps anonymous audio out of the next utterance, padding its last frame', () => {
    const h = harness();
    h.pacer.enqueue(frame(pcm(100)));
    h.pacer.play(frame(pcm(160)), 'next');
    h.run(2);
    expect(h.sent).toHaveLength(2);
    expect(h.done.map((u) => [u.id, u.enqueuedMs, u.playedMs, u.firstSentAtMs])).toEqual([['next', 20, 20, 40]]);
    expect(h.sent[0]?.packet.payload.subarray(100).every((b) => b === 0xff)).toBe(true);
  });

  it('tracks utterances that reuse an id separately', () => {
    const h = harness();
    h.pacer.play(frame(pcm(160)), 'same');
    h.pacer.play(frame(pcm(320)), 'same');
    h.run(1);
    expect(h.done.map((u) => [u.id, u.playedMs])).toEqual([['same', 20]]);
    expect(h.pacer.utterance('same')?.enqueuedMs).toBe(40);
    const r = h.pacer.clear();
    expect(r.utterances.map((u) => [u.id, u.droppedMs])).toEqual([['same', 40]]);
  });

  it('isolates a throwing event handler', () => {
    const errors: unknown[] = [];
    const h = harness(
      'ulaw',
      { onEventError: (e) => errors.push(e) },
      {
        talkspurtStart: () => {
          throw new Error('handler bug');
        },
      },
    );
    h.pacer.enqueue(frame(pcm(320)));
    h.run(2);
    expect(h.sent).toHaveLength(2);
    expect(errors).toHaveLength(1);
  });
});

describe('Pacer: pacing measurement', () => {
  it('records send deviation from the schedule and interval jitter between packets', () => {
    const h = harness();
    h.pacer.enqueue(frame(pcm(160 * 5)));
    const late = [0, 1, 3, 1, 1, 2];
    h.run(5, (i) => late[i] ?? 0);
    const dev = h.pacer.stats.sendDeviation;
    expect(dev.count).toBe(5);
    expect(dev.max).toBe(3);
    expect(dev.percentile(50)).toBeCloseTo(1.1, 6); // deviations 1, 3, 1, 1, 2: upper edge of the 1 ms bucket
    const jit = h.pacer.stats.intervalJitter;
    expect(jit.count).toBe(4); // intervals: 22, 18, 20, 21 ms
    expect(jit.max).toBe(2);
    expect(jit.percentile(50)).toBeCloseTo(1.1, 6); // bucket edge holding 1 ms
  });
});

describe('Pacer: queue storage', () => {
  it('sends exactly what was queued while the queue grows, compacts and refills across many utterances', () => {
    const h = harness();
    const input = pcm(160 * 2000, (i) => ((i * 7919) % 30000) - 15000); // 40 s of distinct audio
    let queuedFrames = 0;
    let sentFrames = 0;
    // Uneven producer: bursts of 0..300 frames between runs of 0..120 ticks, so the queue
    // is sometimes empty, sometimes hundreds of frames deep, and its front moves a lot.
    let k = 1;
    const rnd = (): number => ((k = (k * 48271) % 2147483647) / 2147483647);
    while (queuedFrames < 2000) {
      const n = Math.min(2000 - queuedFrames, Math.floor(rnd() * 300));
      if (n > 0) h.pacer.play(frame(input.subarray(queuedFrames * 160, (queuedFrames + n) * 160)));
      queuedFrames += n;
      const t = Math.floor(rnd() * 120);
      h.run(t);
    }
    h.run(2100);
    sentFrames = h.sent.length;
    expect(sentFrames).toBe(2000);
    const all = new Uint8Array(2000 * 160);
    h.sent.forEach((s, i) => all.set(s.packet.payload, i * 160));
    expect(Buffer.from(all).equals(Buffer.from(ulawEncode(input)))).toBe(true);
    expect(h.done.every((u) => u.state === 'played')).toBe(true);
    expect(h.done.reduce((a, u) => a + u.playedMs, 0)).toBe(40_000);
  });

  it('accounts dropped audio per utterance when a deep queue is cleared', () => {
    const h = harness();
    const a = h.pacer.play(frame(pcm(160 * 300)));
    const b = h.pacer.play(frame(pcm(160 * 200)));
    h.run(100);
    const r = h.pacer.clear();
    expect(r.droppedMs).toBe((200 + 200) * 20);
    expect(a.playedMs).toBe(100 * 20);
    expect(a.droppedMs).toBe(200 * 20);
    expect(b.droppedMs).toBe(200 * 20);
    h.run(5);
    expect(h.sent).toHaveLength(100);
  });
});
