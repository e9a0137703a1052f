/**
 * A scripted caller holds a conversation with a running Switchboard through the PBX: it
 * waits for each agent turn to finish, says its next line (or talks over the agent, for
 * barge-in), and records both sides. The result pairs what the caller said with what the
 * agent heard (its STT) and what the agent said with what was actually played, plus turn
 * latencies from both ends and the tools the agent used.
 */
import type { CallInfo } from '../agents/agent.js';
import type { AudioFrame } from '../audio/frame.js';
import type { VadStreamSource } from '../audio/vad/silero-stream.js';
import type { CallSummary } from '../call/call-session.js';
import type { ConversationObserver } from '../conversation/conversation-agent.js';
import type { ToolOutcome } from '../conversation/tool-runner.js';
import { SipCaller, type AgentTurn, type CallEnd } from './sip-caller.js';

export interface ScriptStep {
  /** What the caller says. */
  say: string;
  /** Talk over the agent's reply this long after it starts, instead of waiting for it to end. */
  bargeInAfterMs?: number;
}

export interface DemoScript {
  name: string;
  description: string;
  extension: string;
  /** The caller's number: the SIP From user, which the PBX passes on as caller ID (default "democaller"). */
  from?: string;
  steps: ScriptStep[];
  /** Did the conversation reach its goal? */
  goal(r: ScriptedCallResult): { ok: boolean; why: string };
}

export type TranscriptEntry =
  | { who: 'caller'; turn: number; line: string; heard?: string }
  | { who: 'agent'; turn: number; text: string; played: string; completed: boolean }
  | { who: 'tool'; turn: number; name: string; ok: boolean; failure?: string | undefined; args: unknown }
  | { who: 'failure'; turn: number; stage: string; error: string };

export interface ScriptedCallResult {
  script: string;
  transcript: TranscriptEntry[];
  /** The engine's record of the call (wire timings, outcome). */
  summary: CallSummary | undefined;
  /** The caller's view: agent turns with the latency from its last speech packet sent. */
  agentTurns: AgentTurn[];
  end: CallEnd;
  tools: ToolOutcome[];
}

/** Collects a call's conversation events; pass `observerFor` to startFromConfig. */
export class ConversationRecorder {
  private readonly byCall = new Map<string, { entries: TranscriptEntry[]; tools: ToolOutcome[] }>();

  observerFor = (call: CallInfo): ConversationObserver => {
    const rec = { entries: [] as TranscriptEntry[], tools: [] as ToolOutcome[] };
    this.byCall.set(call.callId, rec);
    return {
      callerSaid: (turn, text) => rec.entries.push({ who: 'caller', turn, line: '', heard: text }),
      agentSaid: (turn, text, played, completed) => rec.entries.push({ who: 'agent', turn, text, played, completed }),
      toolCalled: (turn, o) => {
        rec.tools.push(o);
        rec.entries.push({ who: 'tool', turn, name: o.call.name, ok: o.result.ok, failure: o.failure, args: o.call.arguments });
      },
      failed: (turn, stage, error) => rec.entries.push({ who: 'failure', turn, stage, error }),
    };
  };

  take(callId: string): { entries: TranscriptEntry[]; tools: ToolOutcome[] } {
    const r = this.byCall.get(callId) ?? { entries: [], tools: [] };
    this.byCall.delete(callId);
    return r;
  }

  /** The most recent call recorded (the scripted call, when it is the only one). */
  latestCallId(): string | undefined {
    return [...this.byCall.keys()].pop();
  }
}

export interface RunScriptOptions {
  sip: { host: string; port: number };
  recorder: ConversationRecorder;
  /** Resolves with the engine's summary of the call once it has ended (from onCallEnded). */
  summaryFor: (predicate: (s: CallSummary) => boolean, timeoutMs: number) => Promise<CallSummary | undefined>;
  vad?: VadStreamSource;
  /** Longest wait for one agent turn. */
  turnTimeoutMs?: number;
  /** Renders the caller's lines (8 kHz); default: espeak-ng inside the SIP caller. */
  voice?: (text: string) => Promise<AudioFrame>;
  log?: (line: string) => void;
}

