/**
 * The session store Switchboard uses: Redis while it is up, this process's memory while it is
 * down or unset. A Redis error never fails a call: the operation is answered from memory.
 *
 * - Unset: memory only, said once at start (a restart then loses the calls' context).
 * - Outage (a command fails, the connection drops, the first connect fails): logged once per
 *   outage, not per call; counted (outages, fallbacks per operation); redis_up goes to 0.
 *   Sessions written meanwhile live in memory, deletions are remembered.
 * - Return (ioredis reconnected, or a health probe answers while the link was up but commands
 *   had failed): the sessions kept in memory are written back to Redis with the time they had
 *   left, the remembered deletions are applied, and only then is Redis used again, so a
 *   session is never read from a Redis that misses its latest version. Counted (reconnects,
 *   resynced) and logged once.
 */
import type { Logger } from '../log.js';
import { InvalidSessionDocument, type SessionDocument } from './document.js';
import type { MemorySessionStore } from './memory-store.js';
import type { SessionMetrics } from './metrics.js';
import { redactUrl, type RedisSessionStore } from './redis-store.js';
import { checkCallId, type SessionStore } from './store.js';

export interface FailoverSessionStoreOptions {
  /** Absent: sessions are kept in memory only. */
  redis?: RedisSessionStore | undefined;
  /** For log lines (the password is never logged). */
  redisUrl?: string | undefined;
  memory: MemorySessionStore;
  log: Logger;
  metrics: SessionMetrics;
  /** While Redis is connected but commands fail, probe it this often (default 1000 ms). */
  probeIntervalMs?: number;
}

/** connecting: first attempt under way; up: Redis in use; down: memory in use; resyncing: writing memory back. */
export type FailoverState = 'memory-only' | 'connecting' | 'up' | 'down' | 'resyncing';

type Op = 'get' | 'put' | 'delete' | 'touch';

