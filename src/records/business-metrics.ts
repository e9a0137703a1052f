/**
 * Business metrics from the call records, on the registry /metrics renders:
 *
 *   switchboard_call_records_total{outcome}          records completed (resolved, transferred, abandoned, failed)
 *   switchboard_containment_ratio                    resolved / all records since this process started
 *   switchboard_transfers_total{reason}              transfers to a human, by reason
 *   switchboard_tool_errors_total{tool,failure}      failed tool calls (refused, invalid, timeout, error, aborted)
 *   switchboard_handle_time_seconds                  call duration (summary: quantiles over recent calls)
 *   switchboard_records_journal_backlog              records journalled but not yet in PostgreSQL
 *
 * Fed by CallRecords.onRecord (each record once it is durable). Label values come from the
 * model (a transfer reason is free text; a tool name is what the model asked for), so they
 * are normalised to short slugs and capped in number: past the cap a new value counts as
 * "other", so a chatty model cannot blow up the series count. No personal data is a label.
 */
import type { MetricsRegistry } from '../metrics/registry.js';
import { RECORD_OUTCOMES, type CallRecord, type CallRecords } from './types.js';

/** Distinct values kept per label before new ones count as "other". */
export const MAX_LABEL_VALUES = 32;
const MAX_LABEL_LENGTH = 48;

/** A label value: lowercase letters, digits and "_", at most MAX_LABEL_LENGTH long. */
export function labelSlug(text: string | undefined, fallback = 'unknown'): string {
  const slug = (text ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, MAX_LABEL_LENGTH)
    .replace(/_+$/, '');
  return slug === '' ? fallback : slug;
}

/**
 * A transfer reason as a label: reasons are free text (a scenario's `transfer_reason`, the
 * model's `transfer_call` reason), and /metrics is unauthenticated, so only a short category
 * (at most five words, no digits or "@") becomes a label; anything longer or more specific
 * (a name, an order number, an address) is counted as "other".
 */
export function transferReasonLabel(reason: string | undefined): string {
  if (reason === undefined || reason.trim() === '') return 'unspecified';
  if (/[0-9@]/.test(reason) || reason.trim().split(/\s+/).length > 5 || reason.length > MAX_LABEL_LENGTH) return 'other';
  return labelSlug(reason, 'unspecified');
}

/** Caps the number of distinct values a label takes. */
class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max = MAX_LABEL_VALUES) {}
  value(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(v);
    return v;
  }
}

export interface BusinessMetrics {
  /** Count one completed record (what onRecord calls). */
  observe(record: CallRecord): void;
  /** Records counted since start. */
  readonly records: number;
}

/**
 * Registers the business metrics on `registry`; with `records`, subscribes to its records and
 * exports its journal backlog.
 */
export function createBusinessMetrics(registry: MetricsRegistry, records?: Pick<CallRecords, 'onRecord' | 'backlog'>): BusinessMetrics {
  const byOutcome = registry.counter('switchboard_call_records_total', 'Call records completed, by outcome (resolved, transferred, abandoned, failed)');
  const containment = registry.gauge('switchboard_containment_ratio', 'Calls resolved without a human / all calls recorded since start (0 before the first call)');
  const transfers = registry.counter('switchboard_transfers_total', 'Calls transferred to a human, by reason');
  const toolErrors = registry.counter('switchboard_tool_errors_total', 'Failed tool calls, by tool and failure (refused, invalid, timeout, error, aborted)');
  const handleTime = registry.summary('switchboard_handle_time_seconds', 'Call handle time (answer to hang-up), seconds');
  if (records) registry.gaugeView('switchboard_records_journal_backlog', 'Call records in the local journal not yet written to PostgreSQL', () => records.backlog());
  // Every outcome is present from the start, so rate() and ratios work before the first call.
  for (const outcome of RECORD_OUTCOMES) byOutcome.inc({ outcome }, 0);

  const reasons = new BoundedLabel();
  const tools = new BoundedLabel();
  const failures = new BoundedLabel(8);
  let total = 0;
  let resolved = 0;

  const metrics: BusinessMetrics = {
    get records() {
      return total;
    },
    observe(record) {
      total++;
      if (record.outcome === 'resolved') resolved++;
      byOutcome.inc({ outcome: record.outcome });
      containment.set(resolved / total);
      if (record.outcome === 'transferred') transfers.inc({ reason: reasons.value(transferReasonLabel(record.transfer?.reason)) });
      for (const turn of record.turns) {
        for (const call of turn.toolCalls) {
          if (call.ok) continue;
          toolErrors.inc({ tool: tools.value(labelSlug(call.name)), failure: failures.value(labelSlug(call.failure, 'error')) });
        }
      }
      if (Number.isFinite(record.durationMs) && record.durationMs >= 0) handleTime.observe(record.durationMs / 1000);
    },
  };
  records?.onRecord((r) => metrics.observe(r));
  return metrics;
}
