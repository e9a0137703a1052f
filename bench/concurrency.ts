/**
 * Concurrency benchmark: N simultaneous SIPp calls to extension 100 (echo agent), each
 * caller streaming speech with pauses in a loop, stepping N up. Per step a fresh
 * Switchboard process is started (so its metrics are per step), SIPp ramps the calls up,
 * and over a steady window with every call up the CPU of Switchboard, Asterisk and SIPp is
 * read from /proc separately, plus Switchboard's memory. After the calls end, its /metrics
 * and JSON log give pacing, VAD, RTP drops and turn latency under load.
 */
import { join } from 'node:path';
import { runSipp, type SippResult } from '../test/support/sipp.js';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { sleep } from './lib/cleanup.js';
import { concurrencyClip, type WrittenClip } from './lib/clips.js';
import { allThreadsSched, childrenNamed, loadAverage, machineCpu, processCpuMs, processRssMiB, threadSchedMs, type ThreadSched } from './lib/procfs.js';
import type { Scrape } from './lib/prometheus.js';
import type { BenchSandbox } from './lib/sandbox.js';
import { distribution, median, round, type Distribution } from './lib/stats.js';
import { SwitchboardProcess } from './lib/switchboard.js';

export interface ConcurrencyOptions {
  steps: number[];
  quick: boolean;
  workDir: string;
  sandbox: BenchSandbox;
  /** Calls per second SIPp starts (default: enough to start every call within ~8 s). */
  rate?: number;
  /** Calls per SIPp RTP streaming thread. */
  rtpThreadTasks: number;
  log: (msg: string) => void;
}

interface CpuShare {
  /** CPU over the steady window, % of one core. */
  percentOfCore: number | null;
  /** ... divided by the calls. */
  perCallPercent: number | null;
  /** ms of CPU per second of call. */
  msPerCallSecond: number | null;
}

export interface StepResult {
  calls: number;
  rate: number;
  callDurationMs: number;
  loadAverageBefore: [number, number, number];
  sipp: {
    requested: number;
    successful: number;
    failed: number;
    failures: Record<string, number>;
    exitCode: number | null;
    setupTimeMs: number | null;
    retransmissions: number;
    watchdog: number;
    errors: string;
  };
  switchboard: {
    callsTotal: Record<string, number>;
    setupFailures: Record<string, number>;
    rejected: number;
    peakActive: number;
    allUp: boolean;
    /** Seconds from SIPp start until every call was up (null if never). */
    allUpAfterS: number | null;
    errorLogs: string[];
    exitCode: number | null;
  };
  steady: { windowS: number; activeMin: number; activeMax: number };
  cpu: {
    switchboard: CpuShare;
    asterisk: CpuShare;
    sipp: CpuShare;
    switchboardIdlePercent: number | null;
    /** Whole machine over the window, in cores (of nproc). */
    machineBusyCores: number | null;
    /** Machine minus the three processes above: other users of this shared machine. */
    otherBusyCores: number | null;
    /** Switchboard's main thread (the event loop) on a CPU, % of the window. */
    switchboardMainThreadPercent: number | null;
    /** Time Switchboard's main thread was runnable but waited for a CPU, ms per second. */
    switchboardRunQueueWaitMsPerS: number | null;
    /**
     * Switchboard's busiest threads in the window: CPU % of a core and run-queue wait (ms/s).
     * `main` is the main thread; the media worker is the one at a negative nice (when allowed).
     */
    switchboardThreads: { tid: number; main: boolean; nice: number; cpuPercent: number; waitMsPerS: number }[];
  };
  memory: { idleRssMiB: number | null; steadyRssMiB: number | null; perCallMiB: number | null; asteriskPerCallMiB: number | null };
  pacing: {
    intervalJitterP50: number | null;
    intervalJitterP99: number | null;
    sendDeviationP50: number | null;
    sendDeviationP99: number | null;
    clockLatenessP50: number | null;
    clockLatenessP99: number | null;
    packetsOut: number;
  };
  vad: { windows: number; dropped: number; /** Below the silence floor: decided without the model. */ quiet?: number; speechStarts: number; speechEnds: number; decisionsPerCall: number | null };
  rtp: { packetsIn: number; dropped: Record<string, number>; silenceFrames: number; concealedFrames: number };
  turns: {
    count: number;
    latencyMs: Distribution;
    endOfTurnMs: Distribution;
    engineMs: Distribution;
    bargeIns: number;
    bargeInReactionMs: Distribution;
  };
  /** No failed call anywhere and every call up at once. */
  clean: boolean;
  /** Outbound pacing p99 (interval jitter) under 10 ms. */
  pacingOk: boolean;
  notes: string[];
}

