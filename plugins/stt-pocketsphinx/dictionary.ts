/**
 * Pronunciation dictionary helpers (CMU dict format: `word PH O N E S`, alternates as
 * `word(2) ...`).
 *
 * - `lookup`: the entries (all alternates) of a few words, by scanning the file; results are
 *   cached per word, so a full 134k-word dictionary is never held in memory for the sake of a
 *   dozen grammar words.
 * - `writeCompactDictionary`: a small dictionary with just those entries. A grammar or
 *   keyword decoder loaded with it takes ~6 MB and ~15 ms instead of ~30 MB and ~140 ms.
 * - `writeTrimmedDictionary`: the dictionary restricted to the N-gram model's vocabulary (the
 *   N-gram search can never output a word the model lacks), which saves ~13 MB and ~30% of the
 *   start-up time of every LM decoder with Debian's en-us model.
 *
 * Written files are content-addressed (hash in the name) and written atomically, so several
 * processes can share one cache directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Phones of an entry line as `lookup` returns it ("read(2) R EH D" -> "R EH D"). */
export function entryPhones(line: string): string {
  return line.replace(/^\S+\s+/, '');
}

/** Base form of a dictionary headword: "read(2)" -> "read". */
export function baseWord(headword: string): string {
  const i = headword.indexOf('(');
  return i > 0 && headword.endsWith(')') ? headword.slice(0, i) : headword;
}

/** Split one dictionary line into headword and phones; undefined for blank or comment lines. */
export function parseDictLine(line: string): { headword: string; phones: string } | undefined {
  const t = line.trim();
  if (!t || t.startsWith('#') || t.startsWith(';;;')) return undefined;
  const m = /^(\S+)\s+(.+)$/.exec(t);
  if (!m) return undefined;
  // Some dictionaries append "# comment" after the phones.
  const phones = (m[2] as string).replace(/\s+#.*$/, '').trim();
  return phones ? { headword: m[1] as string, phones } : undefined;
}

const MAX_CACHED_WORDS = 20_000;

export class PronunciationDictionary {
  /** word -> its entry lines ([] when the dictionary lacks it). */
  private readonly cache = new Map<string, string[]>();
  private phoneSet: Promise<string[]> | undefined;

  constructor(readonly path: string) {}

  /** Every phone the dictionary uses (the acoustic model's phone set, minus fillers). */
  phones(): Promise<string[]> {
    this.phoneSet ??= readFile(this.path, 'utf8').then((text) => {
      const set = new Set<string>();
      for (const line of text.split('\n')) {
        const e = parseDictLine(line);
        if (e) for (const p of e.phones.split(/\s+/)) set.add(p);
      }
      return [...set].sort();
    });
    this.phoneSet.catch(() => {
      this.phoneSet = undefined;
    });
    return this.phoneSet;
  }

  /** Entry lines for each requested word ([] for unknown words). */
  async lookup(words: Iterable<string>): Promise<Map<string, string[]>> {
    const wanted = new Set(words);
    const missing = [...wanted].filter((w) => !this.cache.has(w));
    if (missing.length > 0) {
      if (this.cache.size + missing.length > MAX_CACHED_WORDS) this.cache.clear();
      const found = new Map<string, string[]>(missing.map((w) => [w, []]));
      const text = await readFile(this.path, 'utf8');
      for (const line of text.split('\n')) {
        const e = parseDictLine(line);
        if (!e) continue;
        const entries = found.get(baseWord(e.headword));
        if (entries) entries.push(`${e.headword} ${e.phones}`);
      }
      for (const [w, entries] of found) this.cache.set(w, entries);
    }
    const out = new Map<string, string[]>();
    for (const w of wanted) out.set(w, this.cache.get(w) ?? []);
    return out;
  }
}

/** Stable short hash of strings, for content-addressed cache file names. */
export function hashOf(...parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Identity of a file for cache keys: path, size and modification time. */
export async function fileIdentity(path: string): Promise<string> {
  const s = await stat(path);
  return `${path}:${s.size}:${Math.round(s.mtimeMs)}`;
}

/** Write `content` to `dir/name` unless it is already there; atomic (temp file + rename). */
export async function writeCached(dir: string, name: string, content: string | (() => Promise<string>)): Promise<string> {
  const target = join(dir, name);
  try {
    await stat(target);
    return target;
  } catch {
    // not cached yet
  }
  await mkdir(dir, { recursive: true });
  const body = typeof content === 'string' ? content : await content();
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, body, 'utf8');
  await rename(tmp, target);
  return target;
}

/** A dictionary file holding exactly `entries` (lines as `lookup` returns them). */
export async function writeCompactDictionary(dir: string, entries: Iterable<string>): Promise<string> {
  const lines = [...new Set(entries)].sort();
  const body = `${lines.join('\n')}\n`;
  return writeCached(dir, `pocketsphinx-${hashOf(body)}.dict`, body);
}

/**
 * `dictPath` restricted to the words of `vocabulary` (an N-gram model's unigrams), cached
 * in `dir` under a name derived from both files' identities.
 */
export async function writeTrimmedDictionary(dir: string, dictPath: string, cacheKey: string, vocabulary: () => Promise<ReadonlySet<string>>): Promise<string> {
  return writeCached(dir, `pocketsphinx-trimmed-${hashOf(cacheKey)}.dict`, async () => {
    const vocab = await vocabulary();
    const text = await readFile(dictPath, 'utf8');
    const kept: string[] = [];
    for (const line of text.split('\n')) {
      const e = parseDictLine(line);
      if (e && vocab.has(baseWord(e.headword))) kept.push(`${e.headword} ${e.phones}`);
    }
    return `${kept.join('\n')}\n`;
  });
}
