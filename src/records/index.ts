/**
 * The call-records service: one CallRecorder per call (the conversation's observer), the
 * record completed by the engine's end-of-call summary, made durable in the local journal,
 * then drained to PostgreSQL by the flusher. On open, whatever the journal still holds from
 * before (a crash, an outage at shutdown) is flushed first.
 */
import type { CallInfo } from '../agents/agent.js';
import type { CallSummary } from '../call/call-session.js';
import type { ConversationObserver } from '../conversation/conversation-agent.js';
import type { Logger } from '../log.js';
import type { Db } from '../storage/db.js';
import type { PhoneRules } from '../storage/phone.js';
import { Flusher, type FlusherStats } from './flusher.js';
import { Journal, type JournalStats } from './journal.js';
import { PgCallRecordStore } from './pg-store.js';
import { CallRecorder } from './recorder.js';
import type { CallRecord, CallRecordReader, CallRecords } from './types.js';

export * from './types.js';
export { classifyOutcome, isFarewell, type OutcomeFacts } from './outcome.js';
export { CallRecorder, type RecorderOptions } from './recorder.js';
export { describeResult, formatDuration, summarizeCall } from './summary.js';
export { DEFAULT_SEGMENT_BYTES, Journal, JournalError, formatLine, parseLine, writeFileAtomic, type JournalEntry, type JournalOptions, type JournalStats } from './journal.js';
export { CallQueryError, DEFAULT_LIST_LIMIT, InvalidCallRecordError, MAX_LIST_LIMIT, PgCallRecordStore, sanitize, type WriteResult } from './pg-store.js';
export { Flusher, type FlusherOptions, type FlusherStats, type RecordSink } from './flusher.js';

export interface OpenCallRecordsOptions {
  db: Db;
  /** Directory of the local journal (created 0700 if missing). */
  journalDir: string;
  log: Logger;
  /** How often the flusher looks at the journal without news (default 5000 ms). */
  flushIntervalMs?: number;
  /** Journal segment size before rotation (default 4 MiB). */
  segmentBytes?: number;
  /** How caller numbers are normalised to E.164 (default NANP). */
  phoneRules?: PhoneRules;
  /** Flusher backoff on database errors (default 500 ms doubling to 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Wall clock (tests). */
  now?: () => Date;
  /** Run before the store's first query succeeds, retried until it does (the migrations). */
  prepare?: () => Promise<unknown>;
}

export interface CallRecordsStats {
  journal: JournalStats;
  flusher: FlusherStats;
  /** Records the journal could not take (disk error), held in memory and retried. */
  unjournalled: number;
}

/** Remembered call ids, so that a second end-of-call for the same call is ignored. */
const RECENT_CALLS = 10_000;
const UNJOURNALLED_RETRY_MS = 2000;

export async function openCallRecords(opts: OpenCallRecordsOptions): Promise<CallRecordsService> {
  const log = opts.log.child({ component: 'call-records' });
  const journal = await Journal.open<CallRecord>(opts.journalDir, { log, ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}) });
  const store = new PgCallRecordStore(opts.db, opts.prepare);
  const flusher = new Flusher({
    journal,
    store,
    log,
    ...(opts.flushIntervalMs ? { intervalMs: opts.flushIntervalMs } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
  });
  const s = journal.stats();
  if (s.backlog > 0 || s.corruptLines > 0 || s.tornTails > 0) {
    log.info({ backlog: s.backlog, corruptLines: s.corruptLines, tornTails: s.tornTails }, 'call records: replaying the journal from the last run');
  }
  flusher.poke();
  return new CallRecordsService(journal, store, flusher, log, opts);
}

