/**
 * A short, deterministic, human-readable summary of a finished call, written from the record
 * itself (no model): what the caller wanted (the scenario's `intent` variable, else their
 * first words), which business tools the agent used and what they answered, how the call
 * ended, its length. For example:
 *
 *   Caller asked about order status; the agent used get_order_status (order 30552, out for
 *   delivery) and closed the call after 3 turns (41 s). Resolved.
 */
import type { CallRecord, RecordedToolCall, RecordOutcome } from './types.js';

/** Call-control tools: they show in how the call ended, not in the list of what the agent did. */
const CONTROL_TOOLS = new Set(['transfer_call', 'end_call', 'set_variable', 'get_variable']);
const MAX_TOOLS_LISTED = 3;
const MAX_QUOTE = 60;

const OUTCOME_WORD: Record<RecordOutcome, string> = {
  resolved: 'Resolved.',
  transferred: 'Transferred.',
  abandoned: 'Abandoned.',
  failed: 'Failed.',
};

export function summarizeCall(r: Pick<CallRecord, 'turns' | 'variables' | 'outcome' | 'endReason' | 'transfer' | 'durationMs' | 'bargeIns'>): string {
  const tools = r.turns.flatMap((t) => t.toolCalls).filter((t) => !CONTROL_TOOLS.has(t.name));
  const end = ending(r);
  const did =
    tools.length > 0
      ? `the agent used ${listTools(tools)} and ${end.agentDid ?? end.clause}`
      : end.agentDid
        ? `the agent ${end.agentDid}`
        : end.clause;
  const turns = `${r.turns.length} turn${r.turns.length === 1 ? '' : 's'}`;
  const extras = [formatDuration(r.durationMs), ...(r.bargeIns > 0 ? [`${r.bargeIns} barge-in${r.bargeIns === 1 ? '' : 's'}`] : [])];
  return `${opening(r)}; ${did} after ${turns} (${extras.join(', ')}). ${OUTCOME_WORD[r.outcome]}`;
}

function opening(r: Pick<CallRecord, 'turns' | 'variables'>): string {
  const intent = r.variables.intent?.trim();
  if (intent) return `Caller asked about ${intent.replace(/[_-]+/g, ' ')}`;
  const first = r.turns.find((t) => t.callerText)?.callerText;
  if (first) return `Caller said "${truncate(first, MAX_QUOTE)}"`;
  return 'Caller said nothing';
}

/** How the call ended: what the agent did (when it ended the call) or a whole clause. */
function ending(r: Pick<CallRecord, 'turns' | 'outcome' | 'endReason' | 'transfer'>): { agentDid?: string; clause: string } {
  switch (r.outcome) {
    case 'resolved':
      return r.endReason === 'caller_hangup' ? { clause: "the caller hung up after the agent's closing" } : { agentDid: 'closed the call', clause: '' };
    case 'transferred':
      return { clause: r.transfer ? `the call was transferred to ${r.transfer.destination} (${r.transfer.reason})` : 'the call was transferred' };
    case 'abandoned':
      return { clause: r.endReason === 'caller_hangup' ? 'the caller hung up' : 'the caller went silent and the agent hung up' };
    case 'failed': {
      const err = r.turns.flatMap((t) => t.errors).at(-1);
      if (err) return { clause: `the call failed (${err.stage}: ${truncate(err.error, MAX_QUOTE)})` };
      return { clause: r.endReason === 'shutdown' ? 'Switchboard shut down during the call' : 'the call failed' };
    }
  }
}

function listTools(tools: readonly RecordedToolCall[]): string {
  const shown = tools.slice(0, MAX_TOOLS_LISTED).map((t) => `${t.name} (${describeResult(t)})`);
  const more = tools.length - shown.length;
  if (more > 0) shown.push(`${more} more tool call${more === 1 ? '' : 's'}`);
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}`;
}

/** "order 30552, out for delivery" / "not found" / "failed: timeout". */
export function describeResult(t: RecordedToolCall): string {
  if (!t.ok) return `failed: ${t.failure && t.failure !== 'error' ? t.failure : truncate(t.error ?? String(t.result), MAX_QUOTE)}`;
  const data = t.result;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return typeof data === 'string' || typeof data === 'number' ? truncate(String(data), MAX_QUOTE) : 'ok';
  }
  const o = data as Record<string, unknown>;
  if (o.found === false) return 'not found';
  const parts: string[] = [];
  const idKey = Object.keys(o).find((k) => /^[a-z]+_id$/.test(k) && k !== 'customer_id' && (typeof o[k] === 'number' || typeof o[k] === 'string'));
  if (idKey) parts.push(`${idKey.slice(0, -3)} ${String(o[idKey])}`);
  if (typeof o.status === 'string') parts.push(o.status.replace(/_/g, ' '));
  return parts.length > 0 ? truncate(parts.join(', '), MAX_QUOTE) : 'ok';
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
}

function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  // At a word boundary when there is one in the second half.
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.-]+$/, '')}…`;
}
