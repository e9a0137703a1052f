/**
 * Text output of `switchboard calls`: the list as a table, one call as a readable two-sided
 * transcript (summary and outcome on top; per turn who said what, what a barge-in cut off,
 * tool calls with arguments and results, latency), and the stats as a short report.
 */
import { formatDuration } from '../records/summary.js';
import { RECORD_OUTCOMES, type CallListItem, type CallRecord, type CallStats, type RecordedToolCall } from '../records/types.js';

/** At most `max` characters on one line ("…" when cut). */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1)).trimEnd()}…`;
}

/** "2025-01-31 09:00:05Z" (UTC, to the second). */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

function json(value: unknown, max: number): string {
  let text: string;
  try {
    text = value === undefined ? 'undefined' : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return clip(text ?? String(value), max);
}

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd();
}

function formatListText(calls: readonly CallListItem[], opts: { width?: number } = {}): string {
  if (calls.length === 0) return 'No calls recorded (matching these filters).';
  const header = ['STARTED (UTC)', 'CALL ID', 'CALLER', 'AGENT', 'DURATION', 'OUTCOME', 'TURNS', 'SUMMARY'];
  const rows = calls.map((c) => [
    formatTime(c.startedAt),
    c.callId,
    c.callerNumber || '(withheld)',
    c.agent,
    formatDuration(c.durationMs),
    c.outcome,
    String(c.turns),
    c.summary,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const used = widths.slice(0, -1).reduce((a, b) => a + b + 2, 0);
  const summaryWidth = Math.max(20, (opts.width ?? 160) - used);
  return [pad(header, widths), ...rows.map((r) => pad([...r.slice(0, -1), clip(r[r.length - 1] ?? '', summaryWidth)], widths))].join('\n');
}

function toolLine(t: RecordedToolCall): string {
  const args = json(t.arguments ?? {}, 160);
  const ms = `${Math.round(t.durationMs)} ms`;
  if (t.ok) return `${t.name} ${args} → ${json(t.result, 240)} (${ms})`;
  const why = t.failure ?? 'error';
  return `${t.name} ${args} ✗ ${why}${t.error ? `: ${clip(t.error, 200)}` : ''} (${ms})`;
}

/** Indents continuation lines of a labelled line. */
function labelled(label: string, text: string): string {
  return `  ${label.padEnd(8)}${text}`;
}

function formatRecordText(r: CallRecord): string {
  const lines: string[] = [];
  lines.push(`Call ${r.callId}: ${r.outcome.toUpperCase()}`);
  lines.push(`  summary   ${r.summary || '(none)'}`);
  const caller = r.callerNumber || '(withheld)';
  lines.push(`  caller    ${caller}${r.callerName && r.callerName !== r.callerNumber ? ` (${r.callerName})` : ''}${r.dialed ? `, dialled ${r.dialed}` : ''}`);
  lines.push(`  agent     ${r.agent}`);
  lines.push(`  time      ${formatTime(r.startedAt)} to ${formatTime(r.endedAt)} (${formatDuration(r.durationMs)}), ended: ${r.endReason}`);
  if (r.transfer) lines.push(`  transfer  to ${r.transfer.destination}: ${r.transfer.reason}`);
  if (r.bargeIns > 0) lines.push(`  barge-ins ${r.bargeIns}`);
  const vars = Object.entries(r.variables);
  if (vars.length > 0) lines.push(`  variables ${vars.map(([k, v]) => `${k}=${clip(v, 60)}`).join(', ')}`);
  lines.push(`  channel   ${r.channelId}`);

  const turns = [...r.turns].sort((a, b) => a.turn - b.turn);
  if (turns.length === 0) lines.push('', '(no turns recorded)');
  for (const t of turns) {
    lines.push('');
    const facts = [formatTime(t.startedAt).slice(11), ...(t.latencyMs !== undefined ? [`latency ${Math.round(t.latencyMs)} ms`] : []), ...(t.bargedIn ? ['barge-in'] : [])];
    lines.push(`turn ${t.turn}  [${facts.join(', ')}]`);
    if (t.callerText !== undefined) lines.push(labelled('caller:', t.callerText || '(nothing recognised)'));
    for (const call of t.toolCalls) lines.push(labelled('tool:', toolLine(call)));
    if (t.agentText !== undefined || t.agentPlayed !== undefined) {
      const said = t.agentText ?? t.agentPlayed ?? '';
      lines.push(labelled('agent:', said));
      if (!t.completed) {
        const played = (t.agentPlayed ?? '').trim();
        lines.push(labelled('', played ? `[cut off after: "${played}"]` : '[cut off before anything was heard]'));
      }
    }
    for (const e of t.errors) lines.push(labelled('error:', `${e.stage}: ${clip(e.error, 200)}`));
  }
  return lines.join('\n');
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function counts(map: Record<string, number>): string {
  const entries = Object.entries(map).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

function formatStatsText(s: CallStats): string {
  const range = s.since || s.until ? ` (${s.since ? `since ${formatTime(s.since)}` : ''}${s.since && s.until ? ', ' : ''}${s.until ? `until ${formatTime(s.until)}` : ''})` : ' (all recorded calls)';
  const lines = [
    `Calls               ${s.calls}${range}`,
    `Containment rate    ${percent(s.containmentRate)} (${s.byOutcome.resolved} resolved without a human)`,
    `By outcome          ${RECORD_OUTCOMES.map((o) => `${o} ${s.byOutcome[o] ?? 0}`).join(', ')}`,
    `Transfers by reason ${counts(s.transfersByReason)}`,
    `Tool calls          ${s.toolCalls}, errors ${s.toolErrors}${s.toolErrors > 0 ? ` (${counts(s.toolErrorsByTool)})` : ''}`,
    `Average handle time ${s.calls > 0 ? formatDuration(s.averageHandleTimeMs) : '-'}`,
  ];
  if (s.medianTurnLatencyMs !== undefined) lines.push(`Median turn latency ${Math.round(s.medianTurnLatencyMs)} ms`);
  return lines.join('\n');
}

/**
 * Caller names and numbers come from the network (a SIP display name) and tool results from
 * other systems: control characters (ESC, OSC sequences) must not reach an operator's terminal.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\ufffd');
}

export function formatList(calls: readonly CallListItem[], opts: { width?: number } = {}): string {
  return terminalSafe(formatListText(calls, opts));
}

export function formatRecord(r: CallRecord): string {
  return terminalSafe(formatRecordText(r));
}

export function formatStats(s: CallStats): string {
  return terminalSafe(formatStatsText(s));
}
