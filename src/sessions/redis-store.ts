/**
 * Sessions in Redis (ioredis): one string key per call, `<keyPrefix><callId>`, written with
 * SET … PX so every save renews the TTL. A call's context then survives a Switchboard restart.
 *
 * Built to fail fast, never to wait: the connection is opened in the background (the
 * constructor does not block), commands are not queued while disconnected and never retried
 * (a failed command rejects at once; the FailoverSessionStore answers from memory instead), a
 * slow command is abandoned after `timeoutMs`, and ioredis keeps reconnecting with a capped
 * exponential backoff, so the store comes back by itself when Redis does.
 */
import { Redis } from 'ioredis';
import { parseSessionDocument, serializeSessionDocument, type SessionDocument } from './document.js';
import { checkCallId, checkTtlMs, SessionStoreError, type SessionStore } from './store.js';

export interface RedisSessionStoreOptions {
  /** redis://[user:password@]host:port[/db] or rediss://… */
  url: string;
  ttlMs: number;
  keyPrefix: string;
  /** Longest a command may take before it is abandoned (and the store counts as down). */
  timeoutMs: number;
  /** Reconnect backoff: first delay and cap (default 100 ms, 5 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export type RedisLinkState = 'up' | 'down';

/** Delay before reconnect attempt `attempt` (1-based): doubling from `initial`, capped at `max`. */
export function reconnectDelayMs(attempt: number, initial = 100, max = 5000): number {
  return Math.min(max, initial * 2 ** Math.min(20, Math.max(0, attempt - 1)));
}

export class RedisSessionStore implements SessionStore {
  readonly redis: Redis;
  private readonly stateHandlers = new Set<(state: RedisLinkState, detail: string) => void>();
  private firstOutcome: Promise<void>;
  private closed = false;

  constructor(private readonly opts: RedisSessionStoreOptions) {
    if (!/^rediss?:\/\//.test(opts.url)) throw new SessionStoreError(`sessions.redisUrl must be a redis:// or rediss:// URL (got "${redactUrl(opts.url)}")`);
    checkTtlMs(opts.ttlMs);
    const initial = opts.backoffInitialMs ?? 100;
    const max = opts.backoffMaxMs ?? 5000;
    this.redis = new Redis(opts.url, {
      lazyConnect: true,
      keyPrefix: opts.keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.timeoutMs,
      connectTimeout: Math.max(500, opts.timeoutMs * 4),
      retryStrategy: (times) => reconnectDelayMs(times, initial, max),
    });
    let settle!: () => void;
    this.firstOutcome = new Promise<void>((resolve) => (settle = resolve));
    this.redis.on('ready', () => {
      settle();
      this.emit('up', 'connected');
    });
    this.redis.on('error', (err: Error) => {
      settle();
      this.emit('down', err.message);
    });
    this.redis.on('close', () => {
      settle();
      this.emit('down', 'connection closed');
    });
    // Open in the background; failures arrive as 'error' / 'close' and ioredis retries.
    this.redis.connect().catch(() => undefined);
  }

  /** Connected and accepting commands. */
  get up(): boolean {
    return !this.closed && this.redis.status === 'ready';
  }

  /** Called on every link change ('up' after each (re)connect, 'down' on errors and drops). */
  onStateChange(handler: (state: RedisLinkState, detail: string) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Resolves once the first connection attempt has succeeded or failed. */
  ready(): Promise<void> {
    return this.firstOutcome;
  }

  async get(callId: string): Promise<SessionDocument | undefined> {
    const json = await this.redis.get(checkCallId(callId));
    return json === null ? undefined : parseSessionDocument(json);
  }

  async put(doc: SessionDocument, ttlMs = this.opts.ttlMs): Promise<void> {
    await this.putJson(checkCallId(doc.callId), serializeSessionDocument(doc), checkTtlMs(ttlMs));
  }

  async putJson(callId: string, json: string, ttlMs: number): Promise<void> {
    await this.redis.set(callId, json, 'PX', ttlMs);
  }

  async delete(callId: string): Promise<void> {
    await this.redis.del(checkCallId(callId));
  }

  async touch(callId: string, ttlMs = this.opts.ttlMs): Promise<boolean> {
    return (await this.redis.pexpire(checkCallId(callId), checkTtlMs(ttlMs))) === 1;
  }

  /** Round trip to Redis (health probe). */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stateHandlers.clear();
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  private emit(state: RedisLinkState, detail: string): void {
    if (this.closed) return;
    for (const h of this.stateHandlers) h(state, detail);
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
