/**
 * The two databases every storage test runs against: a scratch database on the real
 * PostgreSQL (see testing.ts) and an embedded in-memory PGlite. Use with `describe.each`.
 */
import type { Db } from './db.js';
import { createPgDb } from './pg.js';
import { createPgliteDb } from './pglite.js';
import { createScratchDatabase } from './testing.js';

export interface OpenedTestDb {
  db: Db;
  /** Closes the connection and drops the scratch database. */
  drop: () => Promise<void>;
}

export interface OpenedTestLocation {
  /** A location string for openDb / a plugin's databaseUrl. */
  location: string;
  drop: () => Promise<void>;
}

export interface TestBackend<T> {
  name: 'postgres' | 'pglite';
  open: () => Promise<T>;
}

/** Open Db connections: PostgreSQL (pool of `max`, default the pool's own) and PGlite. */
export function dbBackends(prefix: string, pool: { max?: number } = {}): TestBackend<OpenedTestDb>[] {
  return [
    {
      name: 'postgres',
      async open() {
        const s = await createScratchDatabase(prefix);
        const db = createPgDb({ connectionString: s.url, ...pool });
        return {
          db,
          drop: async () => {
            await db.close();
            await s.drop();
          },
        };
      },
    },
    {
      name: 'pglite',
      async open() {
        const db = await createPgliteDb();
        return { db, drop: () => db.close() };
      },
    },
  ];
}

/** Locations for code that opens its own database (a tools plugin): a scratch PostgreSQL URL, or pglite:memory. */
export function locationBackends(prefix: string): TestBackend<OpenedTestLocation>[] {
  return [
    {
      name: 'postgres',
      async open() {
        const s = await createScratchDatabase(prefix);
        return { location: s.url, drop: () => s.drop() };
      },
    },
    { name: 'pglite', open: () => Promise.resolve({ location: 'pglite:memory', drop: () => Promise.resolve() }) },
  ];
}
