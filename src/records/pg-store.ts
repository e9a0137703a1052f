/**
 * Call records in PostgreSQL (or PGlite): the writer the flusher drains the journal into,
 * and the CallRecordReader the HTTP API, `switchboard calls` and the business metrics read.
 *
 * Writes are idempotent by call_id: one transaction inserts the call row with
 * ON CONFLICT (call_id) DO NOTHING and inserts its turns and tool calls only when that row
 * was new. A record written twice (a crash between COMMIT and the journal checkpoint) is
 * stored once.
 */
import type { Db, Queryable, SqlValue } from '../storage/db.js';
import {
  RECORD_OUTCOMES,
  type CallListItem,
  type CallListQuery,
  type CallRecord,
  type CallRecordReader,
  type CallStats,
  type RecordedToolCall,
  type RecordedTurn,
  type RecordOutcome,
} from './types.js';

export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 500;

const ISO_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** A record that cannot be stored as it is (it will never be accepted: set it aside). */
export class InvalidCallRecordError extends Error {
  override readonly name = 'InvalidCallRecordError';
}

/** Bad arguments to list/stats (a caller's mistake, said plainly). */
export class CallQueryError extends Error {
  override readonly name = 'CallQueryError';
}

export type WriteResult = 'inserted' | 'duplicate';

export class PgCallRecordStore implements CallRecordReader {
  private prepared: Promise<void> | undefined;

  /**
   * @param prepare run once before the first query succeeds (the migrations): Switchboard can
   *   start while PostgreSQL is down, records wait in the journal, and this runs when it returns.
   */
  constructor(
    readonly db: Db,
    private readonly prepare?: () => Promise<unknown>,
  ) {}

  /** Resolves once `prepare` has succeeded; a failure is retried by the next call. */
  private ready(): Promise<void> {
    if (!this.prepare) return Promise.resolve();
    this.prepared ??= this.prepare().then(
      () => undefined,
      (err: unknown) => {
        this.prepared = undefined;
        throw err;
      },
    );
    return this.prepared;
  }

  /** Stores one record in one transaction; a record already stored is left as it is. */
  async write(record: CallRecord): Promise<WriteResult> {
    return (await this.writeMany([record]))[0]!;
  }

  /**
   * Stores records in one transaction of three statements (calls, turns, tool calls), so a
   * backlog drains quickly. Records already stored (and repeats within the batch) are left as
   * they are: 'duplicate'. All or nothing: when one record is refused none is stored, and the
   * caller writes them one by one to find it.
   */
  async writeMany(records: readonly CallRecord[]): Promise<WriteResult[]> {
    const clean = records.map((r) => sanitize(r));
    for (const r of clean) checkRecord(r);
    if (clean.length === 0) return [];
    await this.ready();
    const first = new Map<string, CallRecord>();
    for (const r of clean) if (!first.has(r.callId)) first.set(r.callId, r);
    const inserted = await this.db.transaction(async (tx) => {
      const ids = await insertCalls(tx, [...first.values()]);
      const fresh = [...first.values()].filter((r) => ids.has(r.callId));
      await insertTurns(tx, fresh);
      await insertToolCalls(tx, fresh);
      return ids;
    });
    const claimed = new Set<string>();
    return clean.map((r) => {
      if (!inserted.has(r.callId) || claimed.has(r.callId)) return 'duplicate';
      claimed.add(r.callId);
      return 'inserted';
    });
  }