export class CallRecordsService implements CallRecords {
  readonly reader: CallRecordReader;
  private readonly recorders = new Map<string, CallRecorder>();
  private readonly recent = new Set<string>();
  private readonly listeners: ((record: CallRecord) => void)[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private unjournalled: CallRecord[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly journal: Journal<CallRecord>,
    readonly store: PgCallRecordStore,
    private readonly flusher: Flusher,
    private readonly log: Logger,
    private readonly opts: Pick<OpenCallRecordsOptions, 'phoneRules' | 'now'>,
  ) {
    this.reader = store;
  }

  observerFor(call: CallInfo): ConversationObserver {
    const recorder = new CallRecorder(call, this.recorderOptions());
    this.recorders.set(call.callId, recorder);
    // A call whose end never arrives (setup failed after the agent was made) must not pile up.
    if (this.recorders.size > RECENT_CALLS) this.recorders.delete(this.recorders.keys().next().value!);
    return recorder;
  }

  callEnded(summary: CallSummary): void {
    void this.record(summary);
  }

  /**
   * Completes the call's record and journals it; resolves with the record once it is durable
   * (or held in memory when the journal failed). A repeated end of the same call is ignored.
   */
  record(summary: CallSummary): Promise<CallRecord | undefined> {
    const id = summary.info.callId;
    if (this.recent.has(id)) {
      this.log.warn({ callId: id }, 'call records: second end of the same call ignored');
      return Promise.resolve(undefined);
    }
    this.remember(id);
    const recorder = this.recorders.get(id) ?? new CallRecorder(summary.info, this.recorderOptions());
    this.recorders.delete(id);
    let record: CallRecord;
    try {
      record = recorder.finish(summary);
    } catch (err) {
      this.log.error({ callId: id, err: err instanceof Error ? err.message : String(err) }, 'call records: building the record failed');
      return Promise.resolve(undefined);
    }
    const p = this.persist(record).then(() => record);
    this.track(p);
    return p;
  }

  private async persist(record: CallRecord): Promise<void> {
    try {
      await this.journal.append(record);
      this.log.debug({ callId: record.callId, outcome: record.outcome, turns: record.turns.length }, 'call record journalled');
      this.flusher.poke();
    } catch (err) {
      // The disk refused (full, read-only): keep it in memory and retry, never drop it.
      this.unjournalled.push(record);
      this.log.error({ callId: record.callId, err: err instanceof Error ? err.message : String(err) }, 'call records: journal write failed; holding the record in memory');
      this.armRetry();
    }
    for (const l of this.listeners) {
      try {
        l(record);
      } catch (err) {
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'call records: a record listener threw');
      }
    }
  }

  onRecord(listener: (record: CallRecord) => void): void {
    this.listeners.push(listener);
  }

  backlog(): number {
    return this.journal.backlog() + this.unjournalled.length;
  }

  stats(): CallRecordsStats {
    return { journal: this.journal.stats(), flusher: this.flusher.stats(), unjournalled: this.unjournalled.length };
  }

  async flushNow(): Promise<void> {
    await this.settle();
    await this.retryUnjournalled();
    await this.flusher.flushNow();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.settle();
    await this.flusher.stop();
    await this.retryUnjournalled();
    await this.flusher.finalFlush();
    // Last resort for records the disk never took: straight to the database.
    for (const r of [...this.unjournalled]) {
      try {
        await this.store.write(r);
        this.unjournalled.splice(this.unjournalled.indexOf(r), 1);
      } catch {
        // reported below
      }
    }
    if (this.unjournalled.length > 0) {
      this.log.error({ lost: this.unjournalled.length }, 'call records: records neither journalled nor stored at shutdown');
    }
    const left = this.journal.backlog();
    if (left > 0) this.log.warn({ backlog: left }, 'call records: backlog left in the journal; it is flushed at the next start');
    await this.journal.close();
  }

  // --- internals -----------------------------------------------------------------------------

  private recorderOptions(): ConstructorParameters<typeof CallRecorder>[1] {
    return { ...(this.opts.now ? { now: this.opts.now } : {}), ...(this.opts.phoneRules ? { phoneRules: this.opts.phoneRules } : {}) };
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > RECENT_CALLS) this.recent.delete(this.recent.values().next().value!);
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    const forget = (): void => void this.inFlight.delete(p);
    p.then(forget, forget);
  }

  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private armRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // Tracked: close() must wait for it, or a record it holds could miss the last-resort write.
      const retry = this.retryUnjournalled().then(() => {
        if (this.unjournalled.length > 0) this.armRetry();
      });
      this.track(retry);
    }, UNJOURNALLED_RETRY_MS);
    this.retryTimer.unref();
  }

  private async retryUnjournalled(): Promise<void> {
    const waiting = this.unjournalled;
    this.unjournalled = [];
    for (const [i, r] of waiting.entries()) {
      try {
        await this.journal.append(r);
      } catch {
        this.unjournalled.push(...waiting.slice(i));
        return;
      }
    }
    if (waiting.length > 0) this.flusher.poke();
  }
}
