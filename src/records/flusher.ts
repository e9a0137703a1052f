/**
 * Drains the journal into the store, oldest first, in batches. Each record is written in its
 * own transaction (idempotent by call id); the journal's checkpoint moves after each batch.
 *
 * When the database is unreachable the flusher backs off (0.5 s doubling to 30 s, with
 * jitter) while calls keep being journalled; it logs the outage once and, when the backlog
 * has drained again, logs the recovery with how many records it wrote meanwhile. A record
 * the database refuses as invalid (bad data, not an outage) is set aside in the journal's
 * rejected.jsonl so that one bad record never blocks the others.
 */
import type { Logger } from '../log.js';
import { isDbUnavailableError, sqlState } from '../storage/db.js';
import type { Journal, JournalEntry } from './journal.js';
import { InvalidCallRecordError, type WriteResult } from './pg-store.js';
import type { CallRecord } from './types.js';

export interface RecordSink {
  write(record: CallRecord): Promise<WriteResult>;
  /** Several records in one transaction, all or nothing (optional: faster draining). */
  writeMany?(records: readonly CallRecord[]): Promise<WriteResult[]>;
}

export interface FlusherOptions {
  journal: Journal<CallRecord>;
  store: RecordSink;
  log: Logger;
  /** How often to look at the journal even without news (default 5000 ms). */
  intervalMs?: number;
  batchSize?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** Random in [0, 1) (tests pin the jitter). */
  random?: () => number;
}

export interface FlusherStats {
  /** Records written (inserted or already there) since start. */
  flushed: number;
  /** Of those, already in the database (a replay after a crash). */
  duplicates: number;
  /** Flush attempts that failed because the database was unreachable or erred. */
  failures: number;
  /** Records set aside as invalid. */
  rejected: number;
  /** True while the database is considered down. */
  outage: boolean;
}

const DEFAULT_INTERVAL_MS = 5000;
const DEFAULT_BATCH = 50;

export class Flusher {
  private readonly journal: Journal<CallRecord>;
  private readonly store: RecordSink;
  private readonly log: Logger;
  private readonly batchSize: number;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private readonly random: () => number;
  private readonly timer: NodeJS.Timeout;
  private backoffMs = 0;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;
  private stopped = false;
  private outage: { since: number; failures: number; drained: number; recovered: boolean } | undefined;
  private readonly counters = { flushed: 0, duplicates: 0, failures: 0, rejected: 0 };

