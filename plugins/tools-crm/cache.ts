/**
 * First tier of the customer lookup: customer profiles in Redis, keyed by E.164 phone number.
 * PostgreSQL is the second tier and the truth; the cache is only ever an optimisation.
 *
 * - Redis unset: NoCustomerCache, every lookup goes to PostgreSQL.
 * - Redis down or slow: every cache operation fails fast (no offline queue, a short command
 *   timeout, skipped entirely while disconnected), the lookup goes to PostgreSQL, the outage is
 *   logged once, and ioredis keeps reconnecting in the background.
 * - Writes invalidate the affected customer's keys after commit. A stale value must not be
 *   written back by a lookup that read PostgreSQL before the write committed, so invalidation
 *   leaves a short-lived tombstone per key and population is a Lua script that refuses to
 *   set a key with a tombstone.
 * - An invalidation that cannot reach Redis is remembered; those numbers bypass the cache
 *   until Redis is back and the deletions have gone through.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../../src/log.js';
import type { CustomerProfile } from '../../src/storage/crm.js';

export interface CacheStats {
  hits: number;
  misses: number;
  /** Operations skipped or failed because Redis was unavailable. */
  bypassed: number;
}

export interface CustomerCache {
  get(phone: string): Promise<CustomerProfile | undefined>;
  /** Stores the profile under each of its phone numbers. */
  set(profile: CustomerProfile): Promise<void>;
  invalidate(phones: readonly string[]): Promise<void>;
  readonly stats: CacheStats;
  close(): Promise<void>;
}

/** No cache configured. */
export class NoCustomerCache implements CustomerCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  async get(): Promise<undefined> {
    this.stats.misses++;
    return undefined;
  }
  async set(): Promise<void> {}
  async invalidate(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Sets KEYS[1] = ARGV[1] with TTL ARGV[2] seconds unless the tombstone KEYS[2] exists. */
const SET_UNLESS_TOMBSTONE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1`;

/** Longer than any database read can take, so a read racing a write cannot repopulate. */
const TOMBSTONE_MS = 15_000;
/** Bump when CustomerProfile changes shape: old entries are then simply never read. */
const FORMAT = 'v1';

export interface RedisCacheOptions {
  url: string;
  ttlSeconds: number;
  keyPrefix: string;
  timeoutMs: number;
  log: Logger;
}

export class RedisCustomerCache implements CustomerCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  private readonly redis: Redis;
  private degraded = false;
  private closed = false;
  /** Numbers whose invalidation has not reached Redis yet: never served from the cache. */
  private readonly pending = new Set<string>();

  constructor(private readonly opts: RedisCacheOptions) {
    this.redis = new Redis(opts.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(500, opts.timeoutMs * 4),
      commandTimeout: opts.timeoutMs,
      // Keep reconnecting in the background, at most every 5 s.
      retryStrategy: (times) => Math.min(times * 250, 5000),
    });
    this.redis.on('error', (err: Error) => this.degrade(err));
    // A dropped connection is an outage even before a reconnect attempt fails.
    this.redis.on('close', () => this.degrade(new Error('connection to Redis closed')));
    this.redis.on('ready', () => {
      void this.recover();
    });
    this.redis.connect().catch((err: unknown) => this.degrade(err));
  }

  private key(phone: string): string {
    // The hash tag keeps a key and its tombstone in one slot (Redis Cluster).
    return `${this.opts.keyPrefix}${FORMAT}:customer:{${phone}}`;
  }

  private tombstone(phone: string): string {
    return `${this.opts.keyPrefix}${FORMAT}:customer-tomb:{${phone}}`;
  }

  /** Connected and serving (false while Redis is unreachable). */
  get connected(): boolean {
    return this.redis.status === 'ready' && !this.degraded;
  }

  /** Invalidations waiting for Redis to come back. */
  get pendingInvalidations(): number {
    return this.pending.size;
  }

  private get usable(): boolean {
    return !this.closed && this.redis.status === 'ready';
  }

  private degrade(err: unknown): void {
    if (this.closed) return;
    if (!this.degraded) {
      this.degraded = true;
      this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'customer cache (Redis) unavailable: lookups go to PostgreSQL until it is back');
    }
  }

  /** Connected (again): flush invalidations that could not be sent, then serve from the cache. */
  private async recover(): Promise<void> {
    if (await this.flushPending()) this.healthy();
  }

  /** Sends every pending invalidation; true when none is left. */
  private async flushPending(): Promise<boolean> {
    const phones = [...this.pending];
    if (phones.length === 0) return true;
    try {
      await this.sendInvalidation(phones);
    } catch (err) {
      this.degrade(err);
      return false;
    }
    for (const p of phones) this.pending.delete(p);
    return this.pending.size === 0;
  }

  /** A command went through: if an outage was logged, say it is over. */
  private healthy(): void {
    if (this.degraded && this.pending.size === 0 && !this.closed) {
      this.degraded = false;
      this.opts.log.info('customer cache (Redis) is back');
    }
  }

  async get(phone: string): Promise<CustomerProfile | undefined> {
    if (!this.usable || this.pending.has(phone)) {
      this.stats.bypassed++;
      return undefined;
    }
    try {
      const raw = await this.redis.get(this.key(phone));
      this.healthy();
      if (raw === null) {
        this.stats.misses++;
        return undefined;
      }
      this.stats.hits++;
      return JSON.parse(raw) as CustomerProfile;
    } catch (err) {
      this.stats.bypassed++;
      this.degrade(err);
      return undefined;
    }
  }

  async set(profile: CustomerProfile): Promise<void> {
    if (!this.usable) return;
    const json = JSON.stringify(profile);
    try {
      await Promise.all(
        profile.phones
          .filter((p) => !this.pending.has(p))
          .map((p) => this.redis.eval(SET_UNLESS_TOMBSTONE, 2, this.key(p), this.tombstone(p), json, String(this.opts.ttlSeconds))),
      );
      this.healthy();
    } catch (err) {
      this.degrade(err);
    }
  }

  async invalidate(phones: readonly string[]): Promise<void> {
    // Pending until Redis confirms the deletion: until then these numbers bypass the cache.
    for (const p of phones) this.pending.add(p);
    if (!this.usable) return;
    if (await this.flushPending()) this.healthy();
  }

  private async sendInvalidation(phones: readonly string[]): Promise<void> {
    const multi = this.redis.multi();
    for (const p of phones) {
      multi.del(this.key(p));
      multi.set(this.tombstone(p), '1', 'PX', TOMBSTONE_MS);
    }
    const results = await multi.exec();
    const failed = results?.find(([e]) => e);
    if (!results || failed) throw failed?.[0] ?? new Error('invalidation transaction was discarded');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.redis.status === 'ready') {
      await this.redis.quit().catch(() => this.redis.disconnect());
    } else {
      this.redis.disconnect();
    }
  }
}
