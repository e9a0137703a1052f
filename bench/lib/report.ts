/** Renders a run's results as a Markdown summary (bench/RESULTS.md) and a compact console table. */
import type { ConcurrencyResult, StepResult } from '../concurrency.js';
import type { LatencyResult, PcapCheck } from '../latency.js';
import type { MediaResult } from '../media.js';
import type { Environment } from './env.js';
import { fmt } from './stats.js';

export interface BenchResults {
  name: string;
  environment: Environment;
  options: { only: string[]; steps: number[]; quick: boolean; pcap: boolean; rtpThreadTasks: number; rate?: number };
  durationS: number;
  media?: MediaResult;
  concurrency?: ConcurrencyResult;
  latency?: LatencyResult;
  /** A benchmark that threw: its error message. */
  errors: Record<string, string>;
}

type Row = Array<string | number>;

function table(header: Row, rows: Row[]): string {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(cells[0] as string[]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

const yesNo = (b: boolean | undefined): string => (b === undefined ? 'not measured' : b ? '**met**' : '**not met**');

function outcomes(r: Record<string, number>): string {
  const e = Object.entries(r).filter(([, v]) => v > 0);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : '-';
}

export function mediaTable(m: MediaResult): string {
  const rows: Row[] = m.stages.map((s) => [
    s.stage,
    s.calls,
    fmt(s.msPerCallSecond, 3),
    fmt(s.coresAt200, 2),
    s.notes?.meanBatch !== undefined ? `mean batch ${s.notes.meanBatch}, dropped ${s.notes.windowsDropped}` : '',
  ]);
  rows.push([`**total** (decode + resample + VAD at ${m.total.vadCalls} calls)`, '', `**${fmt(m.total.msPerCallSecond, 3)}**`, `**${fmt(m.total.coresAt200, 2)}**`, '']);
  return table(['stage', 'calls in lockstep', 'ms CPU per call-second (median)', 'cores @200 calls', 'notes'], rows);
}

export function concurrencyTables(c: ConcurrencyResult): string {
  const calls = c.steps.map((s) => [
    s.calls,
    `${s.sipp.successful}/${s.sipp.requested}`,
    s.sipp.failed,
    outcomes(s.switchboard.callsTotal),
    outcomes(s.switchboard.setupFailures),
    `${s.switchboard.peakActive}${s.switchboard.allUp ? '' : ' (never all up)'}`,
    `${fmt(s.cpu.switchboard.percentOfCore)}% (${fmt(s.cpu.switchboard.perCallPercent, 2)}%/call, ${fmt(s.cpu.switchboard.msPerCallSecond, 1)} ms/call-s)`,
    fmt(s.memory.perCallMiB, 2),
    `${fmt(s.cpu.asterisk.percentOfCore)}% (${fmt(s.cpu.asterisk.msPerCallSecond, 1)} ms/call-s)`,
    `${fmt(s.cpu.sipp.percentOfCore)}%`,
    `${fmt(s.cpu.machineBusyCores, 2)} (${fmt(s.cpu.otherBusyCores, 2)})`,
    `${fmt(s.cpu.switchboardMainThreadPercent, 0)}% / ${fmt(s.cpu.switchboardRunQueueWaitMsPerS, 0)}`,
    s.clean ? 'yes' : '**no**',
  ]);
  const media = c.steps.map((s) => [
    s.calls,
    `${fmt(s.pacing.intervalJitterP50, 1)} / ${fmt(s.pacing.intervalJitterP99, 1)}`,
    `${fmt(s.pacing.sendDeviationP50, 1)} / ${fmt(s.pacing.sendDeviationP99, 1)}`,
    `${fmt(s.pacing.clockLatenessP50, 1)} / ${fmt(s.pacing.clockLatenessP99, 1)}`,
    fmt(s.vad.decisionsPerCall, 1),
    s.vad.dropped,
    s.rtp.silenceFrames,
    outcomes(s.rtp.dropped),
    s.turns.count,
    `${fmt(s.turns.latencyMs.median, 0)} / ${fmt(s.turns.latencyMs.p95, 0)}`,
    `${fmt(s.turns.endOfTurnMs.median, 0)} + ${fmt(s.turns.engineMs.median, 0)} (end-of-turn min ${fmt(s.turns.endOfTurnMs.min, 0)})`,
    `${s.turns.bargeIns} / ${fmt(s.turns.bargeInReactionMs.median, 0)}`,
  ]);
  return [
    table(
      ['calls', 'SIPp ok', 'SIPp failed', 'Switchboard outcomes', 'setup failures', 'peak up', 'Switchboard CPU', 'SB MiB/call', 'Asterisk CPU', 'SIPp CPU', 'machine cores busy (others)', 'SB event-loop thread on CPU / run-queue wait ms/s', 'clean'],
      calls,
    ),
    '',
    table(
      ['calls', 'pacing jitter p50/p99 ms', 'send deviation p50/p99 ms', 'clock lateness p50/p99 ms', 'VAD decisions/call', 'VAD windows dropped', 'synthetic silence frames', 'RTP dropped', 'turns', 'turn latency median/p95 ms', 'split: end-of-turn + engine ms', 'barge-ins / median reaction ms'],
      media,
    ),
  ].join('\n');
}

export function latencyTable(l: LatencyResult): string {
  const d = (name: string, x: LatencyResult['turnLatencyMs'], target = ''): Row => [name, x.n, fmt(x.median), fmt(x.p95), `${fmt(x.min)} .. ${fmt(x.max)}`, target];
  return table(
    ['measure (Switchboard wire timestamps)', 'n', 'median ms', 'p95 ms', 'min .. max', 'target'],
    [
      d('turn latency (last speech packet -> first agent packet)', l.turnLatencyMs),
      d('  end-of-turn decision (last speech -> VAD decision)', l.endOfTurnMs),
      d('  engine (VAD decision -> first agent packet)', l.engineMs),
      d(`engine overhead (latency - ${l.endOfTurnSilenceMs} ms silence)`, l.engineOverheadMs, 'median < 40'),
      d('barge-in reaction (speech onset -> last agent packet)', l.bargeInReactionMs, 'median < 150'),
      d('output after the VAD decision (last packet - decision)', l.stopAfterDecisionMs, '<= 20 (one frame)'),
    ],
  );
}

function pcapSection(p: PcapCheck | { error: string } | undefined): string {
  if (!p) return 'No capture (run with tshark installed, without `--no-pcap`).';
  if ('error' in p) return `Capture failed: ${p.error}`;
  const rows: Row[] = p.turns.map((t, i) => [`turn ${i + 1}`, fmt(t.wireMs), fmt(t.switchboardMs), fmt(t.diffMs)]);
  p.bargeIns.forEach((b, i) => rows.push([`barge-in ${i + 1}`, fmt(b.wireMs), fmt(b.switchboardMs), fmt(b.diffMs)]));
  return [
    `One call captured with tshark on lo (Switchboard RTP port(s) ${p.switchboardPorts.join(', ')}; ${p.packets.inbound} packets in, ${p.packets.outbound} out, ${p.packets.talkspurts} agent talkspurts).`,
    '',
    table(['event', 'wire ms', 'Switchboard ms', 'diff ms'], rows),
    '',
    `Median |diff|: turns ${fmt(p.medianAbsDiffMs.turn)} ms, barge-ins ${fmt(p.medianAbsDiffMs.bargeIn)} ms. ` +
      `Measured from the acoustic edges, this call's turn latency median is ${fmt(p.wire.turnLatencyMedianMs)} ms (engine overhead ${fmt(p.wire.engineOverheadMedianMs)} ms) ` +
      `and its barge-in reaction median ${fmt(p.wire.bargeInReactionMedianMs)} ms. ` +
      `Outbound pacing on the wire: |interval - 20 ms| p50 ${fmt(p.wireIntervalDeviationMs.p50, 2)}, p99 ${fmt(p.wireIntervalDeviationMs.p99, 2)}, max ${fmt(p.wireIntervalDeviationMs.max, 2)} ms. ` +
      `Asterisk's forwarding between the SIP leg and the ExternalMedia leg: ${fmt(p.asteriskForwardMedianMs.callerToSwitchboard, 2)} ms in, ${fmt(p.asteriskForwardMedianMs.switchboardToCaller, 2)} ms out (median per packet), ` +
      `so the SIP caller sees about ${fmt(p.callerSideTurnLatencyMs)} ms turn latency by Switchboard's definition.`,
    '',
    `_${p.note}_`,
  ].join('\n');
}

/** Data-driven observations: where the limits and the CPU are. */
export function observations(r: BenchResults): string[] {
  const out: string[] = [];
  const c = r.concurrency;
  if (c && c.steps.length > 0) {
    out.push(`Highest clean step (every call answered and up at once, no failure anywhere): ${c.highestCleanStep ?? 'none'}; clean with pacing p99 < 10 ms: ${c.highestCleanPacingOkStep ?? 'none'}.`);
    for (const s of c.steps) {
      const why: string[] = [];
      if (s.sipp.failed > 0) why.push(`SIPp failed ${s.sipp.failed} (${outcomes(s.sipp.failures)})`);
      const setup = outcomes(s.switchboard.setupFailures);
      if (setup !== '-') why.push(`Switchboard setup failures: ${setup}`);
      if ((s.switchboard.callsTotal.failed ?? 0) > 0) why.push(`Switchboard ended ${s.switchboard.callsTotal.failed} calls as failed`);
      if (s.switchboard.rejected > 0) why.push(`${s.switchboard.rejected} rejected by admission control`);
      if (!s.switchboard.allUp) why.push(`never all ${s.calls} up at once (peak ${s.switchboard.peakActive})`);
      if (s.switchboard.errorLogs.length > 0) why.push(`errors logged: ${[...new Set(s.switchboard.errorLogs)].slice(0, 3).join('; ')}`);
      const load: string[] = [];
      if ((s.cpu.machineBusyCores ?? 0) >= r.environment.nproc * 0.9) load.push(`machine CPU saturated (${fmt(s.cpu.machineBusyCores, 2)} of ${r.environment.nproc} cores busy, ${fmt(s.cpu.otherBusyCores, 2)} by other processes)`);
      if ((s.cpu.switchboardRunQueueWaitMsPerS ?? 0) > 50) {
        load.push(`Switchboard's event-loop thread ran ${fmt(s.cpu.switchboardMainThreadPercent, 0)}% of the time and waited ${fmt(s.cpu.switchboardRunQueueWaitMsPerS, 0)} ms/s for a CPU`);
        const threads = (s.cpu.switchboardThreads ?? []).slice(0, 4);
        if (threads.length > 0) {
          load.push(
            `its busiest threads: ${threads.map((t) => `${t.main ? 'main' : `tid ${t.tid}`}${t.nice !== 0 ? ` (nice ${t.nice})` : ''} ${fmt(t.cpuPercent, 0)}% cpu, waits ${fmt(t.waitMsPerS, 0)} ms/s`).join('; ')}`,
          );
        }
      }
      if (s.sipp.watchdog > 0) load.push(`SIPp's watchdog fired ${s.sipp.watchdog} times (SIPp itself late)`);
      if (s.sipp.retransmissions > 0) load.push(`${s.sipp.retransmissions} SIP retransmissions`);
      if (!s.pacingOk) load.push(`pacing p99 ${fmt(s.pacing.intervalJitterP99, 1)} ms with media-clock lateness p99 ${fmt(s.pacing.clockLatenessP99, 1)} ms (the clock timer fires late: event loop busy or starved)`);
      if (s.vad.dropped > 0) load.push(`${s.vad.dropped} of ${s.vad.windows + s.vad.dropped} VAD windows dropped (inference fell behind)`);
      if (s.rtp.silenceFrames > 0) {
        load.push(
          `${s.rtp.silenceFrames} synthetic silence frames fed although SIPp streams without pauses (${s.rtp.packetsIn} packets in)` +
            (s.turns.endOfTurnMs.min !== null && s.turns.endOfTurnMs.min < 600 ? `; shortest end-of-turn decision ${fmt(s.turns.endOfTurnMs.min, 0)} ms after the last speech packet, under the 600 ms silence it needs` : ''),
        );
      }
      if (why.length || load.length) out.push(`${s.calls} calls: ${[...why, ...load].join('; ')}.`);
    }
    const last = c.steps[c.steps.length - 1] as StepResult;
    out.push(
      `CPU at ${last.calls} calls over the steady window: Switchboard ${fmt(last.cpu.switchboard.percentOfCore)}%, Asterisk ${fmt(last.cpu.asterisk.percentOfCore)}%, ` +
        `SIPp ${fmt(last.cpu.sipp.percentOfCore)}% of one core; other processes on this shared machine ${fmt(last.cpu.otherBusyCores, 2)} cores.`,
    );
    if (r.media) {
      const vad = r.media.stages.find((s) => s.stage.startsWith('VAD') && s.calls === r.media?.total.vadCalls);
      if (vad?.msPerCallSecond && last.cpu.switchboard.msPerCallSecond) {
        out.push(
          `Of Switchboard's ${fmt(last.cpu.switchboard.msPerCallSecond, 1)} ms CPU per call-second at ${last.calls} calls, Silero VAD accounts for about ` +
            `${fmt(vad.msPerCallSecond, 1)} (media micro-benchmark, batch of ~${vad.notes?.meanBatch}); the rest is RTP in/out, the media clock, ARI and logging.`,
        );
      }
    }
  }
  const l = r.latency;
  if (l) {
    out.push(
      `Scripted caller: ${l.turnLatencyMs.n} turns and ${l.bargeInReactionMs.n} barge-ins measured (expected ${l.expected.turns} and ${l.expected.bargeIns}); ` +
        `engine overhead median ${fmt(l.engineOverheadMs.median)} ms, barge-in reaction median ${fmt(l.bargeInReactionMs.median)} ms.`,
    );
    for (const w of l.warnings) out.push(`Latency run: ${w}`);
  }
  for (const [k, v] of Object.entries(r.errors)) out.push(`The ${k} benchmark failed: ${v}`);
  return out;
}

export function targets(r: BenchResults): Row[] {
  const s200 = r.concurrency?.steps.find((s) => s.calls === 200);
  const l = r.latency;
  const wirePcap = l?.pcap && !('error' in l.pcap) ? l.pcap : undefined;
  return [
    ['200 concurrent echo calls, no failed call', s200 ? `${s200.sipp.successful}/200 answered, ${s200.sipp.failed} failed (SIPp); clean: ${s200.clean}` : '-', yesNo(s200?.clean)],
    ['outbound pacing p99 < 10 ms at 200 calls', s200 ? `${fmt(s200.pacing.intervalJitterP99, 1)} ms` : '-', yesNo(s200 ? s200.pacingOk : undefined)],
    ['engine overhead median < 40 ms', l ? `${fmt(l.engineOverheadMs.median)} ms` : '-', yesNo(l?.targets.engineOverheadUnder40)],
    [
      '  same, from the acoustic end of speech on the wire (captured call)',
      wirePcap ? `${fmt(wirePcap.wire.engineOverheadMedianMs)} ms` : '-',
      yesNo(wirePcap?.wire.engineOverheadMedianMs == null ? undefined : wirePcap.wire.engineOverheadMedianMs < 40),
    ],
    ['barge-in reaction median < 150 ms', l ? `${fmt(l.bargeInReactionMs.median)} ms` : '-', yesNo(l?.targets.bargeInUnder150)],
    ['output after barge-in decision <= one 20 ms frame', l ? `max ${fmt(l.stopAfterDecisionMs.max)} ms` : '-', yesNo(l?.targets.stopWithinOneFrame)],
  ];
}

export function renderMarkdown(r: BenchResults): string {
  const e = r.environment;
  const parts: string[] = [
    '# Switchboard benchmark results',
    '',
    `Generated by \`${e.command}\` on ${e.date} (${r.durationS.toFixed(0)} s); raw figures in \`bench/results/${r.name}.json\`.`,
    'Medians and ratios from one run on a shared machine: they move with the load, read them as orders of magnitude, not guarantees.',
    '',
    '## Machine',
    '',
    table(
      ['item', 'value'],
      [
        ['CPU', `${e.cpuModel}, nproc ${e.nproc}`],
        ['RAM', `${e.ramGiB} GiB`],
        ['kernel', e.kernel],
        ['Node', e.node],
        ['Asterisk', e.asterisk],
        ['SIPp', e.sipp],
        ['git', e.git],
        ['load average before the run (1/5/15 min)', e.loadAverageBefore.map((x) => x.toFixed(2)).join(' / ')],
      ],
    ),
    '',
    '## Targets',
    '',
    table(['target', 'measured', 'result'], targets(r)),
    '',
  ];
  if (r.media) {
    parts.push(
      '## Media engine (micro-benchmark)',
      '',
      `Inbound path per call on ${r.media.audioSeconds} s of espeak-ng speech with pauses (${r.media.speechSeconds} s voiced; VAD on the first ${r.media.stages.find((x) => x.notes?.audioSeconds !== undefined)?.notes?.audioSeconds ?? '?'} s), ${r.media.model}; ` +
        `CPU by process.cpuUsage() (all threads), median of ${r.media.repeats} repeats. Calls run in lockstep so the VAD batcher forms real batches (max 64, 4 ms wait: the app's settings).`,
      '',
      mediaTable(r.media),
      '',
    );
  }
  if (r.concurrency) {
    const c = r.concurrency;
    parts.push(
      '## Concurrency (echo agent, extension 100)',
      '',
      `Each SIPp caller loops a ${(c.clip.durationMs / 1000).toFixed(1)} s clip (utterances of ${c.clip.utterancesMs.join(', ')} ms with 1.5 s and 3 s pauses), so the echo agent answers every utterance and some answers are barged in. ` +
        `SIPp rtp_threadtasks ${c.rtpThreadTasks}. A fresh Switchboard process per step (\`node bin/switchboard.js start --agent echo --max-calls 400\`). ` +
        'CPU from /proc/<pid>/stat over the steady window (all calls up), as % of one core; memory = steady RSS minus idle RSS, per call. ' +
        "Pacing, VAD and RTP figures come from Switchboard's /metrics after the calls ended; turn figures from its log.",
      '',
      concurrencyTables(c),
      '',
    );
  }
  if (r.latency) {
    const l = r.latency;
    parts.push(
      '## Latency (scripted caller, one call at a time)',
      '',
      `${l.calls} call(s) x ${l.cyclesPerCall} cycles: utterance A, 1 s silence (the echo of A starts ~${l.endOfTurnSilenceMs} ms after A), utterance B during that echo (barge-in), 3.5 s silence. ` +
        `Utterances ${l.clip.utterancesMs.join(', ')} ms. Figures from Switchboard's per-call summaries (its own wire timestamps: packet arrival and departure).`,
      '',
      latencyTable(l),
      '',
      '### Cross-check on the wire',
      '',
      pcapSection(l.pcap),
      '',
    );
  }
  const obs = observations(r);
  if (obs.length) parts.push('## Observations', '', ...obs.map((o) => `- ${o}`), '');
  return parts.join('\n');
}

/** Compact console summary. */
export function renderConsole(r: BenchResults): string {
  const lines: string[] = [];
  const e = r.environment;
  lines.push(`\n${e.cpuModel} x${e.nproc}, ${e.ramGiB} GiB, node ${e.node}, ${e.asterisk}; load before ${e.loadAverageBefore.join(' ')}`);
  if (r.media) lines.push(`\nmedia: ${r.media.stages.map((s) => `${s.stage}${s.stage.startsWith('VAD') ? ` x${s.calls}` : ''} ${fmt(s.msPerCallSecond, 2)}`).join(' | ')} | total ${fmt(r.media.total.msPerCallSecond, 2)} ms CPU/call-s`);
  if (r.concurrency) {
    lines.push('');
    lines.push(' calls  ok/req   SB%cpu  SB ms/call-s  MiB/call  Ast%cpu  SIPp%cpu  busy cores  jitter p99  lateness p99  turn med  barge med  clean');
    for (const s of r.concurrency.steps) {
      lines.push(
        [
          String(s.calls).padStart(6),
          `${s.sipp.successful}/${s.sipp.requested}`.padStart(8),
          fmt(s.cpu.switchboard.percentOfCore).padStart(7),
          fmt(s.cpu.switchboard.msPerCallSecond, 1).padStart(13),
          fmt(s.memory.perCallMiB, 2).padStart(9),
          fmt(s.cpu.asterisk.percentOfCore).padStart(8),
          fmt(s.cpu.sipp.percentOfCore).padStart(9),
          fmt(s.cpu.machineBusyCores, 2).padStart(11),
          fmt(s.pacing.intervalJitterP99, 1).padStart(11),
          fmt(s.pacing.clockLatenessP99, 1).padStart(13),
          fmt(s.turns.latencyMs.median, 0).padStart(9),
          fmt(s.turns.bargeInReactionMs.median, 0).padStart(10),
          (s.clean ? 'yes' : 'NO').padStart(6),
        ].join(' '),
      );
    }
  }
  if (r.latency) {
    const l = r.latency;
    lines.push(
      `\nlatency: turn ${fmt(l.turnLatencyMs.median)} ms median (p95 ${fmt(l.turnLatencyMs.p95)}), engine overhead ${fmt(l.engineOverheadMs.median)} ms, ` +
        `barge-in ${fmt(l.bargeInReactionMs.median)} ms (p95 ${fmt(l.bargeInReactionMs.p95)}), output after decision max ${fmt(l.stopAfterDecisionMs.max)} ms`,
    );
    if (l.pcap && !('error' in l.pcap)) lines.push(`pcap check: median |Switchboard - wire| turns ${fmt(l.pcap.medianAbsDiffMs.turn)} ms, barge-ins ${fmt(l.pcap.medianAbsDiffMs.bargeIn)} ms`);
  }
  lines.push('\ntargets:');
  for (const t of targets(r)) lines.push(`  ${String(t[0]).padEnd(66)} ${String(t[1]).padEnd(48)} ${String(t[2]).replace(/\*/g, '')}`);
  for (const [k, v] of Object.entries(r.errors)) lines.push(`\n${k} FAILED: ${v}`);
  return lines.join('\n');
}
