/**
 * Call records in a running Switchboard (startFromConfig): where they live, the database
 * opened and migrated, the records service opened, the business metrics registered, the
 * HTTP API handler with its bearer token, and the recorder's hooks composed with the ones the
 * caller passes (the demo and tests watch the same calls).
 *
 * Where records live:
 *   database  records.databaseUrl, else $DATABASE_URL, else an embedded PostgreSQL (PGlite) in
 *             <state dir>/records
 *   journal   records.journalDir, else <state dir>/journal
 * The state dir is .switchboard/ in the checkout (SWITCHBOARD_STATE_DIR moves it), beside the
 * sandbox PBX credentials and the generated API token. Relative paths in the config resolve
 * against the config file's folder.
 *
 * An embedded PGlite directory can be open in one process only: it is locked with
 * `<dir>.lock` (the owner's pid) while Switchboard runs, and `switchboard calls --database`
 * reports who holds it instead of opening it a second time.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import type { CallInfo } from './agents/agent.js';
import { createApiHandler, type ApiHandler } from './api/handler.js';
import { ensureApiToken, apiTokenPath } from './api/token.js';
import type { CallSummary } from './call/call-session.js';
import type { RecordsConfigSchema } from './config/schema.js';
import type { ConversationObserver } from './conversation/conversation-agent.js';
import type { Logger } from './log.js';
import type { MetricsRegistry } from './metrics/registry.js';
import { stateDirectory } from './pbx/paths.js';
import { isAlive } from './pbx/proc.js';
import { createBusinessMetrics } from './records/business-metrics.js';
import { openCallRecords } from './records/index.js';
import type { CallRecords } from './records/types.js';
import { isDbUnavailableError, type Db } from './storage/db.js';
import { migrate } from './storage/migrate.js';
import { openDb, parseDbLocation } from './storage/open.js';
import type { z } from 'zod';

export type RecordsConfig = z.infer<typeof RecordsConfigSchema>;

type Env = Readonly<Record<string, string | undefined>>;

export interface RecordsLocations {
  /** postgres://… or pglite:<absolute dir> or pglite:memory. */
  databaseUrl: string;
  journalDir: string;
}

/** Where the records of this config live (see the file comment for the defaults). */
export function recordsLocations(cfg: Pick<RecordsConfig, 'databaseUrl' | 'journalDir'>, opts: { configDir: string; env?: Env; stateDir?: string }): RecordsLocations {
  const env = opts.env ?? process.env;
  const stateDir = opts.stateDir ?? stateDirectory(env);
  const raw = cfg.databaseUrl ?? (env.DATABASE_URL ? env.DATABASE_URL : `pglite:${join(stateDir, 'records')}`);
  const loc = parseDbLocation(raw, opts.configDir);
  const databaseUrl = loc.kind === 'postgres' ? loc.url : loc.dataDir ? `pglite:${loc.dataDir}` : 'pglite:memory';
  const journalDir = cfg.journalDir ? (isAbsolute(cfg.journalDir) ? cfg.journalDir : resolve(opts.configDir, cfg.journalDir)) : join(stateDir, 'journal');
  return { databaseUrl, journalDir };
}

// --- the embedded database's lock -------------------------------------------------------

function lockPath(dataDir: string): string {
  return join(dirname(dataDir), `${basename(dataDir)}.lock`);
}

/** Directories this process holds (a lock file with our pid that is not here is a previous incarnation's). */
const heldHere = new Set<string>();

/** The live process holding an embedded database directory, if any. */
export async function pgliteHolder(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath(dataDir), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  // Our own pid: ours if we hold it; otherwise left by an earlier process that had our pid
  // (a container restarted as pid 1).
  if (pid === process.pid) return heldHere.has(resolve(dataDir)) ? pid : undefined;
  return isAlive(pid) ? pid : undefined;
}

/** Takes the directory's lock (a stale one, whose process is gone, is taken over); returns its release. */
export async function lockPgliteDir(dataDir: string): Promise<() => Promise<void>> {
  const path = lockPath(dataDir);
  const key = resolve(dataDir);
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      heldHere.add(key);
      return async () => {
        heldHere.delete(key);
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`cannot lock the records database: the folder ${dirname(path)} does not exist`, { cause: err });
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const holder = await pgliteHolder(dataDir);
    if (holder !== undefined) {
      throw new Error(
        `the embedded records database ${dataDir} is in use by process ${holder} (another Switchboard?): ` +
          'an embedded PGlite directory can be opened by one process at a time. Stop that process, or give this one ' +
          'its own records.databaseUrl (a PostgreSQL URL, or another pglite:<directory>).',
      );
    }
    await rm(path, { force: true });
  }
}

// --- hooks -------------------------------------------------------------------------------

type ObserverFor = (call: CallInfo) => ConversationObserver | undefined;

