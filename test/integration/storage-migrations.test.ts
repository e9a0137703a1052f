/**
 * Migrations and demo seed on both engines: a real PostgreSQL 15 (a fresh scratch database)
 * and embedded PGlite. Applying, re-running (no-op), refusing a changed or unknown migration,
 * rolling back a failed one, serialising concurrent migrators, and the exclusion constraint
 * the booking tools rely on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDb } from '../../src/storage/pg.js';
import { createPgliteDb } from '../../src/storage/pglite.js';
import type { Db } from '../../src/storage/db.js';
import { checksum, loadMigrations, migrate, MigrationChecksumError, MigrationError, type Migration } from '../../src/storage/migrate.js';
import { seedDemoData, DEMO_CUSTOMERS } from '../../src/storage/seed.js';
import { DEFAULT_SERVICES, type Schedule } from '../../src/storage/schedule.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';

const schedule: Schedule = {
  timezone: 'America/New_York',
  hours: { open: '08:00', close: '18:00', slotMinutes: 30, days: ['mon', 'tue', 'wed', 'thu', 'fri'], bays: 1, closedDates: [] },
  services: DEFAULT_SERVICES,
  maxDaysAhead: 60,
  minLeadMinutes: 30,
};

/** Tests that open a fresh PGlite: starting one takes seconds, far longer on a loaded machine. */
const PGLITE_START_MS = 180_000;

function mig(version: number, name: string, sql: string): Migration {
  return { version, name, sql, checksum: checksum(sql) };
}

interface Backend {
  name: string;
  /** A new, empty database. */
  fresh(): Promise<Db>;
  /** A second connection pool on the last fresh database (another instance). */
  another?(): Db;
  cleanup(): Promise<void>;
}

function postgresBackend(): Backend {
  const scratches: ScratchDatabase[] = [];
  const dbs: Db[] = [];
  return {
    name: 'postgres',
    async fresh() {
      const s = await createScratchDatabase('sbmig');
      scratches.push(s);
      const db = createPgDb({ connectionString: s.url });
      dbs.push(db);
      return db;
    },
    another() {
      const db = createPgDb({ connectionString: scratches[scratches.length - 1]!.url });
      dbs.push(db);
      return db;
    },
    async cleanup() {
      await Promise.allSettled(dbs.map((d) => d.close()));
      await Promise.allSettled(scratches.map((s) => s.drop()));
    },
  };
}

function pgliteBackend(): Backend {
  const dbs: Db[] = [];
  return {
    name: 'pglite',
    async fresh() {
      const db = await createPgliteDb();
      dbs.push(db);
      return db;
    },
    async cleanup() {
      await Promise.allSettled(dbs.map((d) => d.close()));
    },
  };
}