export class FailoverSessionStore implements SessionStore {
  private state: FailoverState;
  private readonly pendingDeletes = new Set<string>();
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly firstSettled: Promise<void>;
  private settleFirst!: () => void;
  private resyncing: Promise<void> | undefined;
  private offState: (() => void) | undefined;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: FailoverSessionStoreOptions) {
    this.log = opts.log.child({ component: 'sessions' });
    this.firstSettled = new Promise<void>((resolve) => (this.settleFirst = resolve));
    opts.metrics.redisUp.set(0);
    const redis = opts.redis;
    if (!redis) {
      this.state = 'memory-only';
      this.settleFirst();
      this.log.info('sessions are kept in this process only (sessions.redisUrl is unset): a restart loses the context of calls in progress');
      return;
    }
    this.state = 'connecting';
    this.offState = redis.onStateChange((s, detail) => {
      if (s === 'up') void this.resync();
      else this.down(detail);
    });
    if (redis.up) void this.resync();
  }

  /** Where sessions go right now. */
  get mode(): FailoverState {
    return this.state;
  }

  /** Sessions written to memory and not (yet) back in Redis. */
  get heldInMemory(): number {
    return this.opts.memory.size;
  }

  /** Resolves once the first connection attempt has settled (Redis in use, or memory after a failure). */
  ready(): Promise<void> {
    return this.firstSettled;
  }

  async get(callId: string): Promise<SessionDocument | undefined> {
    checkCallId(callId);
    const redis = this.opts.redis;
    if (redis && this.state === 'up') {
      try {
        const doc = await redis.get(callId);
        return doc ?? (await this.readMemory(callId));
      } catch (err) {
        if (err instanceof InvalidSessionDocument) return this.invalid(callId, err);
        this.down(err);
      }
    }
    this.fellBack('get');
    return this.readMemory(callId);
  }

  async put(doc: SessionDocument, ttlMs?: number): Promise<void> {
    checkCallId(doc.callId);
    const redis = this.opts.redis;
    this.pendingDeletes.delete(doc.callId);
    if (redis && this.state === 'up') {
      try {
        await redis.put(doc, ttlMs);
        return;
      } catch (err) {
        if (err instanceof InvalidSessionDocument) throw err; // the document's fault, not Redis's
        this.down(err);
      }
    }
    this.fellBack('put');
    await this.opts.memory.put(doc, ttlMs);
  }

  async delete(callId: string): Promise<void> {
    checkCallId(callId);
    await this.opts.memory.delete(callId);
    const redis = this.opts.redis;
    if (!redis) return;
    if (this.state === 'up') {
      try {
        await redis.delete(callId);
        return;
      } catch (err) {
        this.down(err);
      }
    }
    // Applied when Redis is back, so an ended call's session does not linger there.
    this.pendingDeletes.add(callId);
    this.fellBack('delete');
  }

  async touch(callId: string, ttlMs?: number): Promise<boolean> {
    checkCallId(callId);
    const redis = this.opts.redis;
    if (redis && this.state === 'up') {
      try {
        if (await redis.touch(callId, ttlMs)) return true;
        return await this.opts.memory.touch(callId, ttlMs);
      } catch (err) {
        this.down(err);
      }
    }
    this.fellBack('touch');
    return this.opts.memory.touch(callId, ttlMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopProbe();
    this.offState?.();
    this.settleFirst();
    await this.opts.redis?.close();
    await this.opts.memory.close();
  }

  // --- outage and return ---------------------------------------------------------------------

  private async readMemory(callId: string): Promise<SessionDocument | undefined> {
    try {
      return await this.opts.memory.get(callId);
    } catch (err) {
      if (err instanceof InvalidSessionDocument) return this.invalid(callId, err);
      throw err;
    }
  }

  private invalid(callId: string, err: InvalidSessionDocument): undefined {
    this.opts.metrics.invalid.inc();
    this.log.warn({ callId, err: err.message }, 'stored session ignored: it cannot be read');
    return undefined;
  }

  private fellBack(op: Op): void {
    if (this.state !== 'memory-only' && this.state !== 'connecting') this.opts.metrics.fallbacks.inc({ op });
  }

  private down(err: unknown): void {
    if (this.closed || this.state === 'memory-only') return;
    const was = this.state;
    if (was === 'down') return;
    this.state = 'down';
    this.opts.metrics.redisUp.set(0);
    this.settleFirst();
    this.startProbe();
    // A failed write-back is the same outage; only a switch from Redis (or the first attempt) is news.
    if (was === 'up' || was === 'connecting') {
      this.opts.metrics.outages.inc();
      this.log.warn(
        { err: err instanceof Error ? err.message : String(err), redis: this.opts.redisUrl ? redactUrl(this.opts.redisUrl) : undefined },
        'session store: Redis unavailable; sessions are kept in this process until it is back (calls go on)',
      );
    }
  }

  /** Redis answers again: write back what memory holds, apply deletions, then use Redis. */
  private resync(): Promise<void> {
    this.resyncing ??= this.writeBack().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async writeBack(): Promise<void> {
    const redis = this.opts.redis;
    if (!redis || this.closed || this.state === 'up') return;
    const wasOutage = this.state === 'down';
    this.state = 'resyncing';
    let written = 0;
    try {
      // Loop: sessions saved while writing back went to memory and are picked up next round.
      for (;;) {
        const entries = this.opts.memory.liveEntries();
        const deletes = [...this.pendingDeletes];
        if (entries.length === 0 && deletes.length === 0) break;
        for (const e of entries) {
          await redis.putJson(e.callId, e.json, e.remainingMs);
          if (this.opts.memory.deleteIfUnchanged(e.callId, e.json)) written++;
        }
        for (const id of deletes) {
          if (!this.pendingDeletes.has(id)) continue; // saved again meanwhile
          await redis.delete(id);
          this.pendingDeletes.delete(id);
        }
      }
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'writing sessions back to Redis failed; they stay in memory');
      // Still the same outage (or the first attempt failing): down() logs only news.
      this.state = wasOutage ? 'down' : 'connecting';
      this.down(err);
      this.opts.metrics.redisUp.set(0);
      this.startProbe();
      return;
    } finally {
      if (written > 0) this.opts.metrics.resynced.inc(undefined, written);
    }
    if (this.closed) return;
    this.state = 'up';
    this.stopProbe();
    this.opts.metrics.redisUp.set(1);
    this.settleFirst();
    if (wasOutage) {
      this.opts.metrics.reconnects.inc();
      this.log.info({ written }, 'session store: Redis is back; sessions kept in memory were written back');
    } else {
      this.log.info({ redis: this.opts.redisUrl ? redactUrl(this.opts.redisUrl) : undefined }, 'session store: using Redis');
    }
  }

  /** While down with the connection still open (commands timing out), ioredis will not say when it recovers: ask. */
  private startProbe(): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = setInterval(() => {
      const redis = this.opts.redis;
      if (!redis?.up || this.state !== 'down' || this.resyncing) return;
      redis.ping().then(
        () => void this.resync(),
        () => undefined,
      );
    }, this.opts.probeIntervalMs ?? 1000);
    this.probeTimer.unref();
  }

  private stopProbe(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }
}
