/**
 * The one database interface the rest of Switchboard talks to. Two implementations run the
 * same SQL and the same migrations:
 *  - `createPgDb` — a node-postgres Pool on a real PostgreSQL (DATABASE_URL);
 *  - `createPgliteDb` — PGlite, PostgreSQL compiled to WASM, embedded in the process
 *    (in memory or in a data directory), for the local sandbox and tests.
 *
 * Parameterised queries only: `query(text, params)` sends `$1..$n` placeholders with the
 * values out of band; nothing a caller says is ever concatenated into SQL. `exec(script)` runs
 * a multi-statement script without parameters and exists for migrations.
 *
 * Portable SQL notes (both engines must return the same JS shapes):
 *  - cast counts and other int8 results to `::int` (pg returns int8 as a string, PGlite as a number);
 *  - return dates and times as text (`to_char`) rather than `date` (pg parses it in local time);
 *  - pass JSON as text and cast with `$1::text::jsonb`.
 */

/** A value bound to a `$n` placeholder. */
export type SqlValue = string | number | boolean | null | Date | readonly string[] | readonly number[];

export interface QueryResult<R> {
  rows: R[];
  /** Rows returned or affected. */
  rowCount: number;
}

export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly SqlValue[]): Promise<QueryResult<R>>;
  /** Runs a script of one or more statements without parameters (migrations, fixtures). */
  exec(script: string): Promise<void>;
}

/** A connection held for a while: session-level settings and advisory locks live on it. */
export interface DbSession extends Queryable {
  /** BEGIN … COMMIT on this session; ROLLBACK when `fn` throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

export type DbDialect = 'postgres' | 'pglite';

export interface Db extends Queryable {
  readonly dialect: DbDialect;
  /** Where it points, without credentials (for logs). */
  readonly description: string;
  /** Runs `fn` in one transaction on one connection; ROLLBACK when `fn` throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Holds one connection for the duration of `fn` (advisory locks, SET). Queries in a session
   * have no client-side query timeout: the migrator waits on a lock there.
   */
  session<T>(fn: (s: DbSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** SQLSTATE classes and codes that mean "the database is not reachable or going away". */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400', '58000', '58030', '08000', '08001', '08003', '08004', '08006', '08007', '08P01']);
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);
const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
  /not queryable/i,
  /pglite is closed/i,
  /database is closed/i,
];

/**
 * True when `err` says the database cannot be reached right now (refused, dropped, timed
 * out, shutting down, too many connections): retrying later may succeed. Programming errors
 * (bad SQL, constraint violations) are not.
 */
export function isDbUnavailableError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== 'object') break;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNO.has(code) || code.startsWith('08')) return true;
    }
    if (e instanceof AggregateError && e.errors.some((x) => isDbUnavailableError(x))) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return true;
  }
  return false;
}

/** SQLSTATE of a database error, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Name of the constraint a database error names (unique, exclusion, check...), if any. */
export function constraintName(err: unknown): string | undefined {
  const c = typeof err === 'object' && err !== null ? (err as { constraint?: unknown }).constraint : undefined;
  return typeof c === 'string' ? c : undefined;
}

/** Serialization failure or deadlock: the whole transaction may simply be run again. */
export function isRetryableTransactionError(err: unknown): boolean {
  const s = sqlState(err);
  return s === '40001' || s === '40P01';
}

/**
 * Runs `fn` in a transaction, running it again (up to `attempts` times) when PostgreSQL
 * aborts it with a serialization failure or deadlock.
 */
export async function transactionWithRetry<T>(db: Pick<Db, 'transaction'>, fn: (tx: Queryable) => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (i >= attempts || !isRetryableTransactionError(err)) throw err;
    }
  }
}
