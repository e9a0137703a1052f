/**
 * SIPp as a real SIP caller, for tests and benchmarks.
 *
 * `runSipp()` renders a UAC scenario from test/fixtures/sipp/ (INVITE with a G.711 offer, RTP
 * stream of an audio file once answered, BYE after the call duration, or wait for the far
 * end's BYE), runs SIPp with the requested load (-m calls, -r rate, -l concurrency) and returns
 * the counts from SIPp's statistics file plus its exit code.
 *
 * SIPp 3.6's rtp_stream sends a file's bytes as they are (no WAV parsing), so audio is
 * converted to raw 8 kHz mono G.711 (sox -t ul / -t al) first; the payload is 160 bytes per
 * 20 ms packet. Streaming runs in SIPp's RTP threads (`rtpThreadTasks` calls per thread), with
 * no RTP echo, and SIPp's screen goes nowhere: a 200-call run costs little CPU.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SIPP_FIXTURES = fileURLToPath(new URL('../fixtures/sipp/', import.meta.url));
/** Caller hangs up after the call duration. */
export const UAC_STREAM_SCENARIO = join(SIPP_FIXTURES, 'uac-stream.xml');
/** Caller waits for the far end's BYE. */
export const UAC_STREAM_REMOTE_BYE_SCENARIO = join(SIPP_FIXTURES, 'uac-stream-remote-bye.xml');

export type G711Codec = 'PCMU' | 'PCMA';
const PAYLOAD_TYPE: Record<G711Codec, number> = { PCMU: 0, PCMA: 8 };
const SOX_TYPE: Record<G711Codec, string> = { PCMU: 'ul', PCMA: 'al' };

export interface SippOptions {
  /** Asterisk's SIP address (default 127.0.0.1). */
  host?: string;
  /** Asterisk's SIP port. */
  port: number;
  /** The extension to call (Request-URI user). */
  extension: string;
  /** Audio to stream once answered: any file sox reads (WAV, raw with a known type...). */
  audio?: string;
  /** G.711 flavour offered and streamed (default PCMU). */
  codec?: G711Codec;
  /** How many times each call plays the audio; -1 loops until the call ends (default 1). */
  audioLoops?: number;
  /** Total calls (-m, default 1). */
  calls?: number;
  /** Calls started per `ratePeriodMs` (-r, default 10). */
  rate?: number;
  /** Rate period (-rp, default 1000 ms). */
  ratePeriodMs?: number;
  /** At most this many calls at once (-l, default: `calls`). */
  maxConcurrent?: number;
  /**
   * Caller hang-up: time from answer to BYE (-d). Far-end hang-up: how long to wait for the
   * far end's BYE. Default: the audio's length (times loops, if positive) + 500 ms, or 3 s.
   */
  callDurationMs?: number;
  /** Who ends the call (default "caller"). */
  hangup?: 'caller' | 'remote';
  /** Caller numbers (From user), used in turn by successive calls (default ["sipp"]). Do not use
   * the sandbox's phone/operator usernames (6001, 6002, 7000): those are digest-authenticated. */
  callerIds?: string[];
  /** Local SIP address (-i, default 127.0.0.1); also the media address (-mi). */
  localIp?: string;
  /** Local SIP port (-p, default: any free port). */
  localPort?: number;
  /** Base of SIPp's local media ports (-mp). */
  mediaPort?: number;
  /**
   * Advertise this RTP port in the SDP instead of SIPp's own stream socket: the far end then
   * sends its audio there, where a test can receive and inspect it. One port for all calls.
   */
  sdpMediaPort?: number;
  /** Calls handled by each RTP streaming thread (-rtp_threadtasks, default 50). */
  rtpThreadTasks?: number;
  /** A response not received within this time fails the call (-recv_timeout, default 15 s). */
  recvTimeoutMs?: number;
  /** Hard limit for the whole run (default: time to start all calls + duration + 30 s). */
  timeoutMs?: number;
  /** Scenario template (default: uac-stream.xml or uac-stream-remote-bye.xml per `hangup`). */
  scenario?: string;
  /** Where scenario, audio, statistics and logs go (default: a fresh temporary directory). */
  workDir?: string;
  /** Keep the temporary work directory (always kept when `workDir` is given). */
  keepFiles?: boolean;
  /** Extra SIPp arguments. */
  extraArgs?: string[];
  /** SIPp binary (default "sipp"). */
  sipp?: string;
}

