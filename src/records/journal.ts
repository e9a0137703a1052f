/**
 * An append-only local journal: the first place a finished call record goes, so that it is
 * durable before PostgreSQL has seen it.
 *
 * On disk (a directory, mode 0700 — records hold personal data):
 *   segment-000001.jsonl   entries, one per line: `<seq> <sha256/64 hex> <json>\n`
 *   checkpoint.json        {"seq": N}: every entry up to N is in the database
 *   journal.lock           pid of the process using the journal
 *   rejected.jsonl         entries the database refused as invalid, kept for a human
 *   *.corrupt              flushed segments that had corrupt lines, kept for a human
 *
 * - append() resolves only after the line is written and fdatasync'ed; concurrent appends
 *   are serialised and share one write + fdatasync (group commit).
 * - The active segment rotates once it reaches `segmentBytes`. Each open starts a new
 *   segment: an old file is never written again, so a torn tail from a crash stays inert.
 * - commit(seq) writes the checkpoint atomically (tmp file, fsync, rename, fsync of the
 *   directory) and deletes segments whose entries are all flushed.
 * - Opening scans every segment: a line with a bad checksum or unparseable content is
 *   counted and skipped, a torn last line (crash mid-write) is counted and ignored; the lines
 *   around them are kept.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

const SEGMENT_RE = /^segment-(\d{6,})\.jsonl$/;
const CHECKPOINT = 'checkpoint.json';
const LOCK = 'journal.lock';
const REJECTED = 'rejected.jsonl';
const NEWLINE = 0x0a;

export interface JournalEntry<T> {
  seq: number;
  value: T;
}

export interface JournalOptions {
  /** Rotate the active segment once it is at least this big (default 4 MiB). */
  segmentBytes?: number;
  log?: Logger;
}

export interface JournalStats {
  /** Entries appended but not yet committed. */
  backlog: number;
  /** Highest sequence number handed out. */
  lastSeq: number;
  /** Highest sequence number committed (checkpoint). */
  checkpoint: number;
  segments: number;
  /** Complete lines whose checksum or content was bad (skipped). */
  corruptLines: number;
  /** Incomplete last lines found on open (a crash while writing; skipped). */
  tornTails: number;
  /** Entries set aside in rejected.jsonl. */
  rejected: number;
}

export class JournalError extends Error {
  override readonly name = 'JournalError';
}

interface Segment {
  number: number;
  path: string;
  /** Highest good seq in it (0 when none). */
  lastSeq: number;
  corrupt: boolean;
}

interface Pending {
  seq: number;
  segment: Segment;
  offset: number;
  length: number;
}

interface Waiting {
  seq: number;
  line: Buffer;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

/** Journal directories open in this process (a second opener would corrupt the first). */
const openDirs = new Set<string>();

export function formatLine(seq: number, json: string): Buffer {
  return Buffer.from(`${seq} ${digest(json)} ${json}\n`, 'utf8');
}

function digest(json: string): string {
  return createHash('sha256').update(json, 'utf8').digest('hex').slice(0, 16);
}

/** Parses one line (without its newline); undefined when it is not a valid entry. */
export function parseLine(line: string): { seq: number; json: string } | undefined {
  const m = /^(\d{1,15}) ([0-9a-f]{16}) (.*)$/s.exec(line);
  if (!m) return undefined;
  const json = m[3]!;
  if (digest(json) !== m[2]) return undefined;
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) && seq > 0 ? { seq, json } : undefined;
}

export class Journal<T = unknown> {
  private readonly segments = new Map<number, Segment>();
  private readonly pending: Pending[] = [];
  private active: { segment: Segment; handle: FileHandle; size: number } | undefined;
  private lastSeq = 0;
  private checkpointSeq = 0;
  private corruptLines = 0;
  private tornTails = 0;
  private rejectedCount = 0;
  private queue: Waiting[] = [];
  private writing: Promise<void> | undefined;
  private commitChain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly segmentBytes: number;
  private readonly log: Logger | undefined;

  private constructor(
    readonly dir: string,
    private readonly key: string,
    opts: JournalOptions,
  ) {
    this.segmentBytes = Math.max(1, opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES);
    this.log = opts.log;
  }

