/**
 * Opens a Db from one location string:
 *   postgres://… or postgresql://…   a real PostgreSQL (node-postgres Pool)
 *   pglite:memory                    embedded PGlite, in memory (gone at exit)
 *   pglite:<directory>               embedded PGlite kept in a directory (relative paths
 *                                    resolve against `baseDir`)
 */
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { createPgDb, type PgDbOptions } from './pg.js';
import { createPgliteDb } from './pglite.js';

export interface OpenDbOptions extends Omit<PgDbOptions, 'connectionString'> {
  /** Relative pglite directories resolve against it (default: the working directory). */
  baseDir?: string;
  log?: Logger;
}

export type DbLocation = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir?: string };

/** Parses a location string; throws a readable error for anything else. */
export function parseDbLocation(location: string, baseDir = process.cwd()): DbLocation {
  const loc = location.trim();
  if (/^postgres(ql)?:\/\//i.test(loc)) return { kind: 'postgres', url: loc };
  if (/^pglite:/i.test(loc)) {
    const rest = loc.slice('pglite:'.length);
    if (rest === '' || rest === 'memory' || rest === '//memory') return { kind: 'pglite' };
    return { kind: 'pglite', dataDir: isAbsolute(rest) ? rest : resolve(baseDir, rest) };
  }
  throw new Error(`unsupported database location "${loc.replace(/\/\/[^@/]*@/, '//***@')}": use postgres://…, pglite:memory or pglite:<directory>`);
}

export async function openDb(location: string, opts: OpenDbOptions = {}): Promise<Db> {
  const parsed = parseDbLocation(location, opts.baseDir);
  if (parsed.kind === 'postgres') return createPgDb({ ...opts, connectionString: parsed.url });
  return createPgliteDb(parsed.dataDir ? { dataDir: parsed.dataDir } : {});
}
