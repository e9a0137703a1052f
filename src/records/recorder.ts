/**
 * Builds one CallRecord per call. During the call a CallRecorder is the conversation's
 * observer (what the caller said, what the agent meant to say and what was actually played,
 * tool calls, failures); at the end the engine's CallSummary (end reason, duration, per-turn
 * latency, barge-ins, variables) completes it. A call with no conversation events (the echo
 * agent, a call that ended before the greeting) still gets a record from the summary alone.
 */
import type { CallInfo } from '../agents/agent.js';
import type { CallSummary } from '../call/call-session.js';
import type { ConversationObserver } from '../conversation/conversation-agent.js';
import type { ToolOutcome } from '../conversation/tool-runner.js';
import { normalizePhone, type PhoneRules } from '../storage/phone.js';
import { classifyOutcome } from './outcome.js';
import { summarizeCall } from './summary.js';
import type { CallRecord, RecordedToolCall, RecordedTurn } from './types.js';

interface AgentPart {
  text: string;
  played: string;
  completed: boolean;
}

interface TurnDraft {
  turn: number;
  callerText: string[];
  agent: AgentPart[];
  toolCalls: RecordedToolCall[];
  errors: { stage: string; error: string }[];
  /** Epoch ms of the first thing that happened in this turn. */
  firstAt: number;
}

export interface RecorderOptions {
  /** Wall clock (tests pin it). */
  now?: () => Date;
  /** How caller numbers are normalised to E.164 (default: NANP). */
  phoneRules?: PhoneRules;
}

/** Names of the built-in call-control tools (their outcomes shape the record, not the summary). */
const TRANSFER_TOOL = 'transfer_call';
const END_CALL_TOOL = 'end_call';
const SET_VARIABLE_TOOL = 'set_variable';

export class CallRecorder implements ConversationObserver {
  private readonly turns = new Map<number, TurnDraft>();
  private readonly now: () => Date;
  private finished: CallRecord | undefined;

