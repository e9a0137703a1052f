/**
 * One call's session: the current document, updated by the controller (media path) and the
 * conversation agent (history, variables, LLM snapshot after each turn), saved in the
 * background. Saving never blocks or fails a turn: an update copies what it is given at once
 * (later changes to the history do not leak into a save in flight), saves run one at a time
 * and coalesce (a burst of updates is one write of the latest state), and errors are logged
 * and counted. When the call ends the session is deleted.
 */
import type { Logger } from '../log.js';
import type { SessionDocument } from './document.js';
import type { SessionMetrics } from './metrics.js';
import type { SessionStore } from './store.js';

export type SessionPatch = Partial<Pick<SessionDocument, 'turn' | 'phase' | 'history' | 'variables' | 'llm' | 'media'>>;

/** What an agent sees of its call's session. */
export interface SessionPort {
  /** Record the conversation's state (after a completed turn, on a transfer); saved in the background. */
  update(patch: SessionPatch): void;
}

export class SessionKeeper implements SessionPort {
  private doc: SessionDocument;
  private saving: Promise<void> | undefined;
  private dirty = false;
  private discarded = false;
  private keepAlive: NodeJS.Timeout | undefined;
  /** Writes attempted and failed (for tests and diagnostics). */
  saves = 0;
  failures = 0;

  constructor(
    private readonly store: SessionStore,
    doc: SessionDocument,
    private readonly log: Logger,
    private readonly metrics: SessionMetrics,
    private readonly now: () => Date = () => new Date(),
    /**
     * While the call is up, renew the session's TTL this often (a third of the TTL), so a call
     * with long quiet stretches (a hold, a slow tool, the echo agent) can still be adopted.
     */
    keepAliveMs?: number,
  ) {
    this.doc = doc;
    if (keepAliveMs !== undefined && keepAliveMs > 0) {
      this.keepAlive = setInterval(() => void this.renew(), keepAliveMs);
      this.keepAlive.unref();
    }
  }

  /** Renew the TTL; a session that is gone (expired, or lost with a Redis restart) is written again. */
  private async renew(): Promise<void> {
    if (this.discarded || this.saving) return;
    try {
      if (!(await this.store.touch(this.doc.callId))) this.save();
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'session TTL not renewed');
    }
  }

  get callId(): string {
    return this.doc.callId;
  }

  /** A copy of the current document. */
  get document(): SessionDocument {
    return structuredClone(this.doc);
  }

  update(patch: SessionPatch): void {
    if (this.discarded) return;
    let copy: SessionPatch;
    try {
      // Exactly what JSON keeps: a snapshot that does not survive this would not survive Redis.
      copy = JSON.parse(JSON.stringify(patch)) as SessionPatch;
    } catch (err) {
      this.failures++;
      this.metrics.saveErrors.inc();
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'session not saved: its state cannot be serialised');
      return;
    }
    this.doc = { ...this.doc, ...copy, updatedAt: this.now().toISOString() };
    this.save();
  }

  /** Save the current document in the background (coalesced with a save in flight). */
  save(): void {
    if (this.discarded) return;
    this.dirty = true;
    this.saving ??= this.drain().finally(() => (this.saving = undefined));
  }

  /** Resolves when every save requested so far has been attempted. */
  async flush(): Promise<void> {
    while (this.saving) await this.saving;
  }

  /** The call is over: stop saving and delete the session. Never throws. */
  async discard(): Promise<void> {
    this.discarded = true;
    clearInterval(this.keepAlive);
    await this.flush();
    try {
      await this.store.delete(this.doc.callId);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'session not deleted (it expires by its TTL)');
    }
  }

  private async drain(): Promise<void> {
    while (this.dirty && !this.discarded) {
      this.dirty = false;
      this.saves++;
      try {
        await this.store.put(this.doc);
      } catch (err) {
        this.failures++;
        this.metrics.saveErrors.inc();
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'session save failed');
      }
    }
  }
}
