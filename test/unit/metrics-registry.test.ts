/**
 * MetricsRegistry: counters, gauges, summaries and quantile views rendered in the Prometheus
 * text exposition format (checked line by line and by a strict parser of the format), label
 * ordering and escaping, summary windows, and what registering a name twice does. Also the
 * engine's own metric set renders as valid exposition text.
 */
import { describe, expect, it } from 'vitest';
import { createEngineMetrics } from '../../src/call/engine-metrics.js';
import { Counter, Gauge, MetricsRegistry, quantile, Summary } from '../../src/metrics/registry.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

/**
 * A strict reader of the text format (version 0.0.4): every line is a HELP, a TYPE or a
 * sample; each family's HELP and TYPE come once, before its samples; sample names belong to
 * the family (with _sum/_count for summaries); label values use only the three escapes.
 */
function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  let current: Family | undefined;
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(new RegExp(`^# HELP (${NAME}) (.*)$`)))) {
      const name = m[1] as string;
      expect(families.has(name), `HELP for ${name} twice`).toBe(false);
      current = { name, help: m[2] as string, type: '', samples: [] };
      families.set(name, current);
      continue;
    }
    if ((m = line.match(new RegExp(`^# TYPE (${NAME}) (counter|gauge|summary|histogram|untyped)$`)))) {
      expect(current?.name, `TYPE ${m[1]} not right after its HELP`).toBe(m[1]);
      expect(current?.type).toBe('');
      current!.type = m[2] as string;
      continue;
    }
    m = line.match(new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`));
    expect(m, `not a valid exposition line: ${JSON.stringify(line)}`).not.toBeNull();
    const [, name, labelText, valueText] = m as RegExpMatchArray;
    expect(current, `sample ${name} before any HELP`).toBeDefined();
    const fam = current!;
    const allowed = fam.type === 'summary' ? [fam.name, `${fam.name}_sum`, `${fam.name}_count`] : [fam.name];
    expect(allowed, `sample ${name} outside its family ${fam.name}`).toContain(name);
    const labels: Record<string, string> = {};
    if (labelText !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let pos = 0;
      while (pos < labelText.length) {
        re.lastIndex = pos;
        const lm = re.exec(labelText);
        expect(lm, `bad label set {${labelText}}`).not.toBeNull();
        const key = lm![1] as string;
        expect(labels[key], `label ${key} twice`).toBeUndefined();
        labels[key] = (lm![2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
    }
    expect(valueText).toMatch(/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)$/i);
    const value = valueText === 'NaN' ? Number.NaN : valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    fam.samples.push({ name: name as string, labels, value });
  }
  for (const f of families.values()) expect(f.type, `${f.name} has no TYPE`).not.toBe('');
  return families;
}

function lines(r: MetricsRegistry): string[] {
  return r.render().trimEnd().split('\n');
}

describe('Counter', () => {
  it('renders 0 before any increment, then one line per label set', () => {
    const r = new MetricsRegistry();
    const c = r.counter('switchboard_calls_total', 'Calls ended, by outcome');
    expect(lines(r)).toEqual(['# HELP switchboard_calls_total Calls ended, by outcome', '# TYPE switchboard_calls_total counter', 'switchboard_calls_total 0']);
    c.inc({ outcome: 'completed' });
    c.inc({ outcome: 'completed' });
    c.inc({ outcome: 'failed' }, 3);
    expect(lines(r)).toEqual([
      '# HELP switchboard_calls_total Calls ended, by outcome',
      '# TYPE switchboard_calls_total counter',
      'switchboard_calls_total{outcome="completed"} 2',
      'switchboard_calls_total{outcome="failed"} 3',
    ]);
    expect(c.get({ outcome: 'completed' })).toBe(2);
    expect(c.get({ outcome: 'nope' })).toBe(0);
    expect(c.get()).toBe(0);
  });

  it('an unlabelled series and label order: keys are sorted, so {a,b} and {b,a} are one series', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'x');
    c.inc();
    c.inc(undefined, 2.5);
    c.inc({ b: '2', a: '1' });
    c.inc({ a: '1', b: '2' });
    expect(c.get()).toBe(3.5);
    expect(c.get({ b: '2', a: '1' })).toBe(2);
    expect(lines(r).slice(2)).toEqual(['x_total 3.5', 'x_total{a="1",b="2"} 2']);
  });
});

describe('Gauge', () => {
  it('set, inc and dec per label set', () => {
    const r = new MetricsRegistry();
    const g = r.gauge('switchboard_calls_active', 'Calls currently in progress');
    expect(lines(r)[2]).toBe('switchboard_calls_active 0');
    g.set(5);
    g.inc();
    g.dec(undefined, 3);
    g.set(-2, { pool: 'a' });
    g.dec({ pool: 'a' });
    expect(g.get()).toBe(3);
    expect(g.get({ pool: 'a' })).toBe(-3);
    expect(lines(r)).toEqual([
      '# HELP switchboard_calls_active Calls currently in progress',
      '# TYPE switchboard_calls_active gauge',
      'switchboard_calls_active 3',
      'switchboard_calls_active{pool="a"} -3',
    ]);
  });
});

describe('Summary', () => {
  it('renders nearest-rank quantiles, sum and count; nothing but HELP/TYPE before the first observation', () => {
    const r = new MetricsRegistry();
    const s = r.summary('switchboard_turn_latency_ms', 'Turn latency');
    expect(lines(r)).toEqual(['# HELP switchboard_turn_latency_ms Turn latency', '# TYPE switchboard_turn_latency_ms summary']);
    for (let v = 1; v <= 100; v++) s.observe(v);
    expect(lines(r).slice(2)).toEqual([
      'switchboard_turn_latency_ms{quantile="0.5"} 50',
      'switchboard_turn_latency_ms{quantile="0.95"} 95',
      'switchboard_turn_latency_ms{quantile="0.99"} 99',
      'switchboard_turn_latency_ms_sum 5050',
      'switchboard_turn_latency_ms_count 100',
    ]);
    expect(s.quantile(0.5)).toBe(50);
    expect(s.quantile(0.5, { other: 'series' })).toBeUndefined();
  });

  it('puts the quantile label after the series labels', () => {
    const r = new MetricsRegistry();
    const s = r.summary('lat_ms', 'l');
    s.observe(7, { provider: 'deepgram' });
    expect(lines(r).slice(2)).toEqual([
      'lat_ms{provider="deepgram",quantile="0.5"} 7',
      'lat_ms{provider="deepgram",quantile="0.95"} 7',
      'lat_ms{provider="deepgram",quantile="0.99"} 7',
      'lat_ms_sum{provider="deepgram"} 7',
      'lat_ms_count{provider="deepgram"} 1',
    ]);
  });

  it('quantiles cover the last `window` observations; sum and count cover all', () => {
    const s = new Summary('w_ms', 'w', 4);
    for (const v of [1000, 1000, 1000, 1, 2, 3, 4]) s.observe(v);
    expect(s.quantile(0.99)).toBe(4);
    expect(s.quantile(0.5)).toBe(2);
    expect(s.render()).toContain('w_ms_count 7');
    expect(s.render()).toContain('w_ms_sum 3010');
  });

  it('quantile() is nearest-rank and independent of input order', () => {
    expect(quantile([], 0.5)).toBeUndefined();
    expect(quantile([42], 0)).toBe(42);
    expect(quantile([42], 1)).toBe(42);
    const xs = [9, 1, 8, 2, 7, 3, 6, 4, 5, 10];
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile(xs, 0.1)).toBe(1);
    expect(quantile(xs, 0.11)).toBe(2);
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0.9)).toBe(9);
    expect(quantile(xs, 0.95)).toBe(10);
    expect(quantile(xs, 1)).toBe(10);
    expect(xs).toEqual([9, 1, 8, 2, 7, 3, 6, 4, 5, 10]); // not sorted in place
  });
});

describe('quantileView', () => {
  it('asks its source at every scrape; NaN quantiles while the source is empty', () => {
    const r = new MetricsRegistry();
    const data: number[] = [];
    r.quantileView('switchboard_rtp_send_deviation_ms', 'Outbound RTP send deviation', () => ({
      count: data.length,
      sum: data.reduce((a, b) => a + b, 0),
      quantile: (q) => quantile(data, q) ?? Number.NaN,
    }));
    expect(lines(r)).toEqual([
      '# HELP switchboard_rtp_send_deviation_ms Outbound RTP send deviation',
      '# TYPE switchboard_rtp_send_deviation_ms summary',
      'switchboard_rtp_send_deviation_ms{quantile="0.5"} NaN',
      'switchboard_rtp_send_deviation_ms{quantile="0.95"} NaN',
      'switchboard_rtp_send_deviation_ms{quantile="0.99"} NaN',
      'switchboard_rtp_send_deviation_ms_sum 0',
      'switchboard_rtp_send_deviation_ms_count 0',
    ]);
    data.push(0.5, 1.5, 0.25);
    expect(lines(r).slice(2)).toEqual([
      'switchboard_rtp_send_deviation_ms{quantile="0.5"} 0.5',
      'switchboard_rtp_send_deviation_ms{quantile="0.95"} 1.5',
      'switchboard_rtp_send_deviation_ms{quantile="0.99"} 1.5',
      'switchboard_rtp_send_deviation_ms_sum 2.25',
      'switchboard_rtp_send_deviation_ms_count 3',
    ]);
    parseExposition(r.render());
  });
});

describe('label escaping', () => {
  it('escapes backslash, double quote and newline in label values, and the parser reads them back', () => {
    const r = new MetricsRegistry();
    const c = r.counter('switchboard_ari_events_unknown_total', 'Unknown events, by type');
    const nasty = ['back\\slash', 'quote"d', 'new\nline', '\\"\n', 'plain {curly}, comma=eq', 'ünï'];
    nasty.forEach((type, i) => c.inc({ type }, i + 1));
    const text = r.render();
    expect(text).toContain('switchboard_ari_events_unknown_total{type="back\\\\slash"} 1');
    expect(text).toContain('switchboard_ari_events_unknown_total{type="quote\\"d"} 2');
    expect(text).toContain('switchboard_ari_events_unknown_total{type="new\\nline"} 3');
    expect(text).toContain('switchboard_ari_events_unknown_total{type="\\\\\\"\\n"} 4');
    // No raw newline inside a sample line.
    expect(text.split('\n').filter((l) => l.length > 0 && !l.startsWith('#')).length).toBe(nasty.length);
    const fam = parseExposition(text).get('switchboard_ari_events_unknown_total');
    expect(fam?.samples.map((s) => s.labels.type)).toEqual(nasty);
    expect(fam?.samples.map((s) => s.value)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('escaped values stay distinct series', () => {
    const c = new Counter('c_total', 'c');
    c.inc({ v: 'a"b' });
    c.inc({ v: 'a\\"b' });
    expect(c.get({ v: 'a"b' })).toBe(1);
    expect(c.get({ v: 'a\\"b' })).toBe(1);
    expect(c.render()).toHaveLength(4);
  });
});

describe('HELP text', () => {
  // Was a bug (fixed): the text format requires `\\` and `\n` in HELP docstrings to be
  // escaped; the registry writes help verbatim, so a help string with a newline (e.g. from a
  // plugin) splits into a line that is neither a comment nor a sample and breaks the scrape.
  it('escapes backslash and newline in help strings', () => {
    const r = new MetricsRegistry();
    r.counter('plugin_requests_total', 'Requests to the CRM\nby endpoint, see C:\\docs');
    r.gauge('plugin_queue', 'Queue depth\nper tenant');
    const fams = parseExposition(r.render());
    expect(fams.get('plugin_requests_total')?.help).toBe('Requests to the CRM\\nby endpoint, see C:\\\\docs');
  });
});

describe('registration', () => {
  it('registering a name again with the same type returns the same metric', () => {
    const r = new MetricsRegistry();
    const a = r.counter('dup_total', 'first help');
    const b = r.counter('dup_total', 'second help');
    expect(b).toBe(a);
    a.inc();
    expect(b.get()).toBe(1);
    expect(r.gauge('g', 'g')).toBe(r.gauge('g', 'g'));
    expect(r.summary('s', 's')).toBe(r.summary('s', 's'));
    // Rendered once, with the first help text.
    expect(r.render().match(/# HELP dup_total/g)).toHaveLength(1);
    expect(r.render()).toContain('# HELP dup_total first help');
  });

  it('the same name with another type throws', () => {
    const r = new MetricsRegistry();
    r.counter('m', 'm');
    expect(() => r.gauge('m', 'm')).toThrow(/registered twice/);
    expect(() => r.summary('m', 'm')).toThrow(/registered twice/);
    const src = () => ({ count: 0, sum: 0, quantile: () => 0 });
    expect(() => r.quantileView('m', 'm', src)).toThrow(/registered twice/);
    r.quantileView('v', 'v', src);
    // A view has no instance to share: registering it (or anything) again under its name throws.
    expect(() => r.quantileView('v', 'v', src)).toThrow(/registered twice/);
    expect(() => r.counter('v', 'v')).toThrow(/registered twice/);
    expect(() => r.summary('v', 'v')).toThrow(/registered twice/);
    // The failed registrations left the registry as it was.
    const fams = parseExposition(r.render());
    expect([...fams.keys()]).toEqual(['m', 'v']);
    expect(fams.get('m')?.type).toBe('counter');
  });

  it('renders families in registration order', () => {
    const r = new MetricsRegistry();
    r.gauge('b_gauge', 'b');
    r.counter('a_total', 'a');
    r.summary('c_ms', 'c').observe(1);
    expect([...parseExposition(r.render()).keys()]).toEqual(['b_gauge', 'a_total', 'c_ms']);
  });

  it('an empty registry renders a lone newline', () => {
    expect(new MetricsRegistry().render()).toBe('\n');
  });

  it('class instances are what the registry hands out', () => {
    const r = new MetricsRegistry();
    expect(r.counter('c', 'c')).toBeInstanceOf(Counter);
    expect(r.gauge('g', 'g')).toBeInstanceOf(Gauge);
    expect(r.summary('s', 's')).toBeInstanceOf(Summary);
  });
});

describe('the engine metric set', () => {
  it('creates once per registry, and every family renders as valid exposition text', () => {
    const r = new MetricsRegistry();
    const m = createEngineMetrics(r);
    expect(createEngineMetrics(r).callsTotal).toBe(m.callsTotal);
    m.callsActive.set(2);
    m.callsTotal.inc({ outcome: 'caller_hangup' });
    m.rtpDropped.inc({ reason: 'wrong_source' }, 4);
    m.turnLatency.observe(812.5);
    m.bargeInReaction.observe(140);
    m.agentErrors.inc({ agent: 'echo' });
    m.ariEventsUnknown.inc({ type: 'ChannelDtmfReceived(bad digit)' });
    const fams = parseExposition(r.render());
    expect(fams.size).toBe(Object.keys(m).length);
    expect(fams.get('switchboard_turn_latency_ms')?.samples.find((s) => s.labels.quantile === '0.5')?.value).toBe(812.5);
    expect(fams.get('switchboard_rtp_dropped_total')?.samples).toEqual([{ name: 'switchboard_rtp_dropped_total', labels: { reason: 'wrong_source' }, value: 4 }]);
    expect(fams.get('switchboard_ari_events_unknown_total')?.samples[0]?.labels.type).toBe('ChannelDtmfReceived(bad digit)');
    for (const f of fams.values()) expect(f.name).toMatch(/^switchboard_/);
  });
});
