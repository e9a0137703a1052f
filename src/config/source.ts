/**
 * Where a config path is written in the YAML file. The parsed Document keeps every node's
 * source range; a LineCounter turns offsets into line:column. A key that came from a merge
 * (`<<: *anchor`) maps to where it is written in the anchor; a path that is not in the file
 * (a missing key) maps to its nearest written parent.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { ConfigProblem } from './errors.js';
import { issuePath } from './zod-issues.js';

export type ConfigPath = readonly (string | number)[];

export interface SourcePosition {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** False when the path itself is not in the file and this is its nearest parent. */
  exact: boolean;
}

export interface ConfigSource {
  /** The file as the user named it. */
  readonly file: string;
  locate(path: ConfigPath): SourcePosition | undefined;
}

/** The key of a map entry as config paths spell it. */
export function keyOf(pair: Pair): string | undefined {
  const k = pair.key;
  if (isScalar(k)) return typeof k.value === 'symbol' ? undefined : String(k.value);
  return k === null || k === undefined ? '' : undefined;
}

/** The entry for `key` in `map`, or in the maps it merges (`<<: *anchor`), where it is written. */
function findPair(doc: Document, map: YAMLMap, key: string, depth = 0): Pair | undefined {
  const own = map.items.find((p) => keyOf(p) === key);
  if (own || depth > 8) return own;
  for (const p of map.items) {
    if (!isScalar(p.key) || typeof p.key.value !== 'symbol') continue;
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const src of sources) {
      const target = isAlias(src) ? src.resolve(doc) : src;
      const found = isMap(target) ? findPair(doc, target, key, depth + 1) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as { range?: readonly number[] } | null | undefined)?.range;
  return r ? r[0] : undefined;
}

export function createSource(file: string, doc: Document, lineCounter: LineCounter): ConfigSource {
  const position = (offset: number, exact: boolean): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col, exact };
  };
  return Object.freeze({
    file,
    locate(path: ConfigPath): SourcePosition | undefined {
      let node: unknown = doc.contents;
      let offset = rangeStart(node);
      for (let i = 0; i < path.length; i++) {
        const seg = path[i];
        if (isAlias(node)) node = node.resolve(doc);
        let next: { at: number | undefined; value: unknown } | undefined;
        if (isMap(node)) {
          const pair = findPair(doc, node, String(seg));
          if (pair) next = { at: rangeStart(pair.key) ?? rangeStart(pair.value), value: pair.value };
        } else if (isSeq(node) && typeof seg === 'number') {
          const item = node.items[seg];
          if (item !== undefined) next = { at: rangeStart(item), value: item };
        }
        if (!next) return offset === undefined ? undefined : position(offset, false);
        if (next.at !== undefined) offset = next.at;
        node = next.value;
      }
      return offset === undefined ? undefined : position(offset, true);
    },
  });
}

/** Every node of the document with its config path, aliases not followed (each node is visited where it is written). */
export function* walkNodes(node: unknown, path: ConfigPath = []): Generator<{ node: Node; path: ConfigPath }> {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = keyOf(pair);
      if (key === undefined) continue; // merge key `<<` (its value is an alias) or a complex key
      yield* walkNodes(pair.value, [...path, key]);
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) yield* walkNodes(node.items[i], [...path, i]);
  } else if (isScalar(node)) {
    yield { node, path };
  }
}

/** A problem whose path is still an array; `placeProblem` gives it its dotted path and position. */
export type PendingProblem = Omit<ConfigProblem, 'path' | 'line' | 'column'> & { at: ConfigPath };

export function placeProblem(source: ConfigSource | undefined, p: PendingProblem): ConfigProblem {
  const { at, ...rest } = p;
  const pos = source?.locate(at);
  return { ...rest, path: issuePath('', at), ...(pos ? { line: pos.line, column: pos.column } : {}) };
}