export interface ConcurrencyResult {
  clip: { durationMs: number; utterancesMs: number[] };
  rtpThreadTasks: number;
  steps: StepResult[];
  highestCleanStep: number | null;
  highestCleanPacingOkStep: number | null;
}

const num = (x: number | undefined): number | null => round(x, 2);

function share(cpuMs: number | undefined, windowMs: number, calls: number): CpuShare {
  if (cpuMs === undefined) return { percentOfCore: null, perCallPercent: null, msPerCallSecond: null };
  const pct = (cpuMs / windowMs) * 100;
  return { percentOfCore: round(pct, 1), perCallPercent: round(pct / calls, 3), msPerCallSecond: round(cpuMs / (calls * (windowMs / 1000)), 2) };
}

async function cpuOf(pids: Array<number | undefined>): Promise<Array<number | undefined>> {
  return Promise.all(pids.map((p) => (p === undefined ? Promise.resolve(undefined) : processCpuMs(p))));
}

function diff(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : b - a;
}

async function runStep(n: number, clip: WrittenClip, opts: ConcurrencyOptions): Promise<StepResult> {
  const notes: string[] = [];
  const rate = opts.rate ?? Math.max(10, Math.ceil(n / 8));
  const rampS = n / rate;
  const callDurationMs = Math.round((opts.quick ? 16 : 24) * 1000 + rampS * 1000);
  const loadBefore = await loadAverage();
  const sb = await SwitchboardProcess.start({
    instance: opts.sandbox.handle.instance,
    mode: 'cli',
    maxCalls: 400,
    // BENCH_SWITCHBOARD_LOG_DIR keeps Switchboard's output (e.g. with --trace-gc) after the run.
    logFile: join(process.env.BENCH_SWITCHBOARD_LOG_DIR ?? opts.workDir, `switchboard-${n}.log`),
  });
  const astPid = opts.sandbox.asteriskPid;
  try {
    // Idle baseline.
    await sleep(1500);
    const idleT0 = performance.now();
    const [idleCpu0] = await cpuOf([sb.pid]);
    const idleRss: number[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      const r = await processRssMiB(sb.pid);
      if (r !== undefined) idleRss.push(r);
    }
    const [idleCpu1] = await cpuOf([sb.pid]);
    const idleCpu = diff(idleCpu0, idleCpu1);
    const idlePct = idleCpu === undefined ? undefined : (idleCpu / (performance.now() - idleT0)) * 100;
    const astRssIdle = await processRssMiB(astPid);

    opts.log(`concurrency: ${n} calls at ${rate}/s, ${(callDurationMs / 1000).toFixed(0)} s each`);
    const sippStarted = performance.now();
    const sippRun: Promise<SippResult> = runSipp({
      port: opts.sandbox.sipPort,
      extension: '100',
      audio: clip.path,
      audioLoops: -1,
      calls: n,
      rate,
      maxConcurrent: n,
      callDurationMs,
      rtpThreadTasks: opts.rtpThreadTasks,
      workDir: join(opts.workDir, `sipp-${n}`),
      timeoutMs: callDurationMs + rampS * 1000 + 60_000,
    });

    // Wait for every call to be up (bounded by the ramp plus a margin, never past the first hang-ups).
    const firstEnd = sippStarted + callDurationMs;
    const allUpDeadline = Math.min(sippStarted + rampS * 1000 + 15_000, firstEnd - 6_000);
    let peak = 0;
    let allUpAt: number | undefined;
    let sippPid: number | undefined;
    while (performance.now() < allUpDeadline) {
      sippPid ??= (await childrenNamed(process.pid, 'sipp'))[0];
      const h = await sb.health();
      peak = Math.max(peak, h?.activeCalls ?? 0);
      if ((h?.activeCalls ?? 0) >= n) {
        allUpAt = performance.now();
        break;
      }
      await sleep(250);
    }
    if (allUpAt === undefined) notes.push(`not all ${n} calls were up at once (peak ${peak}); steady window taken anyway`);

    // Steady window: from 1 s after all calls are up until 1.5 s before the first hang-up.
    await sleep(1000);
    const windowStart = performance.now();
    const windowEnd = Math.min(windowStart + (opts.quick ? 8_000 : 15_000), firstEnd - 1_500);
    sippPid ??= (await childrenNamed(process.pid, 'sipp'))[0];
    if (sippPid === undefined) notes.push('SIPp process not found: its CPU is not reported');
    // BENCH_RENICE=-10: on a machine shared with other people's jobs, give the system under
    // test (Switchboard, Asterisk, SIPp: every thread) priority over them. Reported in the notes.
    const renice = process.env.BENCH_RENICE;
    if (renice !== undefined && /^-?\d+$/.test(renice)) {
      const tids = (await Promise.all([sb.pid, astPid, sippPid].filter((p): p is number => p !== undefined).map((p) => readdir(`/proc/${p}/task`).catch(() => [])))).flat();
      const r = spawnSync('renice', ['-n', renice, '-p', ...tids], { stdio: 'ignore' });
      notes.push(`Switchboard, Asterisk and SIPp (${tids.length} threads) reniced to ${renice} against other processes (BENCH_RENICE)${r.status === 0 ? '' : ': renice failed'}`);
    }
    const [sb0, ast0, sipp0] = await cpuOf([sb.pid, astPid, sippPid]);
    const m0 = await machineCpu();
    const sched0 = await threadSchedMs(sb.pid);
    const threads0 = await allThreadsSched(sb.pid);
    const t0 = performance.now();
    const rss: number[] = [];
    const astRss: number[] = [];
    let activeMin = Number.POSITIVE_INFINITY;
    let activeMax = 0;
    while (performance.now() < windowEnd) {
      const [r, a, h] = await Promise.all([processRssMiB(sb.pid), processRssMiB(astPid), sb.health()]);
      if (r !== undefined) rss.push(r);
      if (a !== undefined) astRss.push(a);
      if (h) {
        activeMin = Math.min(activeMin, h.activeCalls);
        activeMax = Math.max(activeMax, h.activeCalls);
      }
      await sleep(Math.max(0, Math.min(1000, windowEnd - performance.now())));
    }
    const [sb1, ast1, sipp1] = await cpuOf([sb.pid, astPid, sippPid]);
    const m1 = await machineCpu();
    const sched1 = await threadSchedMs(sb.pid);
    const threads1 = await allThreadsSched(sb.pid);
    const windowMs = performance.now() - t0;
    peak = Math.max(peak, activeMax);

    const sipp = await sippRun;
    if (!(await sb.waitIdle(30_000))) notes.push('Switchboard still had calls up 30 s after SIPp ended');
    const m: Scrape = await sb.metrics();
    const exitCode = await sb.stop();

    const sbCpu = diff(sb0, sb1);
    const astCpu = diff(ast0, ast1);
    const sippCpu = diff(sipp0, sipp1);
    const machineBusy = m1.busyMs - m0.busyMs;
    const ours = (sbCpu ?? 0) + (astCpu ?? 0) + (sippCpu ?? 0);
    const idleRssMiB = median(idleRss);
    const steadyRssMiB = median(rss);

    const turnLogs = sb.logs('turn latency');
    const bargeLogs = sb.logs('barge-in');
    const numbers = (key: string, recs: typeof turnLogs): number[] =>
      recs.map((r) => r[key]).filter((v): v is number => typeof v === 'number');
    const callsTotal = m.by('switchboard_calls_total', 'outcome');
    const setupFailures = m.by('switchboard_call_setup_failures_total', 'step');
    const failedOutcome = callsTotal.failed ?? 0;
    const setupFailed = Object.values(setupFailures).reduce((a, b) => a + b, 0);
    const rejected = m.sum('switchboard_calls_rejected_total');
    const errorLogs = sb.records
      .filter((r) => r.level >= 50)
      .slice(0, 8)
      .map((r) => `${r.msg}${typeof r.err === 'string' ? `: ${r.err}` : ''}${typeof r.step === 'string' ? ` (step ${r.step})` : ''}`);
    const starts = m.sum('switchboard_vad_speech_starts_total');
    const ends = m.sum('switchboard_vad_speech_ends_total');
    const jitterP99 = m.quantile('switchboard_rtp_interval_jitter_ms', '0.99');
    const clean = sipp.ok && sipp.failed === 0 && failedOutcome === 0 && setupFailed === 0 && rejected === 0 && allUpAt !== undefined;

    return {
      calls: n,
      rate,
      callDurationMs,
      loadAverageBefore: loadBefore,
      sipp: {
        requested: sipp.requested,
        successful: sipp.successful,
        failed: sipp.failed,
        failures: sipp.failures,
        exitCode: sipp.exitCode,
        setupTimeMs: num(sipp.setupTimeMs),
        retransmissions: sipp.retransmissions,
        watchdog: sipp.watchdog,
        errors: sipp.errors.slice(0, 600),
      },
      switchboard: {
        callsTotal,
        setupFailures,
        rejected,
        peakActive: peak,
        allUp: allUpAt !== undefined,
        allUpAfterS: allUpAt === undefined ? null : round((allUpAt - sippStarted) / 1000, 1),
        errorLogs,
        exitCode,
      },
      steady: { windowS: round(windowMs / 1000, 1) ?? 0, activeMin: Number.isFinite(activeMin) ? activeMin : 0, activeMax },
      cpu: {
        switchboard: share(sbCpu, windowMs, n),
        asterisk: share(astCpu, windowMs, n),
        sipp: share(sippCpu, windowMs, n),
        switchboardIdlePercent: round(idlePct, 1),
        machineBusyCores: round(machineBusy / windowMs, 2),
        otherBusyCores: round((machineBusy - ours) / windowMs, 2),
        switchboardMainThreadPercent: sched0 && sched1 ? round(((sched1.runMs - sched0.runMs) / windowMs) * 100, 1) : null,
        switchboardRunQueueWaitMsPerS: sched0 && sched1 ? round((sched1.waitMs - sched0.waitMs) / (windowMs / 1000), 1) : null,
        switchboardThreads: busyThreads(threads0, threads1, windowMs, sb.pid),
      },
      memory: {
        idleRssMiB: round(idleRssMiB, 1),
        steadyRssMiB: round(steadyRssMiB, 1),
        perCallMiB: round((steadyRssMiB - idleRssMiB) / n, 3),
        asteriskPerCallMiB: astRssIdle === undefined ? null : round((median(astRss) - astRssIdle) / n, 3),
      },
      pacing: {
        intervalJitterP50: num(m.quantile('switchboard_rtp_interval_jitter_ms', '0.5')),
        intervalJitterP99: num(jitterP99),
        sendDeviationP50: num(m.quantile('switchboard_rtp_send_deviation_ms', '0.5')),
        sendDeviationP99: num(m.quantile('switchboard_rtp_send_deviation_ms', '0.99')),
        clockLatenessP50: num(m.quantile('switchboard_media_clock_lateness_ms', '0.5')),
        clockLatenessP99: num(m.quantile('switchboard_media_clock_lateness_ms', '0.99')),
        packetsOut: m.sum('switchboard_rtp_packets_out_total'),
      },
      vad: {
        windows: m.sum('switchboard_vad_windows_total'),
        dropped: m.sum('switchboard_vad_windows_dropped_total'),
        quiet: m.sum('switchboard_vad_windows_quiet_total'),
        speechStarts: starts,
        speechEnds: ends,
        decisionsPerCall: round((starts + ends) / n, 1),
      },
      rtp: {
        packetsIn: m.sum('switchboard_rtp_packets_in_total'),
        dropped: m.by('switchboard_rtp_dropped_total', 'reason'),
        silenceFrames: m.sum('switchboard_inbound_silence_frames_total'),
        concealedFrames: m.sum('switchboard_rtp_concealed_frames_total'),
      },
      turns: {
        count: turnLogs.length,
        latencyMs: distribution(numbers('latencyMs', turnLogs)),
        endOfTurnMs: distribution(numbers('endOfTurnMs', turnLogs)),
        engineMs: distribution(numbers('engineMs', turnLogs)),
        bargeIns: bargeLogs.length,
        bargeInReactionMs: distribution(numbers('reactionMs', bargeLogs)),
      },
      clean,
      pacingOk: jitterP99 !== undefined && jitterP99 < 10,
      notes,
    };
  } finally {
    await sb.stop();
  }
}