export async function runScriptedCall(script: DemoScript, opts: RunScriptOptions): Promise<ScriptedCallResult> {
  const log = opts.log ?? (() => undefined);
  const turnTimeoutMs = opts.turnTimeoutMs ?? 30_000;
  const call = await SipCaller.dial({
    host: opts.sip.host,
    port: opts.sip.port,
    extension: script.extension,
    from: script.from ?? 'democaller',
    ...(opts.vad ? { vad: opts.vad } : {}),
  });
  const callerLines: { line: string; at: number }[] = [];
  try {
    // The greeting.
    const greeting = await call.waitForAgentTurn({ timeoutMs: turnTimeoutMs });
    log(`agent spoke ${Math.round(greeting.speechMs)} ms (greeting)`);
    for (const [i, step] of script.steps.entries()) {
      if (call.isEnded) break;
      if (step.bargeInAfterMs !== undefined) {
        await call.waitForAgentSpeechStart(turnTimeoutMs);
        const r = await call.sayWhileAgentSpeaks(opts.voice ? await opts.voice(step.say) : step.say, { afterMs: step.bargeInAfterMs });
        callerLines.push({ line: step.say, at: r.firstSentAt });
        log(`caller (barging in): ${step.say}`);
        call.discardPendingTurns();
      } else {
        const r = await call.say(opts.voice ? await opts.voice(step.say) : step.say);
        callerLines.push({ line: step.say, at: r.firstSentAt });
        log(`caller: ${step.say}`);
      }
      if (call.isEnded) break;
      // The next step talks over the agent's reply to this line: do not wait for it to end.
      if (script.steps[i + 1]?.bargeInAfterMs !== undefined) continue;
      try {
        const t = await call.waitForAgentTurn({ timeoutMs: turnTimeoutMs });
        log(`agent spoke ${Math.round(t.speechMs)} ms${t.latencyMs !== undefined ? ` (${Math.round(t.latencyMs)} ms after the caller)` : ''}`);
      } catch (err) {
        if (call.isEnded) break;
        throw err;
      }
    }
    // Let the agent finish (a goodbye, a transfer) and end the call itself; else hang up.
    const ended = await Promise.race([call.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
    if (!ended) await call.hangup();
  } catch (err) {
    if (!call.isEnded) await call.hangup();
    throw err;
  }
  const end = await call.ended;
  const from = script.from ?? 'democaller';
  const summary = await opts.summaryFor((s) => s.info.caller.number === from || s.info.caller.name === from, 15_000);
  const rec = summary ? opts.recorder.take(summary.info.callId) : { entries: [], tools: [] };
  // Put the caller's scripted lines next to what the agent heard, in turn order.
  let i = 0;
  const transcript = rec.entries.map((e) => (e.who === 'caller' ? { ...e, line: callerLines[i++]?.line ?? '' } : e));
  return { script: script.name, transcript, summary, agentTurns: call.turns, end, tools: rec.tools };
}

/** A two-sided transcript with per-turn latency, for people. */
export function formatTranscript(r: ScriptedCallResult): string {
  const lines: string[] = [];
  const latency = new Map((r.summary?.turns ?? []).map((t) => [t.turn, t.latencyMs]));
  for (const e of r.transcript) {
    switch (e.who) {
      case 'caller':
        lines.push(`  CALLER  ${e.line}`);
        if (e.heard !== undefined) lines.push(`          (agent heard: "${e.heard}")`);
        break;
      case 'agent': {
        const l = latency.get(e.turn);
        const timing = l !== undefined ? `  [${Math.round(l)} ms]` : '';
        lines.push(`  AGENT   ${e.completed ? e.text : `${e.played} <cut off by the caller>`}${timing}`);
        break;
      }
      case 'tool':
        lines.push(`          -> ${e.name}(${JSON.stringify(e.args)}) ${e.ok ? 'ok' : `failed${e.failure ? ` (${e.failure})` : ''}`}`);
        break;
      case 'failure':
        lines.push(`          !! ${e.stage} failed: ${e.error}`);
        break;
    }
  }
  const s = r.summary;
  if (s) {
    const lat = s.turns.map((t) => t.latencyMs).sort((a, b) => a - b);
    const med = lat.length ? lat[Math.floor(lat.length / 2)]! : undefined;
    lines.push('');
    lines.push(
      `  outcome: ${s.outcome}; ${s.turns.length} turns, median turn latency ${med !== undefined ? `${Math.round(med)} ms` : 'n/a'} ` +
        `(caller's last speech packet -> agent's first audio packet); barge-ins: ${s.bargeIns.length}` +
        (s.bargeIns.length ? ` (reaction ${s.bargeIns.map((b) => `${Math.round(b.reactionMs)} ms`).join(', ')})` : ''),
    );
  }
  lines.push(`  call ended: ${r.end.reason}`);
  return lines.join('\n');
}

/**
 * The engine's end-of-call summaries, for scripted callers to wait on: pass `onCallEnded` to
 * Switchboard and `summaryFor` to runScriptedCall. Each summary is handed out once.
 */
export class SummaryInbox {
  private readonly summaries: CallSummary[] = [];
  private waiters: { pred: (s: CallSummary) => boolean; resolve: (s: CallSummary) => void }[] = [];

  readonly onCallEnded = (s: CallSummary): void => {
    const i = this.waiters.findIndex((w) => w.pred(s));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(s);
    else this.summaries.push(s);
  };

  readonly summaryFor = (pred: (s: CallSummary) => boolean, timeoutMs: number): Promise<CallSummary | undefined> => {
    const found = this.summaries.findIndex(pred);
    if (found >= 0) return Promise.resolve(this.summaries.splice(found, 1)[0]);
    return new Promise((resolve) => {
      const waiter = {
        pred,
        resolve: (s: CallSummary) => {
          clearTimeout(timer);
          resolve(s);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  };
}
