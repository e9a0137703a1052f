/**
 * Call records survive a database outage, a crash and a shutdown, against a real PostgreSQL
 * (a scratch database) reached through a TCP relay the test cuts and restores:
 *  - records written while the database is unreachable stay journalled (the backlog grows,
 *    one warning is logged), and once it is back they are all in PostgreSQL exactly once,
 *    with the same content;
 *  - a crash between COMMIT and the journal checkpoint (a copy of the journal taken before
 *    the flush, replayed afterwards) gives no duplicates;
 *  - close() with a backlog leaves it in the journal, and the next open flushes it.
 * Plus the service's own duties: one record per call from the observer and the summary,
 * listeners told once the record is durable, a repeated end of call ignored.
 */
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/log.js';
import { Journal, openCallRecords, type CallRecordsService } from '../../src/records/index.js';
import { PgCallRecordStore } from '../../src/records/pg-store.js';
import type { CallRecord } from '../../src/records/types.js';
import type { Db } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrate.js';
import { createPgDb } from '../../src/storage/pg.js';
import { createScratchDatabase, type ScratchDatabase } from '../../src/storage/testing.js';
import { callInfo, orderStatusCall, orderStatusSummary, playOrderStatus } from '../support/call-record-fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function recordingLogger(): { log: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      }
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: sink }), lines, text: () => raw.join('\n') };
}

let scratch: ScratchDatabase;
let direct: Db;
let store: PgCallRecordStore;
const adminTarget = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://127.0.0.1:5432');
/** PostgreSQL behind a relay the tests cut (connections dropped, new ones refused) and restore. */
let proxy: TcpProxy;
const dirs: string[] = [];
const dbs: Db[] = [];

beforeAll(async () => {
  scratch = await createScratchDatabase('sbrecout');
  direct = createPgDb({ connectionString: scratch.url });
  await migrate(direct);
  store = new PgCallRecordStore(direct);
  proxy = await TcpProxy.start({ host: adminTarget.hostname || '127.0.0.1', port: Number(adminTarget.port || 5432) });
});

afterAll(async () => {
  await proxy?.close();
  await Promise.allSettled(dbs.map((d) => d.close()));
  await direct?.close();
  await scratch?.drop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sb-records-'));
  dirs.push(d);
  return d;
}

/** A pool that reaches PostgreSQL only through the relay, giving up quickly when it is cut. */
function dbViaProxy(): Db {
  const url = new URL(scratch.url);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  // Refused connections fail at once; the timeouts only matter on a loaded machine, so they are generous.
  const db = createPgDb({ connectionString: url.toString(), connectTimeoutMs: 10_000, queryTimeoutMs: 20_000, max: 3 });
  dbs.push(db);
  return db;
}

async function openService(db: Db, journalDir: string, log: Logger): Promise<CallRecordsService> {
  // A long interval: in these tests the flusher runs on appends, retries and flushNow().
  return openCallRecords({ db, journalDir, log, flushIntervalMs: 60_000, backoff: { initialMs: 20, maxMs: 200 } });
}

/** One whole call through the service: the conversation's events, then the engine's summary. */
async function call(records: CallRecordsService, callId: string): Promise<CallRecord> {
  const info = callInfo(callId);
  playOrderStatus(records.observerFor(info));
  const record = await records.record(orderStatusSummary(info));
  if (!record) throw new Error(`no record for ${callId}`);
  return record;
}

async function rowsFor(prefix: string): Promise<{ call_id: string; n: number }[]> {
  const { rows } = await direct.query<{ call_id: string; n: number }>(
    "SELECT call_id, count(*)::int AS n FROM calls WHERE call_id LIKE $1 || '%' GROUP BY call_id ORDER BY call_id",
    [prefix],
  );
  return rows;
}

/** Journal lines on disk that mention `text` (the backlog really is on disk). */
async function journalLinesWith(dir: string, text: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) {
    if (!/^segment-\d+\.jsonl$/.test(f)) continue;
    n += (await readFile(join(dir, f), 'utf8')).split('\n').filter((l) => l.includes(text)).length;
  }
  return n;
}

/** Flushes until the backlog is empty (the relay is back, the pool reconnects). */
async function drain(records: CallRecordsService): Promise<void> {
  while (records.backlog() > 0) {
    await records.flushNow();
    if (records.backlog() > 0) await new Promise((r) => setTimeout(r, 50));
  }
}

