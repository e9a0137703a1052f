/** Parse the Prometheus text exposition format (what Switchboard's /metrics serves). */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] as string, labels, value: m[3] === 'NaN' ? Number.NaN : Number(m[3]) });
  }
  return out;
}

/** Query helpers over one scrape. */
export class Scrape {
  constructor(readonly samples: Sample[]) {}

  static parse(text: string): Scrape {
    return new Scrape(parsePrometheus(text));
  }

  /** Sum of every series of `name` whose labels include `match`. */
  sum(name: string, match: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name || !Number.isFinite(s.value)) continue;
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }

  /** Values of `name` by the value of label `by`. */
  by(name: string, by: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (s.name === name && s.labels[by] !== undefined) out[s.labels[by]] = (out[s.labels[by]] ?? 0) + s.value;
    }
    return out;
  }

  /** A summary's quantile (q as written, e.g. "0.99"); undefined when absent or NaN. */
  quantile(name: string, q: string): number | undefined {
    const s = this.samples.find((x) => x.name === name && x.labels.quantile === q);
    return s && Number.isFinite(s.value) ? s.value : undefined;
  }
}