export async function runConcurrency(opts: ConcurrencyOptions): Promise<ConcurrencyResult> {
  const clip = await concurrencyClip(join(opts.workDir, 'concurrency-caller.wav'));
  const steps: StepResult[] = [];
  for (const n of opts.steps) {
    const r = await runStep(n, clip, opts);
    steps.push(r);
    opts.log(
      `concurrency: ${n} calls -> ${r.clean ? 'clean' : 'NOT clean'}; Switchboard ${r.cpu.switchboard.percentOfCore}% CPU, ` +
        `Asterisk ${r.cpu.asterisk.percentOfCore}%, SIPp ${r.cpu.sipp.percentOfCore}%, pacing p99 ${r.pacing.intervalJitterP99} ms`,
    );
    await sleep(2000); // let Asterisk finish tearing the last calls down
  }
  const clean = steps.filter((s) => s.clean).map((s) => s.calls);
  const cleanPacing = steps.filter((s) => s.clean && s.pacingOk).map((s) => s.calls);
  return {
    clip: { durationMs: Math.round(clip.durationMs), utterancesMs: clip.speech.map((s) => Math.round(s.endMs - s.startMs)) },
    rtpThreadTasks: opts.rtpThreadTasks,
    steps,
    highestCleanStep: clean.length ? Math.max(...clean) : null,
    highestCleanPacingOkStep: cleanPacing.length ? Math.max(...cleanPacing) : null,
  };
}

/** Threads that used at least 1% of a core between two readings, busiest first. */
function busyThreads(before: ThreadSched[], after: ThreadSched[], windowMs: number, pid: number): StepResult['cpu']['switchboardThreads'] {
  const start = new Map(before.map((t) => [t.tid, t]));
  return after
    .map((t) => {
      const b = start.get(t.tid);
      return {
        tid: t.tid,
        main: t.tid === pid,
        nice: t.nice,
        cpuPercent: Math.round(((t.runMs - (b?.runMs ?? 0)) / windowMs) * 1000) / 10,
        waitMsPerS: Math.round(((t.waitMs - (b?.waitMs ?? 0)) / (windowMs / 1000)) * 10) / 10,
      };
    })
    .filter((t) => t.cpuPercent >= 1)
    .sort((x, y) => y.cpuPercent - x.cpuPercent);
}
