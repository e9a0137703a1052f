/**
 * Sessions in this process's memory: what Switchboard uses when Redis is unset, and while it
 * is down. Documents are kept as JSON text (a caller's later changes to the object do not leak
 * in, and a read is validated exactly like one from Redis). The TTL is honoured on every read
 * and expired entries are swept periodically, so memory does not grow with ended calls.
 */
import { parseSessionDocument, serializeSessionDocument, type SessionDocument } from './document.js';
import { checkCallId, checkTtlMs, type SessionStore } from './store.js';

export interface MemorySessionStoreOptions {
  ttlMs: number;
  /** How often expired entries are removed (default: a minute, or the TTL if shorter). */
  sweepIntervalMs?: number;
  /** Clock (ms); tests may inject one. */
  now?: () => number;
}

interface Entry {
  json: string;
  expiresAt: number;
}

/** A live entry as the failover store writes it back to Redis. */
export interface MemoryEntry {
  callId: string;
  json: string;
  remainingMs: number;
}

export class MemorySessionStore implements SessionStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: MemorySessionStoreOptions) {
    checkTtlMs(opts.ttlMs);
    this.now = opts.now ?? Date.now;
    this.sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? Math.min(60_000, opts.ttlMs));
    this.sweeper.unref();
  }

  /** Entries not yet expired (expired ones are dropped by the count). */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  async get(callId: string): Promise<SessionDocument | undefined> {
    const json = this.getJson(callId);
    return json === undefined ? undefined : parseSessionDocument(json);
  }

  async put(doc: SessionDocument, ttlMs = this.opts.ttlMs): Promise<void> {
    this.putJson(checkCallId(doc.callId), serializeSessionDocument(doc), checkTtlMs(ttlMs));
  }

  async delete(callId: string): Promise<void> {
    this.entries.delete(checkCallId(callId));
  }

  async touch(callId: string, ttlMs = this.opts.ttlMs): Promise<boolean> {
    checkTtlMs(ttlMs);
    const e = this.live(checkCallId(callId));
    if (!e) return false;
    e.expiresAt = this.now() + ttlMs;
    return true;
  }

  /** The stored JSON text of a live session. */
  getJson(callId: string): string | undefined {
    return this.live(checkCallId(callId))?.json;
  }

  putJson(callId: string, json: string, ttlMs: number): void {
    this.entries.set(callId, { json, expiresAt: this.now() + ttlMs });
  }

  /** Remove `callId` only if it still holds `json` (it was not rewritten meanwhile). */
  deleteIfUnchanged(callId: string, json: string): boolean {
    const e = this.entries.get(callId);
    if (!e || e.json !== json) return false;
    this.entries.delete(callId);
    return true;
  }

  /** Every live entry with the time it has left. */
  liveEntries(): MemoryEntry[] {
    const now = this.now();
    const out: MemoryEntry[] = [];
    for (const [callId, e] of this.entries) if (e.expiresAt > now) out.push({ callId, json: e.json, remainingMs: e.expiresAt - now });
    return out;
  }

  /** Drop expired entries; returns how many went. */
  sweep(): number {
    const now = this.now();
    let n = 0;
    for (const [callId, e] of this.entries) {
      if (e.expiresAt <= now) {
        this.entries.delete(callId);
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private live(callId: string): Entry | undefined {
    const e = this.entries.get(callId);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(callId);
      return undefined;
    }
    return e;
  }
}