export interface SippResult {
  /** SIPp's exit code: 0 all calls succeeded, 1 some failed, 97/99 see SIPp docs, 255/254 fatal. */
  exitCode: number | null;
  /** Exit code 0 and every requested call successful. */
  ok: boolean;
  requested: number;
  successful: number;
  failed: number;
  /** Calls SIPp created (started). */
  created: number;
  retransmissions: number;
  /** Non-zero Failed*(C) counters from the statistics, e.g. { FailedCallRejected: 2 }. */
  failures: Record<string, number>;
  /** INVITE to 200 OK, mean over successful calls, milliseconds (SIPp ResponseTime1). */
  setupTimeMs: number | undefined;
  /** Mean call length in milliseconds (SIPp CallLength). */
  callLengthMs: number | undefined;
  /** Call setup time histogram from the scenario's ResponseTimeRepartition, e.g. { "<10": 3, ">=2000": 0 }. */
  setupTimeBuckets: Record<string, number>;
  /** SIPp's own overload signals (watchdog minor + major): its timers ran late. */
  watchdog: number;
  /** The last row of SIPp's statistics file, by column name (everything else it counts). */
  stats: Record<string, string>;
  /** Wall-clock duration of the SIPp run. */
  wallMs: number;
  /** Content of SIPp's error log (unexpected messages, timeouts...), at most 8 kB. */
  errors: string;
  /** SIPp's final screen (the summary it shows when it exits). */
  screen: string;
  /** SIPp's stderr. */
  stderr: string;
  args: string[];
  workDir: string;
  /** Length of the streamed audio in milliseconds (0 without audio). */
  audioMs: number;
}

