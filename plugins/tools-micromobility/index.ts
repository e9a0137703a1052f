/**
 * tools-micromobility: the business tools of a bike- and scooter-sharing support line (seed
 * 000): the caller's active trip, a vehicle's status and position against parking areas and red
 * zones, ending a trip on the rider's behalf (with the geofence re-check that catches delayed
 * geodata, waiving the extra minutes), a remote restart of a vehicle's lock, and support
 * tickets linked to the trip.
 *
 * Data lives in PostgreSQL (DATABASE_URL) or, with no database configured, in an embedded
 * PGlite with the demo fleet loaded, so it works offline. Migrations are applied at startup.
 * See config.ts for the options and tools.ts for the tools and who may do what.
 */
import { defineToolsPlugin, type ToolDefinition, type ToolsProvider } from '../../src/plugins/api.js';
import type { Logger } from '../../src/log.js';
import type { Db } from '../../src/storage/db.js';
import { purgeIdempotency } from '../../src/storage/idempotency.js';
import { migrate } from '../../src/storage/migrate.js';
import { MicromobilityStore } from '../../src/storage/micromobility.js';
import { seedMicromobilityDemo } from '../../src/storage/micromobility-seed.js';
import { openDb } from '../../src/storage/open.js';
import { withStartupRetry } from '../../src/storage/startup-retry.js';
import { MicromobilityConfigSchema, type MicromobilityConfig } from './config.js';
import { buildMicromobilityTools } from './tools.js';

export { MicromobilityConfigSchema, type MicromobilityConfig } from './config.js';
export { moneyWords, parseVehicleCode } from './tools.js';

/** Stored results of write tools are kept this long (a retry comes within seconds). */
const IDEMPOTENCY_RETENTION_MS = 7 * 24 * 3600_000;
const PURGE_EVERY_MS = 3600_000;

export interface MicromobilityToolkit extends ToolsProvider {
  tools: ToolDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  db: Db;
  store: MicromobilityStore;
}

export interface MicromobilityToolkitOptions {
  log: Logger;
  /** Relative pglite:<dir> locations resolve against it. */
  configDir?: string;
  /** Use this database instead of opening one (it is closed with the toolkit). */
  db?: Db;
  /** Current time (tests). */
  clock?: () => Date;
}

/** Opens the database, migrates (and seeds the demo fleet) and builds the tools. */
export async function createMicromobilityToolkit(config: MicromobilityConfig, opts: MicromobilityToolkitOptions): Promise<MicromobilityToolkit> {
  const log = opts.log;
  const location = config.databaseUrl ?? process.env.DATABASE_URL ?? 'pglite:memory';
  const db = opts.db ?? (await openDb(location, { ...(opts.configDir ? { baseDir: opts.configDir } : {}), log }));
  let purgeTimer: NodeJS.Timeout | undefined;
  try {
    if (config.migrate) await withStartupRetry(() => migrate(db, { log }), config.connectRetrySeconds, log, db.description);
    if (config.seedDemoData ?? db.dialect === 'pglite') {
      const seeded = await seedMicromobilityDemo(db, { transitMs: config.demoTransitMs ?? Math.floor(config.geofenceRecheckMs * 0.4), ...(opts.clock ? { now: opts.clock() } : {}) });
      log.info({ ...seeded }, 'micromobility demo data present');
    }
    const store = new MicromobilityStore(db, opts.clock ? { clock: opts.clock } : {});
    const excluded = new Set<string>(config.exclude);
    const tools = buildMicromobilityTools({ store, phone: config.phone, geofenceRecheckMs: config.geofenceRecheckMs, restarts: config.restarts }).filter(
      (t) => !excluded.has(t.name),
    );

    const purge = (): void => {
      purgeIdempotency(db, IDEMPOTENCY_RETENTION_MS).then(
        (n) => n > 0 && log.debug({ deleted: n }, 'purged old tool results'),
        (err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not purge old tool results'),
      );
    };
    purge();
    purgeTimer = setInterval(purge, PURGE_EVERY_MS);
    purgeTimer.unref();
    log.info({ db: db.description, tools: tools.map((t) => t.name), geofenceRecheckMs: config.geofenceRecheckMs }, 'micromobility tools ready');

    let closed = false;
    return {
      tools,
      db,
      store,
      close: async () => {
        if (closed) return;
        closed = true;
        clearInterval(purgeTimer);
        await db.close();
      },
    };
  } catch (err) {
    clearInterval(purgeTimer);
    await db.close().catch(() => undefined);
    throw err;
  }
}

export default defineToolsPlugin<MicromobilityConfig>({
  manifest: {
    name: 'tools-micromobility',
    kind: 'tools',
    version: '1.0.0',
    apiVersion: '^1.0.0',
    description: 'Bike and scooter sharing support: active trip, vehicle status and geofence, end trip (with the red-zone re-check), remote restart, tickets',
    configSchema: MicromobilityConfigSchema,
  },
  async create(config, ctx) {
    const toolkit = await createMicromobilityToolkit(config, { log: ctx.log, configDir: ctx.configDir });
    return { tools: toolkit.tools, close: () => toolkit.close() };
  },
});