  /** Opens (creating it if needed) the journal in `dir` and scans what is there. */
  static async open<T>(dir: string, opts: JournalOptions = {}): Promise<Journal<T>> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const key = await realpath(dir);
    if (openDirs.has(key)) throw new JournalError(`the call-records journal ${dir} is already open in this process`);
    openDirs.add(key);
    const j = new Journal<T>(dir, key, opts);
    try {
      await j.lock();
      await j.load();
    } catch (err) {
      openDirs.delete(key);
      await rm(join(dir, LOCK), { force: true }).catch(() => undefined);
      throw err;
    }
    return j;
  }

  stats(): JournalStats {
    return {
      backlog: this.pending.length,
      lastSeq: this.lastSeq,
      checkpoint: this.checkpointSeq,
      segments: this.segments.size,
      corruptLines: this.corruptLines,
      tornTails: this.tornTails,
      rejected: this.rejectedCount,
    };
  }

  /** Entries appended but not yet committed. */
  backlog(): number {
    return this.pending.length;
  }

  /** Writes `value` durably; resolves with its sequence number once it is on disk. */
  append(value: T): Promise<number> {
    if (this.closed) return Promise.reject(new JournalError('the call-records journal is closed'));
    let json: string;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      return Promise.reject(new JournalError(`cannot journal a value that is not JSON: ${err instanceof Error ? err.message : String(err)}`));
    }
    if (json === undefined) return Promise.reject(new JournalError('cannot journal undefined'));
    const seq = ++this.lastSeq;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ seq, line: formatLine(seq, json), resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
      // An append that came in after the loop's last look at the queue.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      let target: NonNullable<Journal<T>['active']> | undefined;
      try {
        target = await this.activeSegment();
        const buf = Buffer.concat(batch.map((w) => w.line));
        let written = 0;
        while (written < buf.length) {
          const { bytesWritten } = await target.handle.write(buf, written, buf.length - written, target.size + written);
          if (bytesWritten <= 0) throw new JournalError('short write to the call-records journal');
          written += bytesWritten;
        }
        await target.handle.datasync();
        let offset = target.size;
        for (const w of batch) {
          this.pending.push({ seq: w.seq, segment: target.segment, offset, length: w.line.length });
          target.segment.lastSeq = w.seq;
          offset += w.line.length;
        }
        target.size = offset;
        for (const w of batch) w.resolve(w.seq);
        if (target.size >= this.segmentBytes) await this.rotate();
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        for (const w of batch) w.reject(e);
        // Whatever part of the batch reached the file is an inert torn tail: never write after it.
        if (target) await this.rotate().catch(() => undefined);
      }
    }
  }

  private async activeSegment(): Promise<NonNullable<Journal<T>['active']>> {
    if (this.active) return this.active;
    const number = Math.max(0, ...this.segments.keys()) + 1;
    const path = join(this.dir, segmentName(number));
    const handle = await open(path, 'wx', 0o600);
    try {
      await syncDir(this.dir); // the new file's name must survive a crash too
    } catch (err) {
      await handle.close();
      throw err;
    }
    const segment: Segment = { number, path, lastSeq: 0, corrupt: false };
    this.segments.set(number, segment);
    this.active = { segment, handle, size: 0 };
    return this.active;
  }

  private async rotate(): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    await a.handle.close();
    if (a.segment.lastSeq <= this.checkpointSeq) await this.dropSegment(a.segment);
  }

  /** The oldest uncommitted entries, at most `max`, in order. */
  async read(max: number): Promise<JournalEntry<T>[]> {
    const out: JournalEntry<T>[] = [];
    const take = this.pending.slice(0, Math.max(0, max));
    const bySegment = new Map<Segment, Pending[]>();
    for (const p of take) bySegment.set(p.segment, [...(bySegment.get(p.segment) ?? []), p]);
    const values = new Map<number, T>();
    for (const [segment, entries] of bySegment) {
      const handle = await open(segment.path, 'r');
      try {
        for (const p of entries) {
          const buf = Buffer.alloc(p.length);
          const { bytesRead } = await handle.read(buf, 0, p.length, p.offset);
          const parsed = bytesRead === p.length ? parseLine(buf.subarray(0, p.length - 1).toString('utf8')) : undefined;
          if (!parsed || parsed.seq !== p.seq) {
            // Damaged on disk since it was written: counted, skipped, the segment kept for a human.
            this.corruptLines++;
            segment.corrupt = true;
            this.log?.error({ seq: p.seq, segment: segment.path }, 'call-records journal entry damaged on disk; skipped');
            continue;
          }
          values.set(p.seq, JSON.parse(parsed.json) as T);
        }
      } finally {
        await handle.close();
      }
    }
    for (const p of take) {
      if (values.has(p.seq)) out.push({ seq: p.seq, value: values.get(p.seq)! });
    }
    // Damaged entries cannot be read again: the reader moves past them (their segment is kept).
    if (out.length < take.length) {
      const bad = new Set(take.filter((p) => !values.has(p.seq)).map((p) => p.seq));
      for (let i = this.pending.length - 1; i >= 0; i--) if (bad.has(this.pending[i]!.seq)) this.pending.splice(i, 1);
    }
    return out;
  }

  /**
   * Everything up to `seq` is in the database: record it (atomically), forget those entries
   * and delete segments that hold nothing else.
   */
  commit(seq: number): Promise<void> {
    const run = this.commitChain.then(() => this.commitNow(seq));
    this.commitChain = run.catch(() => undefined);
    return run;
  }

  private async commitNow(seq: number): Promise<void> {
    if (seq <= this.checkpointSeq) return;
    await writeFileAtomic(this.dir, CHECKPOINT, JSON.stringify({ seq, at: new Date().toISOString() }));
    this.checkpointSeq = seq;
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.seq <= seq) n++;
    this.pending.splice(0, n);
    for (const s of [...this.segments.values()]) {
      if (s !== this.active?.segment && s.lastSeq <= seq) await this.dropSegment(s);
    }
  }

  /**
   * Keeps an entry the database refused as invalid in rejected.jsonl (durably), with why.
   * The caller then commits past it.
   */
  async setAside(entry: JournalEntry<T>, reason: string): Promise<void> {
    const line = `${JSON.stringify({ seq: entry.seq, at: new Date().toISOString(), reason, value: entry.value })}\n`;
    const handle = await open(join(this.dir, REJECTED), 'a', 0o600);
    try {
      await handle.write(line);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    this.rejectedCount++;
  }

  /** Waits for appends in flight, closes the files. What is not committed stays for next open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.writing) await this.writing;
    await this.commitChain;
    if (this.active) {
      await this.active.handle.close();
      this.active = undefined;
    }
    await rm(join(this.dir, LOCK), { force: true });
    openDirs.delete(this.key);
  }

  // --- opening -------------------------------------------------------------------------------

  private async lock(): Promise<void> {
    const key = this.key;
    const path = join(this.dir, LOCK);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const h = await open(path, 'wx', 0o600);
        await h.write(`${process.pid}\n`);
        await h.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      // Our own pid here means a previous instance in this process did not close (it is not in openDirs).
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new JournalError(`the call-records journal ${key} is in use by process ${pid}`);
      }
      await rm(path, { force: true }); // stale: its process is gone
    }
    throw new JournalError(`could not lock the call-records journal ${key}`);
  }

  private async load(): Promise<void> {
    this.checkpointSeq = await this.readCheckpoint();
    const names = (await readdir(this.dir)).filter((n) => SEGMENT_RE.test(n));
    names.sort((a, b) => Number(SEGMENT_RE.exec(a)![1]) - Number(SEGMENT_RE.exec(b)![1]));
    let maxSeq = this.checkpointSeq;
    const seen = new Set<number>();
    for (const name of names) {
      const segment: Segment = { number: Number(SEGMENT_RE.exec(name)![1]), path: join(this.dir, name), lastSeq: 0, corrupt: false };
      this.segments.set(segment.number, segment);
      const buf = await readFile(segment.path);
      let start = 0;
      while (start < buf.length) {
        const nl = buf.indexOf(NEWLINE, start);
        if (nl === -1) {
          this.tornTails++;
          this.log?.warn({ segment: segment.path, bytes: buf.length - start }, 'call-records journal: incomplete last line (crash while writing); skipped');
          break;
        }
        const parsed = parseLine(buf.subarray(start, nl).toString('utf8'));
        if (!parsed || seen.has(parsed.seq) || !isJson(parsed.json)) {
          this.corruptLines++;
          segment.corrupt = true;
          this.log?.error({ segment: segment.path, offset: start }, 'call-records journal: corrupt line; skipped');
        } else {
          seen.add(parsed.seq);
          segment.lastSeq = Math.max(segment.lastSeq, parsed.seq);
          maxSeq = Math.max(maxSeq, parsed.seq);
          if (parsed.seq > this.checkpointSeq) this.pending.push({ seq: parsed.seq, segment, offset: start, length: nl + 1 - start });
        }
        start = nl + 1;
      }
    }
    this.pending.sort((a, b) => a.seq - b.seq);
    this.lastSeq = maxSeq;
    for (const s of [...this.segments.values()]) if (s.lastSeq <= this.checkpointSeq) await this.dropSegment(s);
    const rejected = await readFile(join(this.dir, REJECTED), 'utf8').catch(() => '');
    this.rejectedCount = rejected.split('\n').filter((l) => l.trim() !== '').length;
  }

  private async readCheckpoint(): Promise<number> {
    let text: string;
    try {
      text = await readFile(join(this.dir, CHECKPOINT), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    try {
      const seq = (JSON.parse(text) as { seq?: unknown }).seq;
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return seq;
    } catch {
      // fall through
    }
    // Re-flushing everything is safe (the store is idempotent); skipping anything is not.
    this.log?.warn({ dir: this.dir }, 'call-records journal checkpoint unreadable; replaying every entry');
    return 0;
  }

  /** Deletes a fully flushed segment; one with corrupt lines is kept aside as *.corrupt. */
  private async dropSegment(s: Segment): Promise<void> {
    this.segments.delete(s.number);
    if (!s.corrupt) {
      await rm(s.path, { force: true });
      return;
    }
    let target = `${s.path}.corrupt`;
    if (await exists(target)) target = `${s.path}.${Date.now()}.corrupt`;
    await rename(s.path, target);
    this.log?.warn({ file: target }, 'call-records journal segment with corrupt lines kept for inspection');
  }
}

function segmentName(n: number): string {
  return `segment-${String(n).padStart(6, '0')}.jsonl`;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Replaces `name` in `dir` with `content` so that a crash leaves either the old or the new file. */
export async function writeFileAtomic(dir: string, name: string, content: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const h = await open(tmp, 'w', 0o600);
  try {
    await h.write(content);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}