  async get(callId: string): Promise<CallRecord | undefined> {
    await this.ready();
    const { rows } = await this.db.query<CallRow>(`SELECT ${CALL_COLUMNS} FROM calls c WHERE c.call_id = $1`, [callId]);
    const row = rows[0];
    if (!row) return undefined;
    const turns = await this.db.query<TurnRow>(
      `SELECT turn, caller_text, agent_text, agent_played, completed, barged_in, latency_ms, errors,
              to_char(started_at AT TIME ZONE 'UTC', ${ISO_MS}) AS started_at
         FROM call_turns WHERE call_id = $1 ORDER BY turn`,
      [callId],
    );
    const tools = await this.db.query<ToolRow>(
      `SELECT turn, seq, tool_call_id, name, arguments, ok, result, error, failure, duration_ms,
              to_char(at AT TIME ZONE 'UTC', ${ISO_MS}) AS at
         FROM call_tool_calls WHERE call_id = $1 ORDER BY turn, seq`,
      [callId],
    );
    const byTurn = new Map<number, RecordedToolCall[]>();
    for (const t of tools.rows) {
      const list = byTurn.get(t.turn) ?? [];
      list.push({
        id: t.tool_call_id,
        name: t.name,
        arguments: t.arguments,
        ok: t.ok,
        result: t.result,
        error: t.error ?? undefined,
        failure: t.failure ?? undefined,
        durationMs: Number(t.duration_ms),
        at: t.at,
      });
      byTurn.set(t.turn, list);
    }
    const recordTurns: RecordedTurn[] = turns.rows.map((t) => ({
      turn: t.turn,
      callerText: t.caller_text ?? undefined,
      agentText: t.agent_text ?? undefined,
      agentPlayed: t.agent_played ?? undefined,
      completed: t.completed,
      bargedIn: t.barged_in,
      toolCalls: byTurn.get(t.turn) ?? [],
      latencyMs: t.latency_ms === null ? undefined : Number(t.latency_ms),
      errors: t.errors,
      startedAt: t.started_at,
    }));
    return {
      callId: row.call_id,
      channelId: row.channel_id,
      callerNumber: row.caller_number,
      callerName: row.caller_name,
      dialed: row.dialed ?? undefined,
      agent: row.agent,
      startedAt: row.started_at,
      endedAt: row.ended_at,
      durationMs: row.duration_ms,
      outcome: row.outcome,
      endReason: row.end_reason,
      transfer: row.transfer_destination !== null ? { destination: row.transfer_destination, reason: row.transfer_reason ?? '' } : undefined,
      turns: recordTurns,
      summary: row.summary,
      variables: row.variables,
      bargeIns: row.barge_ins,
    };
  }

