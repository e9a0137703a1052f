/**
 * A small Prometheus registry: counters, gauges and summaries-with-quantiles, with labels,
 * rendered in the text exposition format. Kept in-house because the engine needs only this.
 */
export type Labels = Record<string, string>;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`).join(',');
}

/** HELP text: backslash and newline escaped, as the exposition format requires. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

interface Metric {
  readonly name: string;
  readonly help: string;
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return lines;
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} gauge`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${v}`);
    return lines;
  }
}

/** Keeps the last `window` observations per label set and reports quantiles over them. */
export class Summary implements Metric {
  private readonly series = new Map<string, { recent: number[]; count: number; sum: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly window = 1024,
    private readonly quantiles: readonly number[] = [0.5, 0.95, 0.99],
  ) {}
  observe(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { recent: [], count: 0, sum: 0 };
      this.series.set(k, s);
    }
    s.count++;
    s.sum += value;
    s.recent.push(value);
    if (s.recent.length > this.window) s.recent.shift();
  }
  quantile(q: number, labels?: Labels): number | undefined {
    const s = this.series.get(labelKey(labels));
    return s ? quantile(s.recent, q) : undefined;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} summary`];
    for (const [k, s] of this.series) {
      for (const q of this.quantiles) {
        const lbl = k ? `${k},quantile="${q}"` : `quantile="${q}"`;
        lines.push(`${this.name}{${lbl}} ${quantile(s.recent, q) ?? 'NaN'}`);
      }
      lines.push(`${this.name}_sum${k ? `{${k}}` : ''} ${s.sum}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return lines;
  }
}

/** Nearest-rank quantile of an unsorted sample (undefined when empty). */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.register(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.register(new Gauge(name, help));
  }
  summary(name: string, help: string, window?: number): Summary {
    return this.register(new Summary(name, help, window));
  }

  /** A summary whose quantiles come from `source` at scrape time (e.g. a histogram kept elsewhere). */
  quantileView(name: string, help: string, source: () => { count: number; sum: number; quantile(q: number): number }): void {
    this.register({
      name,
      help,
      render: () => {
        const src = source();
        const lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} summary`];
        for (const q of [0.5, 0.95, 0.99]) lines.push(`${name}{quantile="${q}"} ${src.count > 0 ? src.quantile(q) : 'NaN'}`);
        lines.push(`${name}_sum ${src.sum}`, `${name}_count ${src.count}`);
        return lines;
      },
    });
  }

  /** A gauge read from `source` at scrape time (e.g. a queue length kept elsewhere). */
  gaugeView(name: string, help: string, source: () => number): void {
    this.register({ name, help, render: () => [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} gauge`, `${name} ${source()}`] });
  }

  private register<M extends Metric>(m: M): M {
    const existing = this.metrics.get(m.name);
    if (existing) {
      if (existing.constructor !== m.constructor || existing.constructor === Object) throw new Error(`metric ${m.name} registered twice with different types`);
      return existing as M;
    }
    this.metrics.set(m.name, m);
    return m;
  }

  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) out.push(...m.render());
    return `${out.join('\n')}\n`;
  }
}
