/**
 * Query parameters of the call-records API, checked strictly: an unknown parameter, a repeated
 * one or a bad value is a 400 that names the parameter and says what is allowed (never
 * silently ignored, never echoing the value back: it may be a phone number).
 */
import { RECORD_OUTCOMES, type CallListQuery, type RecordOutcome } from '../records/types.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** An error with the HTTP status to answer with; `message` is shown to the client. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const AGENT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;
const CALLER = /^[+0-9A-Za-z*#._@-]{1,64}$/;
/** Call ids are Asterisk channel ids (e.g. "1712345678.42"); anything else cannot exist. */
export const CALL_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** An ISO 8601 date or date-time, normalised to an ISO UTC string; throws naming `name`. */
export function parseIsoTime(value: string, name: string): string {
  const ms = ISO_TIME.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new ApiError(400, `${name} must be an ISO 8601 date or time, e.g. 2025-01-31 or 2025-01-31T09:00:00Z`);
  return new Date(ms).toISOString();
}

export function parseLimit(value: string, name = 'limit'): number {
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw new ApiError(400, `${name} must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
  return n;
}

export function parseOutcome(value: string, name = 'outcome'): RecordOutcome {
  if (!(RECORD_OUTCOMES as readonly string[]).includes(value)) throw new ApiError(400, `${name} must be one of ${RECORD_OUTCOMES.join(', ')}`);
  return value as RecordOutcome;
}

export function parseAgent(value: string, name = 'agent'): string {
  if (!AGENT_NAME.test(value)) throw new ApiError(400, `${name} must be an agent name (letters, digits, "-" and "_")`);
  return value;
}

/** A page cursor's call id (the last row's callId); only meaningful with `before`. */
export function parseCallCursor(value: string, before: string | undefined, name = 'before_call'): string {
  if (before === undefined) throw new ApiError(400, `${name} needs before (the same row's startedAt)`);
  if (value.length === 0 || value.length > 200 || /[\u0000-\u001f\u007f]/.test(value)) throw new ApiError(400, `${name} must be a call id (1 to 200 printable characters)`);
  return value;
}

export function parseCaller(value: string, name = 'caller'): string {
  if (!CALLER.test(value)) throw new ApiError(400, `${name} must be a caller number (up to 64 of: digits, letters, + * # . _ @ -)`);
  return value;
}

/** One value per allowed parameter; unknown or repeated parameters are errors. */
function single(params: URLSearchParams, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of params) {
    if (!allowed.includes(key)) {
      throw new ApiError(400, `unknown query parameter "${key.slice(0, 40)}"; allowed: ${allowed.join(', ')}`);
    }
    if (out.has(key)) throw new ApiError(400, `query parameter "${key}" given more than once`);
    if (value === '') throw new ApiError(400, `query parameter "${key}" is empty`);
    out.set(key, value);
  }
  return out;
}

export const LIST_PARAMS = ['limit', 'before', 'before_call', 'since', 'outcome', 'agent', 'caller'] as const;
export const STATS_PARAMS = ['since', 'until'] as const;

/** GET /api/calls parameters → the reader's query (limit defaults to DEFAULT_PAGE_SIZE). */
export function parseListQuery(params: URLSearchParams): CallListQuery & { limit: number } {
  const p = single(params, LIST_PARAMS);
  const q: CallListQuery & { limit: number } = { limit: DEFAULT_PAGE_SIZE };
  const limit = p.get('limit');
  if (limit !== undefined) q.limit = parseLimit(limit);
  const before = p.get('before');
  if (before !== undefined) q.before = parseIsoTime(before, 'before');
  const beforeCall = p.get('before_call');
  if (beforeCall !== undefined) q.beforeCallId = parseCallCursor(beforeCall, before, 'before_call');
  const since = p.get('since');
  if (since !== undefined) q.since = parseIsoTime(since, 'since');
  const outcome = p.get('outcome');
  if (outcome !== undefined) q.outcome = parseOutcome(outcome);
  const agent = p.get('agent');
  if (agent !== undefined) q.agent = parseAgent(agent);
  const caller = p.get('caller');
  if (caller !== undefined) q.callerNumber = parseCaller(caller);
  if (q.since !== undefined && q.before !== undefined && q.since >= q.before) throw new ApiError(400, 'since must be earlier than before');
  return q;
}

/** GET /api/calls/stats parameters. */
export function parseStatsRange(params: URLSearchParams): { since?: string; until?: string } {
  const p = single(params, STATS_PARAMS);
  const range: { since?: string; until?: string } = {};
  const since = p.get('since');
  if (since !== undefined) range.since = parseIsoTime(since, 'since');
  const until = p.get('until');
  if (until !== undefined) range.until = parseIsoTime(until, 'until');
  if (range.since !== undefined && range.until !== undefined && range.since >= range.until) throw new ApiError(400, 'since must be earlier than until');
  return range;
}
