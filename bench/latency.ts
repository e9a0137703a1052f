/**
 * Latency benchmark: one scripted SIPp caller at a time on extension 100 (echo agent).
 * Per cycle the caller says A (~2 s), stays silent long enough for end of turn (the echo
 * of A starts ~630 ms after A), then says B while that echo plays (a barge-in), then stays
 * silent while the echo of B plays out. Reports, from Switchboard's own wire timestamps:
 * turn latency and its split (end-of-turn decision vs engine), engine overhead over the
 * configured end-of-turn silence, barge-in reaction and how long output ran after the VAD
 * decision. One call is optionally captured with tshark to check those figures on the wire.
 */
import { join } from 'node:path';
import { runSipp } from '../test/support/sipp.js';
import { socketsOf } from '../src/pbx/index.js';
import { sleep } from './lib/cleanup.js';
import { latencyClip } from './lib/clips.js';
import { analyzeWire, LoopbackCapture, type WireAnalysis } from './lib/pcap.js';
import type { BenchSandbox } from './lib/sandbox.js';
import { distribution, median, percentile, round, type Distribution } from './lib/stats.js';
import { SwitchboardProcess, type LogRecord } from './lib/switchboard.js';

/** Switchboard's default end-of-turn silence (the CLI has no flag for it). */
export const END_OF_TURN_SILENCE_MS = 600;

export interface LatencyOptions {
  quick: boolean;
  workDir: string;
  sandbox: BenchSandbox;
  pcap: boolean;
  log: (msg: string) => void;
}

interface TurnRec {
  turn: number;
  callerLastSpeechAt: number;
  endOfTurnDecidedAt: number;
  agentFirstAudioAt: number;
  latencyMs: number;
}

interface BargeRec {
  turn: number;
  speechOnsetAt: number;
  decidedAt: number;
  agentLastAudioAt: number;
  reactionMs: number;
  stopAfterDecisionMs: number;
  playedMs: number;
  droppedMs: number;
}

interface CallSummaryLog extends LogRecord {
  callId: string;
  outcome: string;
  turns: TurnRec[];
  bargeIns: BargeRec[];
}

export interface PcapCheck {
  file: string;
  switchboardPorts: number[];
  packets: { inbound: number; outbound: number; talkspurts: number };
  /** Outbound pacing seen on the wire: |interval - 20 ms| within talkspurts. */
  wireIntervalDeviationMs: { p50: number | null; p99: number | null; max: number | null };
  /** Per turn, in order: wire latency (last voiced caller packet -> first agent packet) vs Switchboard's. */
  turns: Array<{ wireMs: number | null; switchboardMs: number | null; diffMs: number | null }>;
  bargeIns: Array<{ wireMs: number | null; switchboardMs: number | null; diffMs: number | null }>;
  medianAbsDiffMs: { turn: number | null; bargeIn: number | null };
  /** The captured call measured from the acoustic edges on the wire (median ms). */
  wire: { turnLatencyMedianMs: number | null; engineOverheadMedianMs: number | null; bargeInReactionMedianMs: number | null };
  /** Asterisk's own forwarding delay per packet, both directions (median ms). */
  asteriskForwardMedianMs: { callerToSwitchboard: number | null; switchboardToCaller: number | null };
  /** Turn latency as the SIP caller experiences it: Switchboard's median + Asterisk both ways. */
  callerSideTurnLatencyMs: number | null;
  note: string;
}

export interface LatencyResult {
  calls: number;
  cyclesPerCall: number;
  clip: { durationMs: number; utterancesMs: number[] };
  expected: { turns: number; bargeIns: number };
  sipp: { successful: number; failed: number };
  endOfTurnSilenceMs: number;
  turnLatencyMs: Distribution;
  endOfTurnMs: Distribution;
  engineMs: Distribution;
  /** latency - configured end-of-turn silence. Target: median < 40 ms. */
  engineOverheadMs: Distribution;
  bargeInReactionMs: Distribution;
  /** Agent's last packet - VAD decision. Must be <= one 20 ms frame. */
  stopAfterDecisionMs: Distribution;
  bargeInsPlayedMs: Distribution;
  targets: { engineOverheadUnder40: boolean; bargeInUnder150: boolean; stopWithinOneFrame: boolean };
  pcap?: PcapCheck | { error: string };
  warnings: string[];
}

