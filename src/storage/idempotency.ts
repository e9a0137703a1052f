/**
 * Idempotent writes. A tool call carries a key that is stable per (call, turn, tool call); the
 * write and the row recording its result commit in one transaction, so a retried call with
 * the same key finds the row and gets the stored result back without acting a second time.
 *
 * Two executions of the same key at once (a retry racing the original) serialise on a
 * transaction-level advisory lock derived from the key: the second one waits, then finds the
 * first one's row. A write that fails (the transaction rolls back) leaves no row, so a retry
 * runs it again — nothing was done the first time.
 */
import { createHash } from 'node:crypto';
import { transactionWithRetry, type Db, type Queryable } from './db.js';

export interface IdempotentRequest {
  key: string;
  tool: string;
  /** The tool's arguments: the same key with different arguments is refused. */
  args: unknown;
}

export interface IdempotentOutcome<T> {
  result: T;
  /** True when the result is the stored one of an earlier execution. */
  replayed: boolean;
}

export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  constructor(readonly key: string) {
    super(`idempotency key "${key}" was already used for a different request`);
  }
}

/**
 * Runs `fn` in a transaction exactly once per `req.key`. `fn`'s result must be JSON; it is
 * returned as JSON would store it, so the first answer and a replay are identical.
 */
export async function runIdempotent<T>(db: Pick<Db, 'transaction'>, req: IdempotentRequest, fn: (tx: Queryable) => Promise<T>): Promise<IdempotentOutcome<T>> {
  const hash = requestHash(req.tool, req.args);
  return transactionWithRetry(db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [req.key]);
    const prior = await tx.query<{ tool: string; request_hash: string; result: T }>(
      'SELECT tool, request_hash, result FROM tool_idempotency WHERE key = $1',
      [req.key],
    );
    const row = prior.rows[0];
    if (row) {
      if (row.tool !== req.tool || row.request_hash !== hash) throw new IdempotencyConflictError(req.key);
      return { result: row.result, replayed: true };
    }
    const json = JSON.stringify(await fn(tx)) ?? 'null';
    await tx.query('INSERT INTO tool_idempotency (key, tool, request_hash, result) VALUES ($1, $2, $3, $4::text::jsonb)', [req.key, req.tool, hash, json]);
    return { result: JSON.parse(json) as T, replayed: false };
  });
}

/** Deletes stored results older than `maxAgeMs` (a retry comes within seconds). Returns the count. */
export async function purgeIdempotency(db: Queryable, maxAgeMs: number, now: Date = new Date()): Promise<number> {
  const res = await db.query('DELETE FROM tool_idempotency WHERE created_at < $1::timestamptz', [new Date(now.getTime() - maxAgeMs)]);
  return res.rowCount;
}

export function requestHash(tool: string, args: unknown): string {
  return createHash('sha256').update(`${tool}\n${canonicalJson(args)}`).digest('hex');
}

/** JSON with object keys sorted, so equal values hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