describe('call records through a database outage', () => {
  it('journals records while PostgreSQL is unreachable and stores each exactly once when it returns', async () => {
    const dir = await tempDir();
    const { log, lines, text } = recordingLogger();
    const records = await openService(dbViaProxy(), dir, log);
    try {
      const before = await Promise.all([1, 2, 3].map((i) => call(records, `out-before-${i}`)));
      await drain(records);
      expect(await rowsFor('out-before-')).toHaveLength(3);

      await proxy.cut();
      const mark = lines.length; // what is logged from the outage on
      const during: CallRecord[] = [];
      for (let i = 1; i <= 8; i++) {
        during.push(await call(records, `out-during-${i}`));
        await records.flushNow(); // refused every time: the database is away
        expect(records.backlog()).toBe(i);
      }
      expect(await journalLinesWith(dir, '"callId":"out-during-')).toBe(8);
      expect(await rowsFor('out-during-')).toEqual([]);
      expect(records.stats().flusher).toMatchObject({ outage: true });
      expect(records.stats().flusher.failures).toBeGreaterThanOrEqual(8);
      const outageWarnings = lines.slice(mark).filter((l) => l.msg.startsWith('call records: database unreachable'));
      expect(outageWarnings).toHaveLength(1); // logged once, not per record or per attempt
      expect(outageWarnings[0]!.level).toBe(40);

      await proxy.restore();
      await drain(records);
      const rows = await rowsFor('out-');
      expect(rows).toHaveLength(11);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      for (const r of [...before, ...during]) expect(await store.get(r.callId)).toEqual(r);
      const turns = await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM call_turns WHERE call_id LIKE 'out-%'");
      expect(turns.rows[0]!.n).toBe(11 * 4);
      expect(records.stats().flusher).toMatchObject({ outage: false, duplicates: 0 });
      expect(lines.slice(mark).filter((l) => l.msg === 'call records: database reachable again; draining the journal')).toHaveLength(1);
      const drained = lines.slice(mark).filter((l) => l.msg === 'call records: database backlog drained after the outage');
      expect(drained).toHaveLength(1);
      expect(drained[0]).toMatchObject({ drained: 8 });
      // Personal data stays out of the logs: no transcript, no caller number.
      expect(text()).not.toContain('where is my order');
      expect(text()).not.toContain('5550143');
    } finally {
      await proxy.restore();
      await records.close();
    }
  });

  it('a crash between COMMIT and the checkpoint replays the records without duplicating them', async () => {
    const dir = await tempDir();
    const crashImage = await tempDir();
    const { log } = recordingLogger();
    await proxy.cut();
    const first = await openService(dbViaProxy(), dir, log);
    const recs: CallRecord[] = [];
    try {
      for (let i = 1; i <= 4; i++) recs.push(await call(first, `crash-${i}`));
      expect(first.backlog()).toBe(4);
      // What the disk holds at this moment: journalled, not yet checkpointed.
      await cp(dir, crashImage, { recursive: true });
      await proxy.restore();
      await drain(first);
      expect(await rowsFor('crash-')).toHaveLength(4);
    } finally {
      await proxy.restore();
      await first.close();
    }

    // The "restarted" process finds the journal as it was before the flush.
    const second = await openService(direct, crashImage, log);
    try {
      expect(second.stats().journal).toMatchObject({ checkpoint: 0, backlog: 4 });
      await drain(second);
      expect(second.stats().flusher).toMatchObject({ flushed: 4, duplicates: 4 });
      const rows = await rowsFor('crash-');
      expect(rows.map((r) => r.n)).toEqual([1, 1, 1, 1]);
      for (const r of recs) expect(await store.get(r.callId)).toEqual(r);
      const tools = await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM call_tool_calls WHERE call_id LIKE 'crash-%'");
      expect(tools.rows[0]!.n).toBe(4 * 3);
    } finally {
      await second.close();
    }
  });

  it('close() with a backlog keeps it in the journal, and the next start flushes it', async () => {
    const dir = await tempDir();
    const { log, lines } = recordingLogger();
    await proxy.cut();
    const first = await openService(dbViaProxy(), dir, log);
    const recs = [await call(first, 'restart-1'), await call(first, 'restart-2'), await call(first, 'restart-3')];
    await first.close(); // the last flush attempt fails: the database is still away
    expect(lines.filter((l) => l.msg.startsWith('call records: backlog left in the journal'))).toMatchObject([{ backlog: 3 }]);
    expect(await rowsFor('restart-')).toEqual([]);
    expect(await journalLinesWith(dir, '"callId":"restart-')).toBe(3);

    await proxy.restore();
    const second = await openService(dbViaProxy(), dir, log);
    try {
      expect(lines.filter((l) => l.msg === 'call records: replaying the journal from the last run')).toMatchObject([{ backlog: 3 }]);
      await drain(second);
      expect((await rowsFor('restart-')).map((r) => r.n)).toEqual([1, 1, 1]);
      for (const r of recs) expect(await store.get(r.callId)).toEqual(r);
      expect(await journalLinesWith(dir, '"callId":"restart-')).toBe(0); // flushed segments are deleted
    } finally {
      await second.close();
    }
  });
});

