/**
 * Versioned schema migrations: migrations/NNN_name.sql, applied in version order, each inside
 * its own transaction together with its row in `schema_migrations` (version, name, sha-256
 * checksum, time). A migration either applies completely and is recorded, or not at all.
 *
 * Safety rules:
 *  - an applied migration whose file has changed (checksum differs) stops everything: the
 *    database no longer matches the code, and a human must decide (MigrationChecksumError);
 *  - a migration recorded in the database but missing from the folder (a newer Switchboard
 *    migrated this database) also stops everything;
 *  - concurrent migrators (several Switchboard instances starting at once) serialise on a
 *    session-level advisory lock: the second waits, then finds nothing left to do.
 *
 * Files are hashed after normalising line endings to \n, so a checkout with CRLF endings does
 * not look like a changed migration.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { Db, DbSession } from './db.js';

/** The repository's migrations folder. */
export const DEFAULT_MIGRATIONS_DIR = resolve(import.meta.dirname, '../../migrations');

/** Advisory lock (two-int form, so it cannot collide with single-bigint application locks). */
const LOCK_NAMESPACE = 0x53574244; // "SWBD"
const LOCK_MIGRATIONS = 1;

const FILE_RE = /^(\d{3,})_([a-z0-9][a-z0-9_]*)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

export interface MigrateResult {
  /** Migrations this run applied, in order. */
  applied: AppliedMigration[];
  /** Already applied before this run. */
  alreadyApplied: number;
}

export class MigrationError extends Error {
  override readonly name: string = 'MigrationError';
}

export class MigrationChecksumError extends MigrationError {
  override readonly name = 'MigrationChecksumError';
  constructor(readonly changed: { version: number; name: string; recorded: string; current: string }[]) {
    super(
      `refusing to migrate: ${changed.length === 1 ? 'an applied migration has' : 'applied migrations have'} changed since ` +
        `${changed.length === 1 ? 'it was' : 'they were'} applied: ` +
        changed.map((c) => `${pad(c.version)}_${c.name} (recorded ${c.recorded.slice(0, 12)}, file ${c.current.slice(0, 12)})`).join(', ') +
        '. Never edit an applied migration: restore the file and add a new migration.',
    );
  }
}

export function checksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n?/g, '\n'), 'utf8').digest('hex');
}

/** Reads and orders the migration files of `dir`; throws on misnamed or duplicate versions. */
export async function loadMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const out: Migration[] = [];
  const seen = new Map<number, string>();
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.sql')) continue;
    const m = FILE_RE.exec(e.name);
    if (!m) throw new MigrationError(`migration file "${e.name}" is not named NNN_name.sql (lowercase letters, digits, underscores)`);
    const version = Number(m[1]);
    const other = seen.get(version);
    if (other) throw new MigrationError(`migrations "${other}" and "${e.name}" have the same version ${version}`);
    seen.set(version, e.name);
    const sql = await readFile(join(dir, e.name), 'utf8');
    out.push({ version, name: m[2]!, sql, checksum: checksum(sql) });
  }
  return out.sort((a, b) => a.version - b.version);
}

export interface MigrateOptions {
  /** Folder of NNN_name.sql files (default: the repository's migrations/). */
  dir?: string;
  /** Migrations to apply instead of reading `dir` (tests). */
  migrations?: readonly Migration[];
  log?: Logger;
}

/** Brings the database up to date. Idempotent: a second run applies nothing. */
export async function migrate(db: Db, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = opts.migrations ? [...opts.migrations].sort((a, b) => a.version - b.version) : await loadMigrations(opts.dir);
  return db.session(async (s) => {
    // Migrations may legitimately run longer than the pool's statement timeout, and the lock
    // wait below must not time out while another instance migrates.
    await s.query('SET statement_timeout = 0');
    await s.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATIONS]);
    try {
      return await migrateLocked(s, migrations, opts.log);
    } finally {
      await s.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATIONS]);
    }
  });
}

async function migrateLocked(s: DbSession, migrations: readonly Migration[], log: Logger | undefined): Promise<MigrateResult> {
  await s.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  const { rows } = await s.query<AppliedMigration>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
  const applied = new Map(rows.map((r) => [r.version, r]));
  const known = new Map(migrations.map((m) => [m.version, m]));

  const unknown = rows.filter((r) => !known.has(r.version));
  if (unknown.length > 0) {
    throw new MigrationError(
      `refusing to migrate: the database has migration${unknown.length === 1 ? '' : 's'} this build does not know ` +
        `(${unknown.map((u) => `${pad(u.version)}_${u.name}`).join(', ')}); a newer Switchboard has migrated it`,
    );
  }
  const changed = migrations
    .filter((m) => applied.has(m.version) && applied.get(m.version)!.checksum !== m.checksum)
    .map((m) => ({ version: m.version, name: m.name, recorded: applied.get(m.version)!.checksum, current: m.checksum }));
  if (changed.length > 0) throw new MigrationChecksumError(changed);

  const done: AppliedMigration[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    const started = performance.now();
    try {
      await s.transaction(async (tx) => {
        await tx.exec(m.sql);
        await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      });
    } catch (err) {
      throw new MigrationError(`migration ${pad(m.version)}_${m.name} failed and was rolled back: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    log?.info({ migration: `${pad(m.version)}_${m.name}`, ms: Math.round(performance.now() - started) }, 'applied migration');
    done.push({ version: m.version, name: m.name, checksum: m.checksum });
  }
  return { applied: done, alreadyApplied: applied.size };
}

function pad(v: number): string {
  return String(v).padStart(3, '0');
}
