/** The SIPp helper's pure parts, audio conversion, and a real SIPp run against a dead port. */
import { createSocket } from 'node:dgram';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  UAC_STREAM_REMOTE_BYE_SCENARIO,
  UAC_STREAM_SCENARIO,
  makeSpeechWav,
  parseSippStats,
  renderScenario,
  runSipp,
  sippTimeToMs,
  toRawG711,
} from '../support/sipp.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-sipp-helper-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SIPp helper', () => {
  test('statistics: the last row by column name; SIPp durations to milliseconds', () => {
    const csv = [
      'StartTime;SuccessfulCall(C);FailedCall(C);ResponseTime1(C);CallLength(C);',
      '2026-01-01 00:00:00;0;0;00:00:00:000000;00:00:00:000000;',
      '2026-01-01 00:00:05;198;2;00:00:00:012000;00:00:05:532000;',
    ].join('\n');
    const row = parseSippStats(csv)!;
    expect(row['SuccessfulCall(C)']).toBe('198');
    expect(row['FailedCall(C)']).toBe('2');
    expect(sippTimeToMs(row['ResponseTime1(C)'])).toBe(12);
    expect(sippTimeToMs(row['CallLength(C)'])).toBe(5532);
    expect(sippTimeToMs('01:02:03:004')).toBe(3723004);
    expect(sippTimeToMs(undefined)).toBeUndefined();
    expect(parseSippStats('no header here')).toBeUndefined();
  });

  test('both scenario templates render with every placeholder filled', async () => {
    const values = { AUDIO_FILE: '/a.ul', AUDIO_LOOPS: '1', PT: '8', CODEC: 'PCMA', SDP_PORT: '[rtpstream_audio_port]', DURATION_MS: '4000' };
    for (const file of [UAC_STREAM_SCENARIO, UAC_STREAM_REMOTE_BYE_SCENARIO]) {
      const xml = renderScenario(await readFile(file, 'utf8'), values);
      expect(xml).not.toMatch(/@[A-Z_]+@/);
      expect(xml).toContain('<exec rtp_stream="/a.ul,1,8"/>');
      expect(xml).toContain('m=audio [rtpstream_audio_port] RTP/AVP 8 101');
      expect(xml).toContain('a=rtpmap:8 PCMA/8000');
    }
    expect(renderScenario(await readFile(UAC_STREAM_REMOTE_BYE_SCENARIO, 'utf8'), values)).toContain('<recv request="BYE" timeout="4000"/>');
    expect(() => renderScenario('@PT@', {})).toThrow(/@PT@ has no value/);
  });

  test('speech is converted to headerless 8 kHz G.711 (what SIPp 3.6 streams byte for byte)', async () => {
    const wav = await makeSpeechWav('Testing one two three.', join(dir, 'speech.wav'));
    const wavBytes = (await stat(wav)).size;
    const ulaw = await toRawG711(wav, 'PCMU', dir);
    const alaw = await toRawG711(wav, 'PCMA', dir);
    expect(ulaw.path).toMatch(/\.ul$/);
    expect(alaw.path).toMatch(/\.al$/);
    // 16-bit WAV to 8-bit G.711: half the data, no RIFF header.
    expect((await stat(ulaw.path)).size).toBe((wavBytes - 44) / 2);
    expect((await readFile(ulaw.path)).subarray(0, 4).toString('latin1')).not.toBe('RIFF');
    expect(ulaw.ms).toBeGreaterThan(800);
    expect(ulaw.ms).toBe(alaw.ms);
    // Cached by content: converting again reuses the file.
    const before = (await stat(ulaw.path)).mtimeMs;
    expect((await toRawG711(wav, 'PCMU', dir)).path).toBe(ulaw.path);
    expect((await stat(ulaw.path)).mtimeMs).toBe(before);
  });

  test('a call to a port nobody answers fails, and the result says so', async () => {
    // A bound but silent UDP socket: SIPp's INVITE is never answered.
    const sink = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    try {
      const r = await runSipp({ port: sink.address().port, extension: '600', recvTimeoutMs: 1500, callDurationMs: 500 });
      expect(r.ok).toBe(false);
      expect(r.exitCode).toBe(1);
      expect(r.successful).toBe(0);
      expect(r.failed).toBe(1);
      expect(Object.keys(r.failures).length).toBeGreaterThan(0);
    } finally {
      sink.close();
    }
  }, 30_000);

  test('caller ids must be plain SIP user parts', async () => {
    await expect(runSipp({ port: 5, extension: '600', callerIds: ['bad;id'] })).rejects.toThrow(/not a valid SIP user part/);
  });
});