async function switchboardRtpPorts(pid: number, exclude: number): Promise<number[]> {
  const socks = await socketsOf(pid).catch(() => []);
  return socks.filter((s) => s.protocol === 'udp' && s.port !== exclude).map((s) => s.port);
}

function comparePairs(wire: number[], sb: number[]): Array<{ wireMs: number | null; switchboardMs: number | null; diffMs: number | null }> {
  const n = Math.max(wire.length, sb.length);
  return Array.from({ length: n }, (_, i) => {
    const w = wire[i];
    const s = sb[i];
    return {
      wireMs: round(w, 1),
      switchboardMs: round(s, 1),
      diffMs: w !== undefined && s !== undefined ? round(s - w, 1) : null,
    };
  });
}

export async function runLatency(opts: LatencyOptions): Promise<LatencyResult> {
  const calls = opts.quick ? 1 : 3;
  const cycles = 3;
  const clip = await latencyClip(join(opts.workDir, 'latency-caller.wav'), { cycles, gapMs: 1000, tailMs: 3500, leadMs: 1500 });
  const warnings: string[] = [];
  const sb = await SwitchboardProcess.start({ instance: opts.sandbox.handle.instance, mode: 'summaries', logFile: join(opts.workDir, 'switchboard-latency.log') });
  let successful = 0;
  let failed = 0;
  let pcap: PcapCheck | { error: string } | undefined;
  try {
    for (let c = 0; c < calls; c++) {
      const capture = opts.pcap && c === 0;
      let cap: LoopbackCapture | undefined;
      if (capture) {
        try {
          cap = await LoopbackCapture.start(join(opts.workDir, 'latency.pcap'), `udp and portrange ${opts.sandbox.rtp.start}-${opts.sandbox.rtp.end}`);
        } catch (err) {
          pcap = { error: err instanceof Error ? err.message : String(err) };
        }
      }
      const summariesBefore = sb.logs('call summary').length;
      opts.log(`latency: call ${c + 1}/${calls} (${(clip.durationMs / 1000).toFixed(1)} s)${cap ? ', capturing' : ''}`);
      const sipp = runSipp({
        port: opts.sandbox.sipPort,
        extension: '100',
        audio: clip.path,
        audioLoops: 1,
        calls: 1,
        callDurationMs: Math.ceil(clip.durationMs) + 1000,
        workDir: join(opts.workDir, `sipp-latency-${c}`),
        timeoutMs: clip.durationMs + 30_000,
      });
      // Switchboard's RTP socket exists once the call is set up.
      const ports = new Set<number>();
      const httpPort = Number(new URL(sb.httpUrl).port);
      for (let i = 0; i < 20 && ports.size === 0; i++) {
        await sleep(250);
        for (const p of await switchboardRtpPorts(sb.pid, httpPort)) ports.add(p);
      }
      const r = await sipp;
      successful += r.successful;
      failed += r.failed;
      if (!r.ok) warnings.push(`SIPp call ${c + 1}: exit ${r.exitCode}, ${JSON.stringify(r.failures)} ${r.errors.slice(0, 300)}`);
      if (!(await sb.waitIdle(15_000))) warnings.push(`call ${c + 1}: Switchboard still had calls up 15 s after SIPp ended`);
      // The summary is logged once teardown is complete.
      for (let i = 0; i < 40 && sb.logs('call summary').length === summariesBefore; i++) await sleep(100);
      if (cap) {
        try {
          const packets = await cap.stop();
          const summary = sb.logs('call summary').slice(summariesBefore)[0] as CallSummaryLog | undefined;
          pcap = crossCheck(analyzeWire(packets, ports, opts.sandbox.rtp), summary, cap.file, [...ports]);
        } catch (err) {
          pcap = { error: err instanceof Error ? err.message : String(err) };
        }
      }
    }
  } finally {
    await sb.stop();
  }

  const summaries = sb.logs('call summary') as CallSummaryLog[];
  const turns = summaries.flatMap((s) => s.turns);
  const barges = summaries.flatMap((s) => s.bargeIns);
  const turnLogs = sb.logs('turn latency');
  if (turnLogs.length !== turns.length) warnings.push(`turn latency log lines (${turnLogs.length}) != summary turns (${turns.length})`);
  const latency = turns.map((t) => t.latencyMs);
  const eot = turns.map((t) => t.endOfTurnDecidedAt - t.callerLastSpeechAt);
  const engine = turns.map((t) => t.agentFirstAudioAt - t.endOfTurnDecidedAt);
  const overhead = latency.map((l) => l - END_OF_TURN_SILENCE_MS);
  const reaction = barges.map((b) => b.reactionMs);
  const stopAfter = barges.map((b) => b.stopAfterDecisionMs);
  const expected = { turns: calls * cycles * 2, bargeIns: calls * cycles };
  if (turns.length !== expected.turns) warnings.push(`expected ${expected.turns} turns, Switchboard measured ${turns.length}`);
  if (barges.length !== expected.bargeIns) warnings.push(`expected ${expected.bargeIns} barge-ins, Switchboard measured ${barges.length}`);
  return {
    calls,
    cyclesPerCall: cycles,
    clip: { durationMs: Math.round(clip.durationMs), utterancesMs: clip.speech.map((s) => Math.round(s.endMs - s.startMs)) },
    expected,
    sipp: { successful, failed },
    endOfTurnSilenceMs: END_OF_TURN_SILENCE_MS,
    turnLatencyMs: distribution(latency),
    endOfTurnMs: distribution(eot),
    engineMs: distribution(engine),
    engineOverheadMs: distribution(overhead),
    bargeInReactionMs: distribution(reaction),
    stopAfterDecisionMs: distribution(stopAfter),
    bargeInsPlayedMs: distribution(barges.map((b) => b.playedMs), 0),
    targets: {
      engineOverheadUnder40: overhead.length > 0 && median(overhead) < 40,
      bargeInUnder150: reaction.length > 0 && median(reaction) < 150,
      stopWithinOneFrame: stopAfter.length > 0 && Math.max(...stopAfter) <= 20,
    },
    ...(pcap ? { pcap } : {}),
    warnings,
  };
}