describe('the call-records service', () => {
  it('tells listeners once per call after journalling, ignores a repeated end, and reads back through its reader', async () => {
    const dir = await tempDir();
    const { log, lines } = recordingLogger();
    const records = await openService(direct, dir, log);
    try {
      const heard: CallRecord[] = [];
      records.onRecord((r) => heard.push(r));
      records.onRecord(() => {
        throw new Error('a broken listener');
      });
      const info = callInfo('svc-1');
      playOrderStatus(records.observerFor(info));
      records.callEnded(orderStatusSummary(info));
      records.callEnded(orderStatusSummary(info)); // the same call ending twice
      // A call whose agent never reported anything (the echo agent).
      records.callEnded(orderStatusSummary(callInfo('svc-echo', { agentName: 'echo' }), 'caller_hangup'));
      await records.flushNow(); // waits for the journal appends in flight, then flushes
      await drain(records);
      expect(heard.map((r) => r.callId)).toEqual(['svc-1', 'svc-echo']);
      expect(lines.filter((l) => l.msg === 'call records: a record listener threw')).toHaveLength(2);
      expect(lines.filter((l) => l.msg === 'call records: second end of the same call ignored')).toHaveLength(1);
      expect(records.backlog()).toBe(0);
      expect(await records.reader.get('svc-1')).toEqual(heard[0]);
      expect(await records.reader.get('svc-echo')).toMatchObject({ agent: 'echo', outcome: 'abandoned', turns: [{ turn: 2 }, { turn: 3 }, { turn: 4 }] });
      expect((await records.reader.list({ agent: 'echo' })).map((c) => c.callId)).toEqual(['svc-echo']);
      expect((await rowsFor('svc-')).map((r) => r.n)).toEqual([1, 1]);
    } finally {
      await records.close();
    }
  });

  it('sets a record the database refuses aside in rejected.jsonl and stores the rest of its batch', async () => {
    const dir = await tempDir();
    const { log, lines, text } = recordingLogger();
    // Journalled by an earlier run: the middle one can never be stored.
    const journal = await Journal.open<CallRecord>(dir);
    const good1 = orderStatusCall('reject-1').record;
    const bad = orderStatusCall('reject-2').record;
    bad.durationMs = 3e9; // beyond calls.duration_ms (integer)
    const good3 = orderStatusCall('reject-3').record;
    for (const r of [good1, bad, good3]) await journal.append(r);
    await journal.close();

    const records = await openService(direct, dir, log);
    try {
      await drain(records);
      expect((await rowsFor('reject-')).map((r) => r.call_id)).toEqual(['reject-1', 'reject-3']);
      expect(await store.get('reject-3')).toEqual(good3);
      expect(records.stats().flusher).toMatchObject({ rejected: 1, flushed: 2 });
      const rejected = (await readFile(join(dir, 'rejected.jsonl'), 'utf8')).trim().split('\n');
      expect(rejected).toHaveLength(1);
      expect(JSON.parse(rejected[0]!)).toMatchObject({ value: { callId: 'reject-2' }, reason: expect.stringMatching(/out of range/) as unknown });
      const refused = lines.filter((l) => l.msg === 'call record refused by the database; kept in rejected.jsonl');
      expect(refused).toMatchObject([{ callId: 'reject-2', err: 'SQLSTATE 22003' }]);
      expect(text()).not.toContain('where is my order');
    } finally {
      await records.close();
    }
  });

  it('refuses a second opener of the same journal directory', async () => {
    const dir = await tempDir();
    const { log } = recordingLogger();
    const records = await openService(direct, dir, log);
    try {
      await expect(openService(direct, dir, log)).rejects.toThrow(/already open/);
    } finally {
      await records.close();
    }
  });
});
