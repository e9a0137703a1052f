/**
 * Db on a real PostgreSQL through a node-postgres Pool.
 *
 * Timeouts are chosen so a tool sees a failure (and can say so) before the conversation
 * loop's own tool timeout: connecting gives up after `connectTimeoutMs`, the server cancels
 * statements after `statementTimeoutMs`, and the client stops waiting for an answer after
 * `queryTimeoutMs` (a network partition the server cannot notice).
 */
import pg from 'pg';
import type { Logger } from '../log.js';
import type { Db, DbSession, QueryResult, Queryable, SqlValue } from './db.js';

export interface PgDbOptions {
  /** postgres://user:password@host:port/database?... */
  connectionString: string;
  /** Pool size (default 10). */
  max?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  queryTimeoutMs?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  log?: Logger;
}

export function createPgDb(opts: PgDbOptions): Db {
  const queryTimeoutMs = opts.queryTimeoutMs ?? 6000;
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs ?? 5000,
    application_name: opts.applicationName ?? 'switchboard',
    keepAlive: true,
  });
  // An idle client losing its connection emits 'error' on the pool: without a listener that
  // would crash the process. The pool discards the client; the next query reconnects.
  pool.on('error', (err) => {
    opts.log?.warn({ err: err.message }, 'postgres connection lost while idle');
  });

  const run = async <R extends object>(
    client: pg.Pool | pg.PoolClient,
    text: string,
    params: readonly SqlValue[] | undefined,
    timeout: number | undefined,
  ): Promise<QueryResult<R>> => {
    const config: pg.QueryConfig<unknown[]> & { query_timeout?: number } = { text, values: params ? [...params] : [] };
    if (timeout) config.query_timeout = timeout;
    const res = await client.query<R & pg.QueryResultRow>(config);
    return { rows: res.rows, rowCount: res.rowCount ?? res.rows.length };
  };

  const queryable = (client: pg.PoolClient, timeout: number | undefined): Queryable => ({
    query: <R extends object>(text: string, params?: readonly SqlValue[]) => run<R>(client, text, params, timeout),
    exec: async (script: string) => {
      await client.query(script);
    },
  });

  /** BEGIN/COMMIT on a checked-out client. A failed ROLLBACK means the connection is unusable. */
  const inTransaction = async <T>(client: pg.PoolClient, timeout: number | undefined, fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    await run(client, 'BEGIN', undefined, timeout);
    try {
      const result = await fn(queryable(client, timeout));
      await run(client, 'COMMIT', undefined, timeout);
      return result;
    } catch (err) {
      try {
        await run(client, 'ROLLBACK', undefined, timeout);
      } catch (rollbackErr) {
        throw new BrokenConnectionError(err, rollbackErr);
      }
      throw err;
    }
  };

  const withClient = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      if (err instanceof BrokenConnectionError) {
        broken = err;
        throw err.original instanceof Error ? err.original : err;
      }
      throw err;
    } finally {
      // release(err) destroys the client instead of returning it to the pool.
      client.release(broken);
    }
  };

  return {
    dialect: 'postgres',
    description: describeUrl(opts.connectionString),
    query: <R extends object>(text: string, params?: readonly SqlValue[]) => run<R>(pool, text, params, queryTimeoutMs),
    exec: async (script: string) => {
      await pool.query(script);
    },
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => withClient((client) => inTransaction(client, queryTimeoutMs, fn)),
    session: <T>(fn: (s: DbSession) => Promise<T>) =>
      withClient(async (client) => {
        const session: DbSession = {
          ...queryable(client, undefined),
          transaction: <U>(inner: (tx: Queryable) => Promise<U>) => inTransaction(client, undefined, inner),
        };
        let result: T;
        try {
          result = await fn(session);
        } catch (err) {
          await cleanSession(client, err);
          throw err;
        }
        await cleanSession(client, undefined);
        return result;
      }),
    close: async () => {
      if (!pool.ended) await pool.end();
    },
  };
}

/**
 * Whatever a session changed (settings, advisory locks) must not leak to the next user of the
 * pooled connection; if it cannot be cleaned, the connection is destroyed instead.
 */
async function cleanSession(client: pg.PoolClient, original: unknown): Promise<void> {
  try {
    await client.query('SELECT pg_advisory_unlock_all()');
    await client.query('RESET ALL');
  } catch (cleanupErr) {
    throw new BrokenConnectionError(original ?? cleanupErr, cleanupErr);
  }
}

class BrokenConnectionError extends Error {
  constructor(
    readonly original: unknown,
    rollbackError: unknown,
  ) {
    super(`rollback failed: ${rollbackError instanceof Error ? rollbackError.message : String(rollbackError)}`, { cause: original });
  }
}

/** host:port/database of a connection URL, never the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `postgres://${u.hostname || 'localhost'}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'postgres://(unparseable url)';
  }
}