  constructor(opts: FlusherOptions) {
    this.journal = opts.journal;
    this.store = opts.store;
    this.log = opts.log;
    this.batchSize = opts.batchSize ?? DEFAULT_BATCH;
    this.initialBackoff = opts.backoff?.initialMs ?? 500;
    this.maxBackoff = opts.backoff?.maxMs ?? 30_000;
    this.random = opts.random ?? Math.random;
    this.timer = setInterval(() => this.poke(), opts.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  stats(): FlusherStats {
    return { ...this.counters, outage: this.outage !== undefined && !this.outage.recovered };
  }

  /** Something was journalled (or time passed): drain unless backing off. */
  poke(): void {
    if (this.stopped || Date.now() < this.retryAt) return;
    void this.drain();
  }

  /**
   * Drains now, ignoring the backoff. Resolves true when the backlog is empty, false when
   * the database refused (the backlog stays journalled and the backoff resumes).
   */
  async flushNow(): Promise<boolean> {
    if (this.running) await this.running;
    if (this.journal.backlog() === 0) return true;
    return this.drain();
  }

  private drain(): Promise<boolean> {
    this.running ??= this.drainLoop().finally(() => (this.running = undefined));
    return this.running;
  }

  private async drainLoop(): Promise<boolean> {
    while (!this.stopped && this.journal.backlog() > 0) {
      let batch: JournalEntry<CallRecord>[];
      try {
        batch = await this.journal.read(this.batchSize);
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'call-records journal could not be read');
        this.scheduleRetry();
        return false;
      }
      if (batch.length === 0) continue; // only damaged entries: the journal skipped them
      let done = 0;
      let failed: unknown;
      let oneByOne = true;
      if (batch.length > 1 && this.store.writeMany) {
        try {
          const results = await this.store.writeMany(batch.map((e) => e.value));
          this.counters.flushed += results.length;
          this.counters.duplicates += results.filter((r) => r === 'duplicate').length;
          done = batch.length;
          oneByOne = false;
        } catch (err) {
          // An outage stops here; anything else may be one bad record: find it one by one.
          if (isDbUnavailableError(err)) {
            failed = err;
            oneByOne = false;
          }
        }
      }
      for (const entry of oneByOne ? batch : []) {
        try {
          const res = await this.store.write(entry.value);
          this.counters.flushed++;
          if (res === 'duplicate') this.counters.duplicates++;
          done++;
        } catch (err) {
          if (isInvalidRecord(err)) {
            try {
              await this.journal.setAside(entry, errorText(err));
            } catch (asideErr) {
              failed = asideErr;
              break;
            }
            this.counters.rejected++;
            this.log.error({ seq: entry.seq, callId: entry.value.callId, err: safeErrorText(err) }, 'call record refused by the database; kept in rejected.jsonl');
            done++;
            continue;
          }
          failed = err;
          break;
        }
      }
      if (done > 0) {
        try {
          await this.journal.commit(batch[done - 1]!.seq);
        } catch (err) {
          // Written but not checkpointed: the next attempt re-writes them harmlessly.
          failed ??= err;
        }
        if (this.outage) this.outage.drained += done;
      }
      if (failed !== undefined) {
        this.onFailure(failed);
        return false;
      }
      this.onSuccess();
    }
    if (this.outage?.recovered && this.journal.backlog() === 0) {
      const o = this.outage;
      this.outage = undefined;
      this.log.info(
        { drained: o.drained, failedAttempts: o.failures, outageMs: Date.now() - o.since },
        'call records: database backlog drained after the outage',
      );
    }
    return this.journal.backlog() === 0;
  }

  private onFailure(err: unknown): void {
    this.counters.failures++;
    const unavailable = isDbUnavailableError(err);
    if (!this.outage || this.outage.recovered) {
      this.outage = { since: this.outage?.since ?? Date.now(), failures: 0, drained: this.outage?.drained ?? 0, recovered: false };
      this.log.warn(
        { err: safeErrorText(err), unavailable, backlog: this.journal.backlog() },
        unavailable
          ? 'call records: database unreachable; records stay in the local journal until it returns'
          : 'call records: writing to the database failed; records stay in the local journal, retrying',
      );
    }
    this.outage.failures++;
    this.scheduleRetry();
  }

  private onSuccess(): void {
    this.backoffMs = 0;
    this.retryAt = 0;
    if (this.outage && !this.outage.recovered) {
      this.outage.recovered = true;
      this.log.info({ failedAttempts: this.outage.failures, backlog: this.journal.backlog() }, 'call records: database reachable again; draining the journal');
    }
  }

  private scheduleRetry(): void {
    this.backoffMs = this.backoffMs === 0 ? this.initialBackoff : Math.min(this.maxBackoff, this.backoffMs * 2);
    // ±20 % jitter so several instances do not hammer a recovering database in step.
    const delay = Math.round(this.backoffMs * (0.8 + 0.4 * this.random()));
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryAt = 0;
      this.poke();
    }, delay);
    this.retryTimer.unref();
  }

  /** Stops the timers after the drain in progress; the caller may flushNow() once more. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    if (this.running) await this.running;
  }

  /** For a final attempt after stop(). */
  async finalFlush(): Promise<boolean> {
    this.stopped = false;
    try {
      return await this.flushNow();
    } finally {
      this.stopped = true;
      clearTimeout(this.retryTimer);
    }
  }
}

/** Errors that the same record would get again on every attempt: set it aside. */
function isInvalidRecord(err: unknown): boolean {
  if (err instanceof InvalidCallRecordError) return true;
  if (isDbUnavailableError(err)) return false;
  const state = sqlState(err);
  // 22xxx data exception, 23xxx integrity constraint violation.
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/**
 * For logs: PostgreSQL's data errors quote the offending value (which may be personal data),
 * so those are logged by SQLSTATE and constraint only; rejected.jsonl keeps the full text.
 */
function safeErrorText(err: unknown): string {
  const state = sqlState(err);
  if (state && (state.startsWith('22') || state.startsWith('23'))) {
    const constraint = (err as { constraint?: unknown }).constraint;
    return `SQLSTATE ${state}${typeof constraint === 'string' ? ` (constraint ${constraint})` : ''}`;
  }
  return errorText(err);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