/** One observer that tells every observer each event; a throwing observer does not stop the others. */
export function composeObservers(...sources: (ObserverFor | undefined)[]): ObserverFor | undefined {
  const list = sources.filter((s): s is ObserverFor => s !== undefined);
  if (list.length <= 1) return list[0];
  return (call) => {
    const observers = list.map((s) => s(call)).filter((o): o is ConversationObserver => o !== undefined);
    if (observers.length <= 1) return observers[0];
    const each =
      <K extends keyof ConversationObserver>(k: K) =>
      (...args: Parameters<ConversationObserver[K]>): void => {
        for (const o of observers) {
          try {
            (o[k] as (...a: Parameters<ConversationObserver[K]>) => void)(...args);
          } catch {
            // An observer's bug must not break the conversation or the other observers.
          }
        }
      };
    return { callerSaid: each('callerSaid'), agentSaid: each('agentSaid'), toolCalled: each('toolCalled'), failed: each('failed') };
  };
}

/** Calls every end-of-call hook, in order; one throwing does not stop the others. */
export function composeCallEnded(...hooks: (((s: CallSummary) => void) | undefined)[]): ((s: CallSummary) => void) | undefined {
  const list = hooks.filter((h): h is (s: CallSummary) => void => h !== undefined);
  if (list.length <= 1) return list[0];
  return (summary) => {
    let first: Error | undefined;
    for (const h of list) {
      try {
        h(summary);
      } catch (err) {
        first ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (first !== undefined) throw first;
  };
}

// --- start -------------------------------------------------------------------------------

export interface RecordsRuntime {
  /** The records service (undefined when records.enabled is false). */
  records: CallRecords | undefined;
  locations: RecordsLocations | undefined;
  /** The /api/ handler (undefined when the HTTP server is off). */
  api: ApiHandler | undefined;
  observerFor: ObserverFor | undefined;
  onCallEnded: ((s: CallSummary) => void) | undefined;
  /** Flush what can be flushed and let go of the database and the lock. */
  close(): Promise<void>;
}

export interface StartRecordsOptions {
  config: RecordsConfig;
  configDir: string;
  log: Logger;
  registry: MetricsRegistry;
  /** The HTTP server will run (the API and its token are only set up then). */
  http: boolean;
  /** server.http.apiToken (or a test's token); absent: the generated token file. */
  apiToken?: string | undefined;
  /** Test overrides of the locations. */
  override?: { databaseUrl?: string; journalDir?: string };
  env?: Env;
  stateDir?: string;
}

export async function startRecords(opts: StartRecordsOptions): Promise<RecordsRuntime> {
  const log = opts.log.child({ component: 'records' });
  const releases: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const r of releases.splice(0).reverse()) {
      try {
        await r();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'closing call records');
      }
    }
  };
  try {
    let records: CallRecords | undefined;
    let locations: RecordsLocations | undefined;
    if (opts.config.enabled) {
      const env = opts.env ?? process.env;
      locations = recordsLocations({ ...opts.config, ...opts.override }, { configDir: opts.configDir, env, ...(opts.stateDir ? { stateDir: opts.stateDir } : {}) });
      const where = parseDbLocation(locations.databaseUrl);
      if (where.kind === 'pglite' && where.dataDir) {
        const { mkdir } = await import('node:fs/promises');
        await mkdir(dirname(where.dataDir), { recursive: true, mode: 0o700 });
        releases.push(await lockPgliteDir(where.dataDir));
      }
      const db: Db = await openDb(locations.databaseUrl, { log });
      releases.push(() => db.close());
      // A database that is down must not stop Switchboard taking calls: records wait in the
      // journal, and the migrations run before the first write once it is back. Anything else
      // (a changed migration, bad credentials) is a start-up error.
      const migrateOnce = (): Promise<unknown> => migrate(db, { log });
      try {
        await migrateOnce();
      } catch (err) {
        if (!isDbUnavailableError(err)) throw err;
        log.warn({ database: db.description, err: err instanceof Error ? err.message : String(err) }, 'call records database unavailable: records are journalled until it returns');
      }
      const journalDir = locations.journalDir;
      const opened = await openCallRecords({ db, journalDir, log, flushIntervalMs: opts.config.flushIntervalMs, prepare: migrateOnce }).catch((err: unknown) => {
        if (err instanceof Error && /in use by process/.test(err.message)) {
          throw new Error(`${err.message} (another Switchboard?): one journal per Switchboard; give this one its own records.journalDir`, { cause: err });
        }
        throw err;
      });
      records = opened;
      releases.push(() => opened.close());
      createBusinessMetrics(opts.registry, opened);
      log.info({ database: db.description, journal: locations.journalDir, backlog: opened.backlog() }, 'call records on');
    } else {
      log.info('call records off (records.enabled: false)');
    }

    let api: ApiHandler | undefined;
    if (opts.http) {
      const path = apiTokenPath(opts.stateDir ?? stateDirectory(opts.env ?? process.env));
      const token = await ensureApiToken(opts.apiToken, path);
      if (token.generated) log.info({ tokenFile: path }, 'generated the HTTP API token (mode 0600); `switchboard calls` reads it from there');
      else log.info({ tokenFrom: token.source }, 'HTTP API token');
      api = createApiHandler({ reader: records?.reader, token: token.token, log });
    }

    const rec = records;
    return {
      records,
      locations,
      api,
      observerFor: rec ? (call) => rec.observerFor(call) : undefined,
      onCallEnded: rec ? (summary) => rec.callEnded(summary) : undefined,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