function crossCheck(wire: WireAnalysis, summary: CallSummaryLog | undefined, file: string, ports: number[]): PcapCheck {
  const sbTurns = (summary?.turns ?? []).map((t) => t.latencyMs);
  const sbBarges = (summary?.bargeIns ?? []).map((b) => b.reactionMs);
  const turns = comparePairs(
    wire.turns.map((t) => t.latencyMs),
    sbTurns,
  );
  const bargeIns = comparePairs(
    wire.bargeIns.map((b) => b.reactionMs),
    sbBarges,
  );
  const absDiff = (xs: Array<{ diffMs: number | null }>): number | null =>
    round(median(xs.filter((x) => x.diffMs !== null).map((x) => Math.abs(x.diffMs as number))), 1);
  const fwdIn = median(wire.asteriskForwardMs.callerToSwitchboard);
  const fwdOut = median(wire.asteriskForwardMs.switchboardToCaller);
  return {
    file,
    switchboardPorts: ports,
    packets: { inbound: wire.inboundPackets, outbound: wire.outboundPackets, talkspurts: wire.talkspurts },
    wireIntervalDeviationMs: {
      p50: round(percentile(wire.outboundIntervalDeviationMs, 50), 2),
      p99: round(percentile(wire.outboundIntervalDeviationMs, 99), 2),
      max: round(Math.max(...wire.outboundIntervalDeviationMs), 2),
    },
    turns,
    bargeIns,
    medianAbsDiffMs: { turn: absDiff(turns), bargeIn: absDiff(bargeIns) },
    wire: {
      turnLatencyMedianMs: round(median(wire.turns.map((t) => t.latencyMs)), 1),
      engineOverheadMedianMs: round(median(wire.turns.map((t) => t.latencyMs)) - END_OF_TURN_SILENCE_MS, 1),
      bargeInReactionMedianMs: round(median(wire.bargeIns.map((b) => b.reactionMs)), 1),
    },
    asteriskForwardMedianMs: { callerToSwitchboard: round(fwdIn, 2), switchboardToCaller: round(fwdOut, 2) },
    callerSideTurnLatencyMs: round(median(sbTurns) + fwdIn + fwdOut, 1),
    note:
      'wire = tshark on lo, ExternalMedia leg. Turn: last caller packet with sound (> -65 dBFS; the pauses are digital silence) -> first agent packet (marker bit). ' +
      'Barge-in: first caller packet with sound after >= 300 ms without -> last agent packet of the talkspurt. ' +
      "diff = Switchboard - wire. Switchboard's times are VAD decisions (last window with p >= 0.5, first packet of the first voiced window), " +
      'so they differ from the acoustic edges by what Silero makes of quiet tails and unvoiced onsets.',
  };
}
