/**
 * Db on PGlite: PostgreSQL compiled to WASM, running inside this process, in memory or in a
 * data directory. Used when no DATABASE_URL is configured (the local sandbox) and in tests.
 *
 * PGlite is a single backend: its own mutex serialises queries and transactions, so a plain
 * query never runs inside another caller's open transaction. btree_gist is loaded so the
 * schema's exclusion constraints are the same as on a real server.
 */
import { PGlite } from '@electric-sql/pglite';
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist';
import type { Db, DbSession, QueryResult, Queryable, SqlValue } from './db.js';

export interface PgliteDbOptions {
  /** Directory to keep the database in; in memory when absent. */
  dataDir?: string;
}

export async function createPgliteDb(opts: PgliteDbOptions = {}): Promise<Db> {
  const pglite = await PGlite.create({
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    extensions: { btree_gist },
  });

  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    query: async <R extends object>(text: string, params?: readonly SqlValue[]): Promise<QueryResult<R>> => {
      const res = await q.query<R>(text, params ? [...params] : []);
      return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
    },
    exec: async (script: string) => {
      await q.exec(script);
    },
  });

  const top = wrap(pglite);
  const transaction = <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => pglite.transaction((tx) => fn(wrap(tx)));

  return {
    dialect: 'pglite',
    description: opts.dataDir ? `pglite:${opts.dataDir}` : 'pglite:memory',
    ...top,
    transaction,
    // One backend: the session is the database itself. Advisory locks taken in it are
    // released by the caller (the migrator) as on a real server.
    session: <T>(fn: (s: DbSession) => Promise<T>) => fn({ ...top, transaction }),
    close: async () => {
      if (!pglite.closed) await pglite.close();
    },
  };
}