  constructor(
    readonly call: CallInfo,
    private readonly opts: RecorderOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Whether the conversation reported anything at all. */
  get empty(): boolean {
    return this.turns.size === 0;
  }

  callerSaid(turn: number, text: string): void {
    this.draft(turn).callerText.push(text);
  }

  agentSaid(turn: number, text: string, played: string, completed: boolean): void {
    this.draft(turn).agent.push({ text, played, completed });
  }

  toolCalled(turn: number, outcome: ToolOutcome): void {
    const d = this.draft(turn);
    const r = outcome.result;
    d.toolCalls.push({
      id: outcome.call.id,
      name: outcome.call.name,
      arguments: outcome.call.arguments ?? null,
      ok: r.ok,
      result: r.ok ? (r.data ?? null) : r.error,
      error: r.ok ? undefined : r.error,
      failure: outcome.failure,
      durationMs: round1(Math.max(0, outcome.durationMs)),
      at: this.now().toISOString(),
    });
  }

  failed(turn: number, stage: 'stt' | 'llm' | 'tts' | 'tools', error: string): void {
    this.draft(turn).errors.push({ stage, error });
  }

  private draft(turn: number): TurnDraft {
    let d = this.turns.get(turn);
    if (!d) {
      d = { turn, callerText: [], agent: [], toolCalls: [], errors: [], firstAt: this.now().getTime() };
      this.turns.set(turn, d);
    }
    return d;
  }

  /** Completes the record with the engine's summary. Later calls return the same record. */
  finish(summary: CallSummary): CallRecord {
    this.finished ??= this.build(summary);
    return this.finished;
  }

  private build(summary: CallSummary): CallRecord {
    const endedAtMs = this.now().getTime();
    const durationMs = Math.max(0, Math.round(summary.durationMs));
    const startedAtMs = endedAtMs - durationMs;
    const info = summary.info;

    const latency = new Map<number, { latencyMs: number; at: number }>();
    for (const t of summary.turns) {
      const wall = performance.timeOrigin + t.callerLastSpeechAt;
      // Only wall-clock times inside the call are believed (the engine's clock is performance.now()).
      latency.set(t.turn, { latencyMs: round1(Math.max(0, t.latencyMs)), at: wall >= startedAtMs - 1000 && wall <= endedAtMs + 1000 ? wall : NaN });
    }
    const bargedTurns = new Set(summary.bargeIns.map((b) => b.turn));
    // Turns the engine measured or saw interrupted exist even when the conversation said nothing about them.
    for (const n of [...latency.keys(), ...bargedTurns]) {
      if (!this.turns.has(n)) {
        const at = latency.get(n)?.at;
        this.turns.set(n, { turn: n, callerText: [], agent: [], toolCalls: [], errors: [], firstAt: at !== undefined && Number.isFinite(at) ? at : endedAtMs });
      }
    }

    const drafts = [...this.turns.values()].sort((a, b) => a.turn - b.turn);
    const turns: RecordedTurn[] = drafts.map((d) => {
      const lat = latency.get(d.turn);
      const startedAt = Math.min(d.firstAt, lat && Number.isFinite(lat.at) ? lat.at : Infinity);
      const agentText = joinNonEmpty(d.agent.map((p) => p.text));
      const agentPlayed = joinNonEmpty(d.agent.map((p) => p.played));
      const barged = bargedTurns.has(d.turn);
      return {
        turn: d.turn,
        callerText: joinNonEmpty(d.callerText),
        agentText,
        agentPlayed: agentText === undefined ? undefined : (agentPlayed ?? ''),
        completed: !barged && d.agent.every((p) => p.completed),
        bargedIn: barged,
        toolCalls: d.toolCalls,
        latencyMs: lat?.latencyMs,
        errors: d.errors,
        startedAt: new Date(Math.max(startedAtMs, Math.min(endedAtMs, startedAt))).toISOString(),
      };
    });

    const tools = turns.flatMap((t) => t.toolCalls);
    const variables = summary.variables ?? variablesFromTools(tools);
    const spoken = turns.filter((t) => t.agentText !== undefined);
    const lastSpoken = spoken.at(-1);
    const lastTurn = turns.filter((t) => t.callerText !== undefined || t.agentText !== undefined || t.toolCalls.length > 0 || t.errors.length > 0).at(-1);
    const firstTurn = turns[0];
    const outcome = classifyOutcome({
      endReason: summary.outcome,
      endCallRequested: tools.some((t) => t.name === END_CALL_TOOL && t.ok),
      lastAgentWords: lastSpoken?.agentPlayed || undefined,
      callerSpoke: turns.some((t) => t.callerText !== undefined && t.callerText !== ''),
      lastTurnFailed: (lastTurn?.errors.length ?? 0) > 0,
      lastTurnAgentInitiated:
        lastTurn !== undefined && lastTurn !== firstTurn && lastTurn.callerText === undefined && lastTurn.toolCalls.length === 0 && lastTurn.errors.length === 0,
    });

    let transfer: CallRecord['transfer'];
    if (summary.outcome === 'transferred') {
      const t = [...tools].reverse().find((x) => x.name === TRANSFER_TOOL && x.ok);
      const args = asObject(t?.arguments);
      const lastError = turns.flatMap((x) => x.errors).at(-1);
      const destination = typeof args.destination === 'string' ? args.destination : 'fallback';
      const reason =
        variables.transfer_reason ||
        (typeof args.reason === 'string' && args.reason) ||
        (t ? 'requested' : lastError ? `${lastError.stage}_failure` : 'unspecified');
      transfer = { destination, reason };
    }

    const record: CallRecord = {
      callId: info.callId,
      channelId: info.channelId,
      callerNumber: normalizePhone(info.caller.number, this.opts.phoneRules) ?? info.caller.number,
      callerName: info.caller.name,
      dialed: info.dialed || undefined,
      agent: info.agentName,
      startedAt: new Date(startedAtMs).toISOString(),
      endedAt: new Date(endedAtMs).toISOString(),
      durationMs,
      outcome,
      endReason: summary.outcome,
      transfer,
      turns,
      summary: '',
      variables,
      bargeIns: summary.bargeIns.length,
    };
    record.summary = summarizeCall(record);
    return record;
  }
}

/** Variables as the set_variable calls left them (when the engine did not report them). */
function variablesFromTools(tools: readonly RecordedToolCall[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tools) {
    if (t.name !== SET_VARIABLE_TOOL || !t.ok) continue;
    const a = asObject(t.arguments);
    if (typeof a.name === 'string' && typeof a.value === 'string') out[a.name] = a.value;
  }
  return out;
}

function asObject(x: unknown): Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}

function joinNonEmpty(parts: readonly string[]): string | undefined {
  const kept = parts.map((p) => p.trim()).filter((p) => p !== '');
  return kept.length > 0 ? kept.join(' ') : undefined;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
