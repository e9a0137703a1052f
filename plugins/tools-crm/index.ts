/**
 * tools-crm: business data tools for the voice agent — customers (by caller number with a
 * Redis cache, or by name), orders (status, change of address, cancellation), service
 * appointments (free slots, booking, rescheduling, cancellation) and support tickets.
 *
 * Data lives in PostgreSQL (DATABASE_URL) or, with no database configured, in an embedded
 * PGlite with the demo data loaded, so the whole thing works offline. Migrations are applied
 * at startup. See config.ts for the options, policy.ts for who may see what, tools.ts for
 * the tools.
 */
import { defineToolsPlugin, type ToolDefinition, type ToolsProvider } from '../../src/plugins/api.js';
import type { Logger } from '../../src/log.js';
import { CrmStore } from '../../src/storage/crm.js';
import type { Db } from '../../src/storage/db.js';
import { purgeIdempotency } from '../../src/storage/idempotency.js';
import { migrate } from '../../src/storage/migrate.js';
import { openDb } from '../../src/storage/open.js';
import { withStartupRetry } from '../../src/storage/startup-retry.js';
import { seedDemoData } from '../../src/storage/seed.js';
import { NoCustomerCache, RedisCustomerCache, type CustomerCache } from './cache.js';
import { CrmConfigSchema, toSchedule, type CrmConfig } from './config.js';
import { AccessPolicy } from './policy.js';
import { buildCrmTools } from './tools.js';

export { CrmConfigSchema, type CrmConfig } from './config.js';

/** Stored results of write tools are kept this long (a retry comes within seconds). */
const IDEMPOTENCY_RETENTION_MS = 7 * 24 * 3600_000;
const PURGE_EVERY_MS = 3600_000;

export interface CrmToolkit extends ToolsProvider {
  tools: ToolDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  db: Db;
  store: CrmStore;
  cache: CustomerCache;
  policy: AccessPolicy;
}

export interface CrmToolkitOptions {
  log: Logger;
  /** Relative pglite:<dir> locations resolve against it. */
  configDir?: string;
  /** Use this database instead of opening one (it is closed with the toolkit). */
  db?: Db;
  /** Current time (tests). */
  clock?: () => Date;
}

/** Opens the database, migrates (and seeds), connects the cache and builds the tools. */
export async function createCrmToolkit(config: CrmConfig, opts: CrmToolkitOptions): Promise<CrmToolkit> {
  const log = opts.log;
  const location = config.databaseUrl ?? process.env.DATABASE_URL ?? 'pglite:memory';
  const db = opts.db ?? (await openDb(location, { ...(opts.configDir ? { baseDir: opts.configDir } : {}), log }));
  const schedule = toSchedule(config);
  let cache: CustomerCache | undefined;
  let purgeTimer: NodeJS.Timeout | undefined;
  try {
    if (config.migrate) await withStartupRetry(() => migrate(db, { log }), config.connectRetrySeconds, log, db.description);
    if (config.seedDemoData ?? db.dialect === 'pglite') {
      const seeded = await seedDemoData(db, { schedule, ...(opts.clock ? { now: opts.clock() } : {}) });
      log.info({ ...seeded }, 'demo data present');
    }
    cache = config.cache.redisUrl
      ? new RedisCustomerCache({ url: config.cache.redisUrl, ttlSeconds: config.cache.ttlSeconds, keyPrefix: config.cache.keyPrefix, timeoutMs: config.cache.timeoutMs, log })
      : new NoCustomerCache();
    const store = new CrmStore(db, { schedule, ...(opts.clock ? { clock: opts.clock } : {}) });
    const policy = new AccessPolicy(config.phone, config.staffNumbers);
    const tools = buildCrmTools({ store, cache, policy, log });

    const purge = (): void => {
      purgeIdempotency(db, IDEMPOTENCY_RETENTION_MS).then(
        (n) => n > 0 && log.debug({ deleted: n }, 'purged old tool results'),
        (err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not purge old tool results'),
      );
    };
    purge();
    purgeTimer = setInterval(purge, PURGE_EVERY_MS);
    purgeTimer.unref();
    log.info({ db: db.description, cache: config.cache.redisUrl ? 'redis' : 'none', tools: tools.length }, 'CRM tools ready');

    const usedCache = cache;
    let closed = false;
    return {
      tools,
      db,
      store,
      cache,
      policy,
      close: async () => {
        if (closed) return;
        closed = true;
        clearInterval(purgeTimer);
        await Promise.allSettled([usedCache.close()]);
        await db.close();
      },
    };
  } catch (err) {
    clearInterval(purgeTimer);
    await cache?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}

export default defineToolsPlugin<CrmConfig>({
  manifest: {
    name: 'tools-crm',
    kind: 'tools',
    version: '1.0.0',
    apiVersion: '^1.0.0',
    description: 'Customers, orders, service appointments and tickets in PostgreSQL (or embedded PGlite), with a Redis customer cache',
    configSchema: CrmConfigSchema,
  },
  async create(config, ctx) {
    const toolkit = await createCrmToolkit(config, { log: ctx.log, configDir: ctx.configDir });
    return { tools: toolkit.tools, close: () => toolkit.close() };
  },
});
