/**
 * The session store contract: one JSON document per call, keyed by the call id, kept for a
 * time to live that every write renews. Implementations: MemorySessionStore (in-process),
 * RedisSessionStore (survives a restart) and FailoverSessionStore (Redis while it is up, memory
 * while it is down or unset).
 */
import type { SessionDocument } from './document.js';

export interface SessionStore {
  /** The call's session, or undefined when there is none (never stored, deleted or expired). */
  get(callId: string): Promise<SessionDocument | undefined>;
  /** Store (replace) the document under its callId; the TTL starts again (default: the store's). */
  put(doc: SessionDocument, ttlMs?: number): Promise<void>;
  delete(callId: string): Promise<void>;
  /** Give the session a full TTL again without rewriting it; false when there is no such session. */
  touch(callId: string, ttlMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export class SessionStoreError extends Error {
  override readonly name = 'SessionStoreError';
}

const MAX_CALL_ID_LENGTH = 200;

/** Call ids become store keys: non-empty, bounded, printable, no whitespace. Throws SessionStoreError. */
export function checkCallId(callId: unknown): string {
  if (typeof callId !== 'string' || callId.length === 0) throw new SessionStoreError(`a session needs a call id (got ${JSON.stringify(callId)})`);
  if (callId.length > MAX_CALL_ID_LENGTH) throw new SessionStoreError(`call id longer than ${MAX_CALL_ID_LENGTH} characters`);
  if (!/^[\x21-\x7e]+$/.test(callId)) throw new SessionStoreError(`call id ${JSON.stringify(callId)} has spaces or non-printable characters`);
  return callId;
}

/** A TTL override must be a positive whole number of milliseconds. Throws SessionStoreError. */
export function checkTtlMs(ttlMs: number): number {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new SessionStoreError(`TTL must be a positive whole number of milliseconds (got ${ttlMs})`);
  return ttlMs;
}