describe.each([{ make: postgresBackend }, { make: pgliteBackend }])('migrations', ({ make }) => {
  const backend = make();
  let db: Db;

  beforeAll(async () => {
    db = await backend.fresh();
  });
  afterAll(() => backend.cleanup());

  it(`${backend.name}: applies every migration in order and records its checksum`, async () => {
    const files = await loadMigrations();
    expect(files.map((m) => m.version)).toEqual([...files.map((m) => m.version)].sort((a, b) => a - b));
    expect(files.length).toBeGreaterThanOrEqual(2);

    const first = await migrate(db);
    expect(first.applied.map((m) => m.version)).toEqual(files.map((m) => m.version));
    expect(first.alreadyApplied).toBe(0);

    const { rows } = await db.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(files.map((m) => ({ version: m.version, name: m.name, checksum: m.checksum })));

    const tables = await db.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.rows.map((r) => r.t)).toEqual(
      expect.arrayContaining(['appointments', 'customer_phones', 'customers', 'orders', 'schema_migrations', 'tickets', 'tool_idempotency', 'vehicles']),
    );
  });

  it(`${backend.name}: a second run is a no-op`, async () => {
    const before = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    const again = await migrate(db);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toBe(before.rows[0]!.n);
    const after = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  it(`${backend.name}: the exclusion constraint refuses overlapping booked appointments on one bay`, async () => {
    const c = await db.query<{ id: number }>("INSERT INTO customers (first_name) VALUES ('Ex') RETURNING id");
    const cid = c.rows[0]!.id;
    const ins = (bay: number, from: string, to: string, status = 'booked') =>
      db.query('INSERT INTO appointments (customer_id, service, bay, starts_at, ends_at, status) VALUES ($1, $2, $3, $4, $5, $6)', [cid, 'x', bay, from, to, status]);
    await ins(1, '2031-03-03T10:00:00Z', '2031-03-03T11:00:00Z');
    await expect(ins(1, '2031-03-03T10:30:00Z', '2031-03-03T11:30:00Z')).rejects.toMatchObject({ code: '23P01' });
    // Touching ends are not an overlap ([) ranges); another bay or a cancelled row is fine.
    await ins(1, '2031-03-03T11:00:00Z', '2031-03-03T11:30:00Z');
    await ins(2, '2031-03-03T10:30:00Z', '2031-03-03T11:30:00Z');
    await ins(1, '2031-03-03T10:15:00Z', '2031-03-03T10:45:00Z', 'cancelled');
    await expect(db.query("UPDATE appointments SET status = 'booked' WHERE status = 'cancelled' AND customer_id = $1", [cid])).rejects.toMatchObject({
      code: '23P01',
    });
    await db.query('DELETE FROM appointments WHERE customer_id = $1', [cid]);
    await db.query('DELETE FROM customers WHERE id = $1', [cid]);
  });

  it(`${backend.name}: refuses to run when an applied migration's file changed`, async () => {
    const other = await backend.fresh();
    const m1 = mig(1, 'one', 'CREATE TABLE one (id int);');
    const m2 = mig(2, 'two', 'CREATE TABLE two (id int);');
    await migrate(other, { migrations: [m1, m2] });

    const edited = mig(1, 'one', 'CREATE TABLE one (id int, extra text);');
    const m3 = mig(3, 'three', 'CREATE TABLE three (id int);');
    const err = await migrate(other, { migrations: [edited, m2, m3] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationChecksumError);
    expect((err as MigrationChecksumError).changed).toEqual([{ version: 1, name: 'one', recorded: m1.checksum, current: edited.checksum }]);
    expect((err as Error).message).toMatch(/001_one/);
    // Nothing after the refusal ran.
    const three = await other.query("SELECT to_regclass('public.three') AS t");
    expect(three.rows[0]).toEqual({ t: null });

    // Line endings alone are not a change.
    const crlf = mig(1, 'one', m1.sql.replace(/\n/g, '\r\n'));
    expect(crlf.checksum).toBe(m1.checksum);
   }, PGLITE_START_MS);

  it(`${backend.name}: refuses a database migrated by a newer build, and rolls back a failing migration`, async () => {
    const other = await backend.fresh();
    const m1 = mig(1, 'one', 'CREATE TABLE one (id int);');
    const m2 = mig(2, 'two', 'CREATE TABLE two (id int);');
    await migrate(other, { migrations: [m1, m2] });
    await expect(migrate(other, { migrations: [m1] })).rejects.toThrow(/does not know \(002_two\)/);

    const bad = mig(3, 'bad', 'CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELECT * FROM no_such_table;');
    const err = await migrate(other, { migrations: [m1, m2, bad] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toMatch(/003_bad failed and was rolled back/);
    const half = await other.query("SELECT to_regclass('public.half') AS t");
    expect(half.rows[0]).toEqual({ t: null });
    const recorded = await other.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    expect(recorded.rows[0]!.n).toBe(2);

    // Fixed file: applies.
    const fixed = mig(3, 'bad', 'CREATE TABLE half (id int);');
    expect((await migrate(other, { migrations: [m1, m2, fixed] })).applied.map((m) => m.version)).toEqual([3]);
   }, PGLITE_START_MS);

  it(`${backend.name}: loads the demo data idempotently`, async () => {
    const now = new Date('2030-01-07T14:00:00Z');
    const first = await seedDemoData(db, { schedule, now });
    expect(first.customers).toBe(DEMO_CUSTOMERS.length);
    expect(first.orders).toBe(DEMO_CUSTOMERS.reduce((n, c) => n + c.orders.length, 0));
    expect(first.appointments).toBe(3);
    const count = async () =>
      (
        await db.query<{ c: number; p: number; v: number; o: number; a: number }>(
          `SELECT (SELECT count(*)::int FROM customers) c, (SELECT count(*)::int FROM customer_phones) p, (SELECT count(*)::int FROM vehicles) v,
                  (SELECT count(*)::int FROM orders) o, (SELECT count(*)::int FROM appointments) a`,
        )
      ).rows[0]!;
    const before = await count();
    const second = await seedDemoData(db, { schedule, now: new Date('2030-01-09T14:00:00Z') });
    expect(second).toEqual({ customers: 0, vehicles: 0, orders: 0, appointments: 0 });
    expect(await count()).toEqual(before);
    // Every demo phone is E.164 and the demo appointments sit on the grid inside business hours.
    const appts = await db.query<{ t: string }>(
      "SELECT to_char(starts_at AT TIME ZONE 'America/New_York', 'Dy HH24:MI') AS t FROM appointments ORDER BY starts_at",
    );
    expect(appts.rows.map((r) => r.t)).toEqual(['Tue 09:00', 'Wed 13:00', 'Thu 10:00']);
  });
});

describe('concurrent migrators (postgres)', () => {
  const backend = postgresBackend();
  afterAll(() => backend.cleanup());

  it('serialise on the advisory lock: each migration is applied exactly once', async () => {
    await backend.fresh();
    const instances = Array.from({ length: 4 }, () => backend.another!());
    // A slow first migration widens the window in which unserialised migrators would collide.
    const slow = mig(1, 'slow', 'SELECT pg_sleep(0.3); CREATE TABLE slow (id int);');
    const m2 = mig(2, 'next', 'CREATE TABLE next (id int); INSERT INTO next VALUES (1);');
    const results = await Promise.all(instances.map((db) => migrate(db, { migrations: [slow, m2] })));
    const appliedVersions = results.flatMap((r) => r.applied.map((m) => m.version)).sort();
    expect(appliedVersions).toEqual([1, 2]);
    // Exactly one instance did the work; the others found it done.
    expect(results.filter((r) => r.applied.length === 2)).toHaveLength(1);
    expect(results.filter((r) => r.applied.length === 0 && r.alreadyApplied === 2)).toHaveLength(3);
    const rows = await instances[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM next');
    expect(rows.rows[0]!.n).toBe(1);
    // The lock was released: a later migrator gets it at once.
    const later = await Promise.race([migrate(instances[1]!, { migrations: [slow, m2] }), new Promise((r) => setTimeout(() => r('stuck'), 3000))]);
    expect(later).toEqual({ applied: [], alreadyApplied: 2 });
  });
});
