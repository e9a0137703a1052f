/**
 * Call records: what Switchboard keeps of every call for the people who review them. This file
 * is the contract between the recorder (which builds a record from the conversation and the
 * call engine), the journal + PostgreSQL store (which keep it), and the readers (the HTTP API,
 * `switchboard calls`, the business metrics).
 */

/** How a call ended, from the business's point of view. */
export type RecordOutcome = 'resolved' | 'transferred' | 'abandoned' | 'failed';
export const RECORD_OUTCOMES: readonly RecordOutcome[] = ['resolved', 'transferred', 'abandoned', 'failed'];

export interface RecordedToolCall {
  /** Tool call id as the model gave it. */
  id: string;
  name: string;
  /** Arguments as the model sent them (personal data is kept here: records are access-controlled). */
  arguments: unknown;
  ok: boolean;
  /** The tool's result (ok) or its error text (not ok). */
  result: unknown;
  error?: string | undefined;
  /** refused (not allowed) | invalid (arguments) | timeout | error | aborted, when not ok. */
  failure?: string | undefined;
  durationMs: number;
  /** ISO time the call finished. */
  at: string;
}

export interface RecordedTurn {
  /**
   * The call engine's turn number: the greeting is the first turn (1), then one per caller
   * turn and per agent-initiated turn (a re-prompt). Numbers are unique within a call.
   */
  turn: number;
  /** Final transcript of what the caller said this turn (absent for agent-initiated turns). */
  callerText?: string | undefined;
  /** What the agent meant to say this turn (all sentences, in order). */
  agentText?: string | undefined;
  /** What the caller actually heard: shorter than agentText when barge-in cut it. */
  agentPlayed?: string | undefined;
  /** False when barge-in (or hang-up) cut the agent's speech this turn. */
  completed: boolean;
  bargedIn: boolean;
  toolCalls: RecordedToolCall[];
  /** Caller's last speech packet -> agent's first audio packet, on the wire (ms). */
  latencyMs?: number | undefined;
  /** Failures this turn: stage (stt, llm, tts, tools) and message. */
  errors: { stage: string; error: string }[];
  /** ISO time the turn started. */
  startedAt: string;
}

export interface CallRecord {
  /** Switchboard's call id (unique per call; also the journal's idempotency key). */
  callId: string;
  channelId: string;
  /** Caller's number as the network presented it (E.164 where it could be normalised). */
  callerNumber: string;
  callerName: string;
  dialed?: string | undefined;
  agent: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: RecordOutcome;
  /** The engine's own reason (caller_hangup, agent_hangup, transferred, failed, shutdown, ...). */
  endReason: string;
  /** For transfers: destination name (an allowlisted target) and why. */
  transfer?: { destination: string; reason: string } | undefined;
  turns: RecordedTurn[];
  /** A short human-readable summary of the call, written at its end. */
  summary: string;
  /** Call variables at the end of the call (set_variable, SB_*). */
  variables: Record<string, string>;
  bargeIns: number;
}

/** One row of `calls list` / GET /api/calls. */
export interface CallListItem {
  callId: string;
  callerNumber: string;
  agent: string;
  startedAt: string;
  durationMs: number;
  outcome: RecordOutcome;
  turns: number;
  summary: string;
}

export interface CallListQuery {
  limit?: number;
  /** Only calls that started before this ISO time (paging: pass the last row's startedAt). */
  before?: string;
  /**
   * With `before`: the last row's callId. Calls that started at exactly `before` and come after
   * it in the list's order are included too, so a page boundary never skips calls that started
   * in the same millisecond.
   */
  beforeCallId?: string;
  since?: string;
  outcome?: RecordOutcome;
  agent?: string;
  callerNumber?: string;
}

export interface CallStats {
  since?: string | undefined;
  until?: string | undefined;
  calls: number;
  byOutcome: Record<RecordOutcome, number>;
  /** resolved / calls (0 when no calls): resolved without a human. */
  containmentRate: number;
  transfersByReason: Record<string, number>;
  toolCalls: number;
  toolErrors: number;
  toolErrorsByTool: Record<string, number>;
  /** Mean call duration (ms). */
  averageHandleTimeMs: number;
  /** Median per-turn latency over the calls' turns (ms), when any were measured. */
  medianTurnLatencyMs?: number | undefined;
}

/** Reading side of the records store (the HTTP API and `switchboard calls` use this). */
export interface CallRecordReader {
  list(query?: CallListQuery): Promise<CallListItem[]>;
  get(callId: string): Promise<CallRecord | undefined>;
  stats(range?: { since?: string; until?: string }): Promise<CallStats>;
}

/**
 * The call-records service Switchboard runs (src/records/index.ts `openCallRecords`): the
 * recorder side feeds it from the conversation and the call engine, the journal keeps every
 * finished record durable before anything else, and a flusher drains the journal to PostgreSQL.
 */
export interface CallRecords {
  /** Per-call conversation observer (pass as `observerFor` to the conversation agents). */
  observerFor(call: import('../agents/agent.js').CallInfo): import('../conversation/conversation-agent.js').ConversationObserver;
  /** The engine's end-of-call summary (pass as `onCallEnded`): completes and journals the record. */
  callEnded(summary: import('../call/call-session.js').CallSummary): void;
  /** Called with each record once it is durable in the journal (business metrics subscribe here). */
  onRecord(listener: (record: CallRecord) => void): void;
  readonly reader: CallRecordReader;
  /** Records journalled but not yet in PostgreSQL. */
  backlog(): number;
  /** Try to drain the journal now (resolves when the backlog is empty or the database refused). */
  flushNow(): Promise<void>;
  /** Stop the flusher after a last flush attempt; what is left stays in the journal for next start. */
  close(): Promise<void>;
}