export async function runCommand(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

async function runChecked(cmd: string, args: string[]): Promise<string> {
  const r = await runCommand(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Speak `text` with espeak-ng into `out` as 8 kHz mono 16-bit WAV (telephone band).
 */
export async function makeSpeechWav(
  text: string,
  out: string,
  opts: { voice?: string; wpm?: number } = {},
): Promise<string> {
  const raw = `${out}.espeak.wav`;
  await runChecked('espeak-ng', ['-v', opts.voice ?? 'en-us', '-s', String(opts.wpm ?? 150), '-w', raw, text]);
  await runChecked('sox', [raw, '-r', '8000', '-c', '1', '-b', '16', '-e', 'signed-integer', out]);
  await rm(raw, { force: true });
  return out;
}

/**
 * Convert audio to what SIPp 3.6 streams: raw (headerless) 8 kHz mono G.711. The result is
 * cached in `dir` by content hash. Returns its path and length in milliseconds.
 */
export async function toRawG711(input: string, codec: G711Codec, dir: string): Promise<{ path: string; ms: number }> {
  const hash = createHash('sha1').update(await readFile(input)).digest('hex').slice(0, 12);
  const out = join(dir, `${basename(input).replace(/\.[^.]*$/, '')}-${hash}.${SOX_TYPE[codec]}`);
  const exists = await stat(out).then(
    (s) => s.size > 0,
    () => false,
  );
  if (!exists) {
    await runChecked('sox', [input, '-r', '8000', '-c', '1', '-t', SOX_TYPE[codec], out]);
  }
  const size = (await stat(out)).size;
  if (size < 160) throw new Error(`${input} is shorter than one 20 ms packet; SIPp cannot stream it`);
  return { path: out, ms: size / 8 };
}

/** Fill the scenario template's @...@ placeholders. */
export function renderScenario(template: string, values: Record<string, string>): string {
  return template.replace(/@(AUDIO_FILE|AUDIO_LOOPS|PT|CODEC|SDP_PORT|DURATION_MS)@/g, (m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`scenario placeholder ${m} has no value`);
    return v;
  });
}

/** Parse SIPp's -trace_stat CSV (";"-separated): the last row, keyed by column name. */
export function parseSippStats(csv: string): Record<string, string> | undefined {
  const lines = csv.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const headerIdx = lines.findIndex((l) => l.startsWith('StartTime;'));
  if (headerIdx < 0 || lines.length <= headerIdx + 1) return undefined;
  const header = lines[headerIdx]!.split(';');
  const row = lines[lines.length - 1]!.split(';');
  const out: Record<string, string> = {};
  header.forEach((h, i) => {
    if (h) out[h] = row[i] ?? '';
  });
  return out;
}

/** SIPp's "HH:MM:SS:mmmuuu" (or plain number) duration to milliseconds. */
export function sippTimeToMs(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parts = value.split(':');
  if (parts.length === 4) {
    const [h, m, s, frac] = parts as [string, string, string, string];
    // The last field is microseconds (6 digits) in SIPp >= 3.x; milliseconds if 3 digits.
    const fracMs = frac.length > 3 ? Number(frac) / 1000 : Number(frac);
    return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000 + fracMs;
  }
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

const count = (stats: Record<string, string> | undefined, key: string): number => Number(stats?.[key] ?? 0) || 0;

async function readOr(path: string, max = 8192): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.length > max ? text.slice(-max) : text;
  } catch {
    return '';
  }
}

/** Run SIPp as a caller. Never throws for failed calls: check `ok`/`failed` in the result. */
export async function runSipp(opts: SippOptions): Promise<SippResult> {
  const codec = opts.codec ?? 'PCMU';
  const calls = opts.calls ?? 1;
  const rate = opts.rate ?? 10;
  const ratePeriodMs = opts.ratePeriodMs ?? 1000;
  const hangup = opts.hangup ?? 'caller';
  const localIp = opts.localIp ?? '127.0.0.1';
  const ownDir = opts.workDir === undefined;
  const workDir = opts.workDir ? resolve(opts.workDir) : await mkdtemp(join(tmpdir(), 'switchboard-sipp-'));
  await mkdir(workDir, { recursive: true });
  try {
    let audio: { path: string; ms: number } | undefined;
    if (opts.audio) audio = await toRawG711(opts.audio, codec, workDir);
    else {
      // No audio given: stream 1 s of silence so the far end sees media from the caller.
      const silence = join(workDir, `silence.${SOX_TYPE[codec]}`);
      await writeFile(silence, Buffer.alloc(8000, codec === 'PCMU' ? 0xff : 0xd5));
      audio = { path: silence, ms: 0 };
    }
    const loops = opts.audioLoops ?? (opts.audio ? 1 : -1);
    const durationMs = opts.callDurationMs ?? (audio.ms > 0 ? Math.ceil(audio.ms * Math.max(1, loops)) + 500 : 3000);

    const template = await readFile(
      opts.scenario ?? (hangup === 'remote' ? UAC_STREAM_REMOTE_BYE_SCENARIO : UAC_STREAM_SCENARIO),
      'utf8',
    );
    const scenario = join(workDir, 'scenario.xml');
    await writeFile(
      scenario,
      renderScenario(template, {
        AUDIO_FILE: audio.path,
        AUDIO_LOOPS: String(loops),
        PT: String(PAYLOAD_TYPE[codec]),
        CODEC: codec,
        SDP_PORT: opts.sdpMediaPort !== undefined ? String(opts.sdpMediaPort) : '[rtpstream_audio_port]',
        DURATION_MS: String(durationMs),
      }),
    );
    const callers = opts.callerIds && opts.callerIds.length > 0 ? opts.callerIds : ['sipp'];
    for (const c of callers) {
      if (!/^[A-Za-z0-9+*#._-]+$/.test(c)) throw new Error(`caller id "${c}" is not a valid SIP user part here`);
    }
    const injection = join(workDir, 'callers.csv');
    await writeFile(injection, `SEQUENTIAL\n${callers.map((c) => `${c};`).join('\n')}\n`);

    const statsFile = join(workDir, 'stats.csv');
    const errorFile = join(workDir, 'errors.log');
    const screenFile = join(workDir, 'screen.log');
    const startAllMs = (calls / rate) * ratePeriodMs;
    const timeoutMs = opts.timeoutMs ?? Math.ceil(startAllMs + durationMs + 30_000);
    const host = opts.host ?? '127.0.0.1';
    const args = [
      `${host}:${opts.port}`,
      '-sf', scenario,
      '-s', opts.extension,
      '-inf', injection,
      '-m', String(calls),
      '-r', String(rate),
      '-rp', String(ratePeriodMs),
      '-l', String(opts.maxConcurrent ?? calls),
      '-d', String(durationMs),
      '-i', localIp,
      '-mi', localIp,
      ...(opts.localPort !== undefined ? ['-p', String(opts.localPort)] : []),
      ...(opts.mediaPort !== undefined ? ['-mp', String(opts.mediaPort)] : []),
      '-rtp_threadtasks', String(opts.rtpThreadTasks ?? 50),
      '-recv_timeout', String(opts.recvTimeoutMs ?? 15_000),
      '-timeout', `${Math.ceil(timeoutMs / 1000)}s`,
      '-timeout_error',
      '-aa',
      '-nostdin',
      '-trace_stat', '-stf', statsFile, '-fd', '1',
      '-trace_err', '-error_file', errorFile,
      '-trace_screen', '-screen_file', screenFile,
      ...(opts.extraArgs ?? []),
    ];
    const started = Date.now();
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolvePromise, reject) => {
      const child = spawn(opts.sipp ?? 'sipp', args, { cwd: workDir, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err = (err + d.toString()).slice(-8192);
      });
      // SIPp's own -timeout should end it; this is the backstop.
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 15_000);
      child.on('error', (e) => {
        clearTimeout(killer);
        reject(e);
      });
      child.on('close', (c) => {
        clearTimeout(killer);
        resolvePromise({ code: c, stderr: err });
      });
    });
    const wallMs = Date.now() - started;
    const stats = parseSippStats(await readOr(statsFile, 1 << 20));
    const failures: Record<string, number> = {};
    for (const [key, value] of Object.entries(stats ?? {})) {
      const m = /^(Failed\w+)\(C\)$/.exec(key);
      if (m && Number(value) > 0) failures[m[1]!] = Number(value);
    }
    const setupTimeBuckets: Record<string, number> = {};
    for (const [key, value] of Object.entries(stats ?? {})) {
      const m = /^ResponseTimeRepartition1_(.+)$/.exec(key);
      if (m) setupTimeBuckets[m[1]!] = Number(value) || 0;
    }
    const successful = count(stats, 'SuccessfulCall(C)');
    const failed = count(stats, 'FailedCall(C)');
    return {
      exitCode: code,
      ok: code === 0 && successful === calls,
      requested: calls,
      successful,
      failed,
      created: count(stats, 'TotalCallCreated') || count(stats, 'OutgoingCall(C)'),
      retransmissions: count(stats, 'Retransmissions(C)'),
      failures,
      setupTimeMs: successful > 0 ? sippTimeToMs(stats?.['ResponseTime1(C)']) : undefined,
      callLengthMs: successful > 0 ? sippTimeToMs(stats?.['CallLength(C)']) : undefined,
      setupTimeBuckets,
      watchdog: count(stats, 'WatchdogMinor(C)') + count(stats, 'WatchdogMajor(C)'),
      stats: stats ?? {},
      wallMs,
      errors: await readOr(errorFile),
      screen: await readOr(screenFile, 16384),
      stderr,
      args,
      workDir,
      audioMs: audio.ms,
    };
  } finally {
    if (ownDir && !opts.keepFiles) await rm(workDir, { recursive: true, force: true });
  }
}
