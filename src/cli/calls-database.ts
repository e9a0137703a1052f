/**
 * `switchboard calls --database URL`: read the call records straight from their database
 * (PostgreSQL, or Switchboard's embedded PGlite directory while Switchboard is stopped),
 * read-only: nothing is migrated or written. Failures become one readable message.
 */
import { existsSync } from 'node:fs';
import { PgCallRecordStore } from '../records/pg-store.js';
import type { CallRecordReader } from '../records/types.js';
import { lockPgliteDir, pgliteHolder } from '../records-runtime.js';
import { isDbUnavailableError, type Db } from '../storage/db.js';
import { describeUrl } from '../storage/pg.js';
import { openDb, parseDbLocation } from '../storage/open.js';

export class RecordsDatabaseError extends Error {
  override readonly name = 'RecordsDatabaseError';
}

function describe(location: string): string {
  const loc = parseDbLocation(location);
  return loc.kind === 'postgres' ? describeUrl(loc.url) : `pglite:${loc.dataDir ?? 'memory'}`;
}

/** Wraps every read so that database failures read as what they are. */
function guarded(reader: CallRecordReader, where: string): CallRecordReader {
  const wrap = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (isDbUnavailableError(err)) throw new RecordsDatabaseError(`the records database ${where} is unreachable: ${message}`);
      if ((err as { code?: string }).code === '42P01' || /relation "calls" does not exist/.test(message)) {
        throw new RecordsDatabaseError(`${where} has no call records (no "calls" table): start Switchboard on it once to create them`);
      }
      if (err instanceof Error && err.name === 'CallQueryError') throw new RecordsDatabaseError(message);
      throw new RecordsDatabaseError(`reading ${where} failed: ${message}`);
    }
  };
  return {
    list: (q) => wrap(() => reader.list(q)),
    get: (id) => wrap(() => reader.get(id)),
    stats: (r) => wrap(() => reader.stats(r)),
  };
}

export async function openRecordsDatabase(location: string): Promise<{ reader: CallRecordReader; close(): Promise<void> }> {
  let loc;
  try {
    loc = parseDbLocation(location);
  } catch (err) {
    throw new RecordsDatabaseError(`--database: ${(err as Error).message}`);
  }
  if (loc.kind === 'pglite') {
    if (!loc.dataDir) throw new RecordsDatabaseError('--database pglite:memory would be a new, empty database: give a postgres:// URL or the pglite:<directory> Switchboard uses');
    if (!existsSync(loc.dataDir)) throw new RecordsDatabaseError(`--database: no embedded database at ${loc.dataDir}`);
    const holder = await pgliteHolder(loc.dataDir);
    if (holder !== undefined) {
      throw new RecordsDatabaseError(
        `the embedded records database ${loc.dataDir} is open in a running Switchboard (process ${holder}); ` +
          'an embedded PGlite directory can be opened by one process at a time. Leave out --database to ask the running ' +
          'Switchboard over its HTTP API, or stop it first.',
      );
    }
  }
  const where = describe(location);
  // Held while reading, so a Switchboard starting meanwhile is told instead of opening it too.
  let unlock: (() => Promise<void>) | undefined;
  let db: Db;
  try {
    if (loc.kind === 'pglite' && loc.dataDir) unlock = await lockPgliteDir(loc.dataDir);
    db = await openDb(location, { queryTimeoutMs: 30_000, statementTimeoutMs: 25_000 });
  } catch (err) {
    await unlock?.();
    throw new RecordsDatabaseError(`cannot open the records database ${where}: ${(err as Error).message}`);
  }
  return {
    reader: guarded(new PgCallRecordStore(db), where),
    close: async () => {
      await db.close();
      await unlock?.();
    },
  };
}
