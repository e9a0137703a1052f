/**
 * The local append-only journal on a real filesystem: append and reopen, rotation and
 * deletion of flushed segments, the checkpoint surviving a reopen, a torn last line after a
 * simulated crash, a corrupt line skipped and counted, concurrent appends, the lock.
 */
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatLine, Journal, JournalError, parseLine } from '../../src/records/journal.js';

interface Item {
  n: number;
  text: string;
}

const dirs: string[] = [];
const open: Journal<Item>[] = [];

async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sb-journal-'));
  dirs.push(d);
  return d;
}

async function openJ(dir: string, segmentBytes?: number): Promise<Journal<Item>> {
  const j = await Journal.open<Item>(dir, segmentBytes ? { segmentBytes } : {});
  open.push(j);
  return j;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => /^segment-\d+\.jsonl$/.test(n)).sort();
}

const item = (n: number): Item => ({ n, text: `record ${n} — “quoted”, with\nnewline` });

afterEach(async () => {
  for (const j of open.splice(0)) await j.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('journal lines', () => {
  it('round-trips and refuses a changed line', () => {
    const line = formatLine(7, JSON.stringify(item(7))).toString('utf8');
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n'); // JSON escapes newlines: one entry, one line
    expect(parseLine(line.slice(0, -1))).toEqual({ seq: 7, json: JSON.stringify(item(7)) });
    expect(parseLine(line.slice(0, -1).replace('record 7', 'record 8'))).toBeUndefined();
    expect(parseLine(line.slice(0, 20))).toBeUndefined();
    expect(parseLine('')).toBeUndefined();
  });
});

describe('Journal', () => {
  it('keeps appended entries across a reopen, in order, until committed', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    const seqs = [await j.append(item(1)), await j.append(item(2)), await j.append(item(3))];
    expect(seqs).toEqual([1, 2, 3]);
    expect(j.backlog()).toBe(3);
    expect((await j.read(10)).map((e) => e.value)).toEqual([item(1), item(2), item(3)]);
    await j.close();
    open.length = 0;

    const again = await openJ(dir);
    expect(again.backlog()).toBe(3);
    const entries = await again.read(2);
    expect(entries).toEqual([
      { seq: 1, value: item(1) },
      { seq: 2, value: item(2) },
    ]);
    await again.commit(2);
    expect(again.backlog()).toBe(1);
    expect(await again.append(item(4))).toBe(4);
    await again.close();
    open.length = 0;

    // The checkpoint survived: only 3 and 4 are left, and numbering goes on.
    const third = await openJ(dir);
    expect(third.stats()).toMatchObject({ backlog: 2, checkpoint: 2, lastSeq: 4, corruptLines: 0, tornTails: 0 });
    expect((await third.read(10)).map((e) => e.value.n)).toEqual([3, 4]);
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'))).toMatchObject({ seq: 2 });
  });

  it('rotates segments by size and deletes the ones fully flushed', async () => {
    const dir = await freshDir();
    const j = await openJ(dir, 150); // a line is ~80 bytes: two lines per segment
    for (let i = 1; i <= 10; i++) await j.append(item(i));
    const files = await segmentFiles(dir);
    expect(files).toHaveLength(5);
    for (const f of files) expect((await stat(join(dir, f))).size).toBeLessThan(150 + 100);

    const firstFive = await j.read(5);
    await j.commit(firstFive.at(-1)!.seq);
    const left = await segmentFiles(dir);
    expect(left.length).toBeLessThan(files.length);
    expect(left[0]! > files[0]!).toBe(true); // the oldest went first
    expect((await j.read(100)).map((e) => e.value.n)).toEqual([6, 7, 8, 9, 10]);

    await j.commit(10);
    expect(j.backlog()).toBe(0);
    // Only the segment still being written may remain, and it holds nothing unflushed.
    expect((await segmentFiles(dir)).length).toBeLessThanOrEqual(1);
    await j.close();
    open.length = 0;
    const again = await openJ(dir, 150);
    expect(again.backlog()).toBe(0);
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it('skips a torn last line after a crash mid-write and keeps every line before it', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    for (let i = 1; i <= 3; i++) await j.append(item(i));
    await j.close();
    open.length = 0;
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg!);
    const size = (await stat(path)).size;
    await truncate(path, size - 10); // the crash: the third line is only half on disk

    const again = await openJ(dir);
    expect(again.stats()).toMatchObject({ backlog: 2, tornTails: 1, corruptLines: 0 });
    expect((await again.read(10)).map((e) => e.value)).toEqual([item(1), item(2)]);
    // New entries go to a new segment, never after the torn bytes.
    expect(await again.append(item(4))).toBe(3);
    expect(await segmentFiles(dir)).toHaveLength(2);
    expect((await again.read(10)).map((e) => e.value.n)).toEqual([1, 2, 4]);
    await again.commit(3);
    expect(await segmentFiles(dir)).toHaveLength(1); // the torn segment was flushed and deleted
  });

  it('skips and counts a line whose checksum does not match, keeps the lines around it, and keeps the file aside', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    for (let i = 1; i <= 3; i++) await j.append(item(i));
    await j.close();
    open.length = 0;
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg!);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('record 2', 'record X')); // same length, bad checksum

    const again = await openJ(dir);
    expect(again.stats()).toMatchObject({ backlog: 2, corruptLines: 1, tornTails: 0 });
    const entries = await again.read(10);
    expect(entries.map((e) => e.value.n)).toEqual([1, 3]);
    await again.commit(entries.at(-1)!.seq);
    expect(await segmentFiles(dir)).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.endsWith('.corrupt'))).toEqual([`${seg}.corrupt`]);
  });

  it('serialises concurrent appends (one write and fdatasync per group) without losing or reordering any', async () => {
    const dir = await freshDir();
    const j = await openJ(dir, 4096);
    const seqs = await Promise.all(Array.from({ length: 200 }, (_, i) => j.append(item(i + 1))));
    expect(new Set(seqs).size).toBe(200);
    const all = await j.read(1000);
    expect(all.map((e) => e.seq)).toEqual([...seqs].sort((a, b) => a - b));
    expect(all.map((e) => e.value.n)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await j.close();
    open.length = 0;
    expect((await openJ(dir)).backlog()).toBe(200);
  });

  it('sets refused entries aside in rejected.jsonl and counts them across reopens', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    await j.append(item(1));
    const [e] = await j.read(1);
    await j.setAside(e!, 'check constraint');
    await j.commit(e!.seq);
    const line = JSON.parse((await readFile(join(dir, 'rejected.jsonl'), 'utf8')).trim()) as { seq: number; reason: string; value: Item };
    expect(line).toMatchObject({ seq: 1, reason: 'check constraint', value: item(1) });
    await j.close();
    open.length = 0;
    expect((await openJ(dir)).stats()).toMatchObject({ rejected: 1, backlog: 0 });
  });

  it('replays everything when the checkpoint is unreadable (the store is idempotent; skipping is not safe)', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    await j.append(item(1));
    await j.append(item(2));
    await j.commit(1);
    await j.close();
    open.length = 0;
    await writeFile(join(dir, 'checkpoint.json'), '{"seq": ');
    const again = await openJ(dir);
    // Entry 1 was flushed, but without a readable checkpoint it is offered again.
    expect(again.stats()).toMatchObject({ backlog: 2, checkpoint: 0, lastSeq: 2 });
    expect((await again.read(10)).map((e) => e.value.n)).toEqual([1, 2]);
  });

  it('is opened by one owner at a time; a stale lock from a dead process is taken over', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    await expect(Journal.open(dir)).rejects.toThrow(JournalError);
    await j.close();
    open.length = 0;
    await writeFile(join(dir, 'journal.lock'), '999999999\n'); // no such process
    const again = await openJ(dir);
    expect(await again.append(item(1))).toBe(1);
  });

  it('refuses values that are not JSON, and appends after close', async () => {
    const dir = await freshDir();
    const j = await openJ(dir);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(j.append(cyclic as unknown as Item)).rejects.toThrow(/not JSON/);
    expect(await j.append(item(1))).toBe(1);
    await j.close();
    open.length = 0;
    await expect(j.append(item(2))).rejects.toThrow(/closed/);
  });
});