  /** Newest first; page with `before` = the last row's startedAt. */
  async list(query: CallListQuery = {}): Promise<CallListItem[]> {
    await this.ready();
    const limit = query.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new CallQueryError(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT} (got ${String(query.limit)})`);
    }
    if (query.outcome !== undefined && !RECORD_OUTCOMES.includes(query.outcome)) {
      throw new CallQueryError(`outcome must be one of ${RECORD_OUTCOMES.join(', ')} (got "${String(query.outcome)}")`);
    }
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (sql: (p: string) => string, value: SqlValue): void => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (query.beforeCallId !== undefined && query.before === undefined) throw new CallQueryError('beforeCallId needs before (the same row\'s startedAt)');
    if (query.before !== undefined && query.beforeCallId !== undefined) {
      // Keyset on the list's order (started_at DESC, call_id ASC): nothing skipped at a page edge.
      params.push(isoTime('before', query.before), query.beforeCallId);
      const t = `$${params.length - 1}::timestamptz`;
      const id = `$${params.length}`;
      where.push(`(c.started_at < ${t} OR (c.started_at = ${t} AND c.call_id > ${id}))`);
    } else if (query.before !== undefined) add((p) => `c.started_at < ${p}::timestamptz`, isoTime('before', query.before));
    if (query.since !== undefined) add((p) => `c.started_at >= ${p}::timestamptz`, isoTime('since', query.since));
    if (query.outcome !== undefined) add((p) => `c.outcome = ${p}`, query.outcome);
    if (query.agent !== undefined) add((p) => `c.agent = ${p}`, query.agent);
    if (query.callerNumber !== undefined) add((p) => `c.caller_number = ${p}`, query.callerNumber);
    params.push(limit);
    const { rows } = await this.db.query<ListRow>(
      `SELECT c.call_id, c.caller_number, c.agent, to_char(c.started_at AT TIME ZONE 'UTC', ${ISO_MS}) AS started_at,
              c.duration_ms, c.outcome, c.summary,
              (SELECT count(*)::int FROM call_turns t WHERE t.call_id = c.call_id) AS turns
         FROM calls c
        ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY c.started_at DESC, c.call_id
        LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      callId: r.call_id,
      callerNumber: r.caller_number,
      agent: r.agent,
      startedAt: r.started_at,
      durationMs: r.duration_ms,
      outcome: r.outcome,
      turns: r.turns,
      summary: r.summary,
    }));
  }

  /** Figures over the calls that started in [since, until). */
  async stats(range: { since?: string; until?: string } = {}): Promise<CallStats> {
    await this.ready();
    const since = range.since !== undefined ? isoTime('since', range.since) : null;
    const until = range.until !== undefined ? isoTime('until', range.until) : null;
    const inRange = `($1::timestamptz IS NULL OR c.started_at >= $1::timestamptz) AND ($2::timestamptz IS NULL OR c.started_at < $2::timestamptz)`;
    const p = [since, until];
    const [outcomes, aht, transfers, tools, latency] = await Promise.all([
      this.db.query<{ outcome: RecordOutcome; n: number }>(`SELECT c.outcome, count(*)::int AS n FROM calls c WHERE ${inRange} GROUP BY c.outcome`, p),
      this.db.query<{ avg: number | null }>(`SELECT avg(c.duration_ms)::float8 AS avg FROM calls c WHERE ${inRange}`, p),
      this.db.query<{ reason: string; n: number }>(
        `SELECT coalesce(c.transfer_reason, 'unspecified') AS reason, count(*)::int AS n
           FROM calls c WHERE ${inRange} AND c.outcome = 'transferred' GROUP BY 1`,
        p,
      ),
      this.db.query<{ name: string; calls: number; errors: number }>(
        `SELECT t.name, count(*)::int AS calls, count(*) FILTER (WHERE NOT t.ok)::int AS errors
           FROM call_tool_calls t JOIN calls c ON c.call_id = t.call_id WHERE ${inRange} GROUP BY t.name`,
        p,
      ),
      this.db.query<{ median: number | null }>(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t.latency_ms)::float8 AS median
           FROM call_turns t JOIN calls c ON c.call_id = t.call_id WHERE ${inRange} AND t.latency_ms IS NOT NULL`,
        p,
      ),
    ]);
    const byOutcome = Object.fromEntries(RECORD_OUTCOMES.map((o) => [o, 0])) as Record<RecordOutcome, number>;
    for (const r of outcomes.rows) byOutcome[r.outcome] = r.n;
    const calls = RECORD_OUTCOMES.reduce((s, o) => s + byOutcome[o], 0);
    const toolErrorsByTool: Record<string, number> = {};
    let toolCalls = 0;
    let toolErrors = 0;
    for (const t of tools.rows) {
      toolCalls += t.calls;
      toolErrors += t.errors;
      if (t.errors > 0) toolErrorsByTool[t.name] = t.errors;
    }
    const median = latency.rows[0]?.median;
    return {
      since: since ?? undefined,
      until: until ?? undefined,
      calls,
      byOutcome,
      containmentRate: calls === 0 ? 0 : byOutcome.resolved / calls,
      transfersByReason: Object.fromEntries(transfers.rows.map((r) => [r.reason, r.n])),
      toolCalls,
      toolErrors,
      toolErrorsByTool,
      averageHandleTimeMs: Number(aht.rows[0]?.avg ?? 0),
      medianTurnLatencyMs: median === null || median === undefined ? undefined : Number(median),
    };
  }
}

/** The call rows that are new (ON CONFLICT (call_id) DO NOTHING); returns their ids. */
async function insertCalls(tx: Queryable, records: readonly CallRecord[]): Promise<Set<string>> {
  const rows = records.map((r) => ({
    callId: r.callId,
    channelId: r.channelId,
    callerNumber: r.callerNumber,
    callerName: r.callerName,
    dialed: r.dialed ?? null,
    agent: r.agent,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationMs: Math.round(r.durationMs),
    outcome: r.outcome,
    endReason: r.endReason,
    transferDestination: r.transfer?.destination ?? null,
    transferReason: r.transfer?.reason ?? null,
    summary: r.summary,
    variables: r.variables ?? {},
    bargeIns: r.bargeIns,
  }));
  const { rows: ins } = await tx.query<{ call_id: string }>(
    `INSERT INTO calls (call_id, channel_id, caller_number, caller_name, dialed, agent, started_at, ended_at, duration_ms,
                        outcome, end_reason, transfer_destination, transfer_reason, summary, variables, barge_ins)
     SELECT c."callId", c."channelId", c."callerNumber", c."callerName", c.dialed, c.agent, c."startedAt", c."endedAt", c."durationMs",
            c.outcome, c."endReason", c."transferDestination", c."transferReason", c.summary, c.variables, c."bargeIns"
       FROM jsonb_to_recordset($1::text::jsonb)
         AS c("callId" text, "channelId" text, "callerNumber" text, "callerName" text, dialed text, agent text,
              "startedAt" timestamptz, "endedAt" timestamptz, "durationMs" int, outcome text, "endReason" text,
              "transferDestination" text, "transferReason" text, summary text, variables jsonb, "bargeIns" int)
     ON CONFLICT (call_id) DO NOTHING
     RETURNING call_id`,
    [JSON.stringify(rows)],
  );
  return new Set(ins.map((r) => r.call_id));
}

async function insertTurns(tx: Queryable, records: readonly CallRecord[]): Promise<void> {
  const rows = records.flatMap((r) => r.turns.map(({ toolCalls: _toolCalls, ...t }) => ({ callId: r.callId, ...t })));
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO call_turns (call_id, turn, caller_text, agent_text, agent_played, completed, barged_in, latency_ms, errors, started_at)
     SELECT t."callId", t.turn, t."callerText", t."agentText", t."agentPlayed", t.completed, coalesce(t."bargedIn", false), t."latencyMs",
            coalesce(t.errors, '[]'::jsonb), t."startedAt"
       FROM jsonb_to_recordset($1::text::jsonb)
         AS t("callId" text, turn int, "callerText" text, "agentText" text, "agentPlayed" text, completed boolean, "bargedIn" boolean,
              "latencyMs" float8, errors jsonb, "startedAt" timestamptz)`,
    [JSON.stringify(rows)],
  );
}

async function insertToolCalls(tx: Queryable, records: readonly CallRecord[]): Promise<void> {
  const rows = records.flatMap((r) =>
    r.turns.flatMap((t) =>
      t.toolCalls.map((c, seq) => ({
        callId: r.callId,
        turn: t.turn,
        seq,
        id: c.id,
        name: c.name,
        // Wrapped so that a JSON null or a missing value survive jsonb_to_recordset as themselves.
        arguments: { v: c.arguments ?? null },
        ok: c.ok,
        result: { v: c.result ?? null },
        error: c.error ?? null,
        failure: c.failure ?? null,
        durationMs: c.durationMs,
        at: c.at,
      })),
    ),
  );
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO call_tool_calls (call_id, turn, seq, tool_call_id, name, arguments, ok, result, error, failure, duration_ms, at)
     SELECT t."callId", t.turn, t.seq, t.id, t.name, t.arguments -> 'v', t.ok, t.result -> 'v', t.error, t.failure, t."durationMs", t.at
       FROM jsonb_to_recordset($1::text::jsonb)
         AS t("callId" text, turn int, seq int, id text, name text, arguments jsonb, ok boolean, result jsonb, error text, failure text,
              "durationMs" float8, at timestamptz)`,
    [JSON.stringify(rows)],
  );
}

/** Catches what the database would refuse, with a message that says which field. */
function checkRecord(r: CallRecord): void {
  const problems: string[] = [];
  if (typeof r.callId !== 'string' || r.callId.length === 0 || r.callId.length > 200) problems.push('callId must be 1-200 characters');
  if (!RECORD_OUTCOMES.includes(r.outcome)) problems.push(`outcome "${String(r.outcome)}" is not one of ${RECORD_OUTCOMES.join(', ')}`);
  for (const [k, v] of [
    ['startedAt', r.startedAt],
    ['endedAt', r.endedAt],
  ] as const) {
    if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) problems.push(`${k} is not a time`);
  }
  if (!Array.isArray(r.turns)) problems.push('turns is not a list');
  else {
    const seen = new Set<number>();
    for (const t of r.turns) {
      if (!Number.isInteger(t.turn) || t.turn < 0) problems.push(`turn number ${String(t.turn)} is not a whole number >= 0`);
      if (seen.has(t.turn)) problems.push(`turn ${t.turn} appears twice`);
      seen.add(t.turn);
      if (!Array.isArray(t.toolCalls) || !Array.isArray(t.errors)) problems.push(`turn ${t.turn}: toolCalls/errors must be lists`);
    }
  }
  if (problems.length > 0) throw new InvalidCallRecordError(`call record ${String(r.callId)} cannot be stored: ${problems.join('; ')}`);
}

/**
 * PostgreSQL text and jsonb refuse NUL characters and lone UTF-16 surrogates; whatever a
 * recogniser or a tool produced, the record must still be storable.
 */
export function sanitize<T>(value: T): T {
  if (typeof value === 'string') return cleanString(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => sanitize(v)) as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[cleanString(k)] = sanitize(v);
    return out as T;
  }
  return value;
}

function cleanString(s: string): string {
  return s.replace(/\u0000/g, '').replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function isoTime(name: string, value: string): string {
  const t = Date.parse(value);
  if (typeof value !== 'string' || Number.isNaN(t)) throw new CallQueryError(`${name} must be an ISO 8601 time such as 2025-01-31T12:00:00Z (got "${String(value)}")`);
  return new Date(t).toISOString();
}

const CALL_COLUMNS = `c.call_id, c.channel_id, c.caller_number, c.caller_name, c.dialed, c.agent,
  to_char(c.started_at AT TIME ZONE 'UTC', ${ISO_MS}) AS started_at,
  to_char(c.ended_at AT TIME ZONE 'UTC', ${ISO_MS}) AS ended_at,
  c.duration_ms, c.outcome, c.end_reason, c.transfer_destination, c.transfer_reason, c.summary, c.variables, c.barge_ins`;

interface CallRow {
  call_id: string;
  channel_id: string;
  caller_number: string;
  caller_name: string;
  dialed: string | null;
  agent: string;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  outcome: RecordOutcome;
  end_reason: string;
  transfer_destination: string | null;
  transfer_reason: string | null;
  summary: string;
  variables: Record<string, string>;
  barge_ins: number;
}

interface TurnRow {
  turn: number;
  caller_text: string | null;
  agent_text: string | null;
  agent_played: string | null;
  completed: boolean;
  barged_in: boolean;
  latency_ms: number | null;
  errors: { stage: string; error: string }[];
  started_at: string;
}

interface ToolRow {
  turn: number;
  seq: number;
  tool_call_id: string;
  name: string;
  arguments: unknown;
  ok: boolean;
  result: unknown;
  error: string | null;
  failure: string | null;
  duration_ms: number;
  at: string;
}

interface ListRow {
  call_id: string;
  caller_number: string;
  agent: string;
  started_at: string;
  duration_ms: number;
  outcome: RecordOutcome;
  summary: string;
  turns: number;
}
