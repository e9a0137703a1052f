/**
 * Business metrics from call records (src/records/business-metrics.ts), as /metrics renders
 * them: records by outcome, containment ratio, transfers by reason, tool errors by tool and
 * failure, handle time, the journal backlog; label values from the model are bounded.
 */
import { expect, test } from 'vitest';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { createBusinessMetrics, labelSlug, MAX_LABEL_VALUES, transferReasonLabel } from '../../src/records/business-metrics.js';
import type { CallRecord, RecordedToolCall, RecordOutcome } from '../../src/records/types.js';

function toolCall(name: string, ok: boolean, failure?: string): RecordedToolCall {
  return { id: `t-${name}`, name, arguments: {}, ok, result: ok ? { ok: true } : 'boom', ...(ok ? {} : { error: 'boom', failure }), durationMs: 5, at: '2030-01-01T00:00:01.000Z' };
}

function record(outcome: RecordOutcome, durationMs: number, extra: Partial<CallRecord> = {}): CallRecord {
  return {
    callId: `c-${Math.random()}`,
    channelId: 'ch',
    callerNumber: '+12025550143',
    callerName: 'Maria',
    agent: 'support',
    startedAt: '2030-01-01T00:00:00.000Z',
    endedAt: '2030-01-01T00:00:10.000Z',
    durationMs,
    outcome,
    endReason: 'caller_hangup',
    turns: [],
    summary: '',
    variables: {},
    bargeIns: 0,
    ...extra,
  };
}

/** The value of one series in the rendered text (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('every record moves the counters; the ratio is resolved / all since start', () => {
  const registry = new MetricsRegistry();
  const listeners: ((r: CallRecord) => void)[] = [];
  let backlog = 3;
  const m = createBusinessMetrics(registry, { onRecord: (l) => listeners.push(l), backlog: () => backlog });
  const emit = (r: CallRecord): void => listeners.forEach((l) => l(r));

  let text = registry.render();
  expect(sample(text, 'switchboard_call_records_total{outcome="resolved"}')).toBe(0);
  expect(sample(text, 'switchboard_call_records_total{outcome="failed"}')).toBe(0);
  expect(sample(text, 'switchboard_containment_ratio')).toBe(0);
  expect(sample(text, 'switchboard_records_journal_backlog')).toBe(3);
  expect(text).toContain('# TYPE switchboard_handle_time_seconds summary');

  emit(record('resolved', 30_000, { turns: [{ turn: 1, completed: true, bargedIn: false, toolCalls: [toolCall('get_order_status', true)], errors: [], startedAt: '' }] }));
  emit(record('resolved', 60_000));
  emit(
    record('transferred', 90_000, {
      transfer: { destination: 'operator', reason: 'Caller has a complaint!' },
      turns: [
        {
          turn: 1,
          completed: true,
          bargedIn: false,
          toolCalls: [toolCall('create_ticket', false, 'timeout'), toolCall('create_ticket', false, 'timeout'), toolCall('lookup', false)],
          errors: [],
          startedAt: '',
        },
      ],
    }),
  );
  emit(record('abandoned', 0));
  backlog = 0;

  expect(m.records).toBe(4);
  text = registry.render();
  expect(sample(text, 'switchboard_call_records_total{outcome="resolved"}')).toBe(2);
  expect(sample(text, 'switchboard_call_records_total{outcome="transferred"}')).toBe(1);
  expect(sample(text, 'switchboard_call_records_total{outcome="abandoned"}')).toBe(1);
  expect(sample(text, 'switchboard_containment_ratio')).toBe(0.5);
  expect(sample(text, 'switchboard_transfers_total{reason="caller_has_a_complaint"}')).toBe(1);
  expect(sample(text, 'switchboard_tool_errors_total{failure="timeout",tool="create_ticket"}')).toBe(2);
  expect(sample(text, 'switchboard_tool_errors_total{failure="error",tool="lookup"}')).toBe(1);
  expect(text).not.toContain('tool="get_order_status"');
  expect(sample(text, 'switchboard_handle_time_seconds_count')).toBe(4);
  expect(sample(text, 'switchboard_handle_time_seconds_sum')).toBe(180);
  expect(sample(text, 'switchboard_handle_time_seconds{quantile="0.5"}')).toBe(30);
  expect(sample(text, 'switchboard_records_journal_backlog')).toBe(0);
  // No personal data in any label.
  expect(text).not.toContain('2025550143');
  expect(text).not.toContain('Maria');
});

test('label values from the model are slugs, and capped in number', () => {
  expect(labelSlug('  Caller asked: "a HUMAN, now" ')).toBe('caller_asked_a_human_now');
  expect(labelSlug(undefined)).toBe('unknown');
  // Transfer reasons are free text: only a short category becomes a label (no names, numbers).
  expect(transferReasonLabel('caller asked for a person')).toBe('caller_asked_for_a_person');
  expect(transferReasonLabel('Jane Doe wants a refund for order 12345')).toBe('other');
  expect(transferReasonLabel('customer jane@example.com')).toBe('other');
  expect(transferReasonLabel(undefined)).toBe('unspecified');
  expect(labelSlug('!!!')).toBe('unknown');
  expect(labelSlug('x'.repeat(100))).toHaveLength(48);

  const registry = new MetricsRegistry();
  const m = createBusinessMetrics(registry);
  for (let i = 0; i < MAX_LABEL_VALUES + 10; i++) m.observe(record('transferred', 1000, { transfer: { destination: 'operator', reason: `reason ${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}` } }));
  const series = registry
    .render()
    .split('\n')
    .filter((l) => l.startsWith('switchboard_transfers_total{'));
  expect(series).toHaveLength(MAX_LABEL_VALUES + 1);
  expect(sample(registry.render(), 'switchboard_transfers_total{reason="other"}')).toBe(10);
  // Without a records service there is no backlog gauge.
  expect(registry.render()).not.toContain('switchboard_records_journal_backlog');
});
