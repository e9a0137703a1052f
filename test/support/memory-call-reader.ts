/**
 * An in-memory CallRecordReader for tests of the readers' clients (the HTTP API handler, the
 * CLI): it lists, filters and counts like the store, remembers what it was last asked, and
 * throws `fail` once when set.
 */
import { RECORD_OUTCOMES, type CallListItem, type CallListQuery, type CallRecord, type CallRecordReader, type CallStats } from '../../src/records/types.js';

export class MemoryCallReader implements CallRecordReader {
  records: CallRecord[] = [];
  lastQuery: CallListQuery | undefined;
  lastRange: { since?: string; until?: string } | undefined;
  fail: Error | undefined;

  constructor(records: CallRecord[] = []) {
    this.records = records;
  }

  private check(): void {
    const f = this.fail;
    this.fail = undefined;
    if (f !== undefined) throw f;
  }

  async list(query: CallListQuery = {}): Promise<CallListItem[]> {
    this.check();
    this.lastQuery = query;
    return [...this.records]
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
      .filter((r) => (!query.outcome || r.outcome === query.outcome) && (!query.agent || r.agent === query.agent))
      .filter((r) => (!query.callerNumber || r.callerNumber === query.callerNumber) && (!query.before || r.startedAt < query.before) && (!query.since || r.startedAt >= query.since))
      .slice(0, query.limit ?? 50)
      .map((r) => ({ callId: r.callId, callerNumber: r.callerNumber, agent: r.agent, startedAt: r.startedAt, durationMs: r.durationMs, outcome: r.outcome, turns: r.turns.length, summary: r.summary }));
  }

  async get(callId: string): Promise<CallRecord | undefined> {
    this.check();
    return this.records.find((r) => r.callId === callId);
  }

  async stats(range: { since?: string; until?: string } = {}): Promise<CallStats> {
    this.check();
    this.lastRange = range;
    const rs = this.records.filter((r) => (!range.since || r.startedAt >= range.since) && (!range.until || r.startedAt < range.until));
    const byOutcome = Object.fromEntries(RECORD_OUTCOMES.map((o) => [o, rs.filter((r) => r.outcome === o).length])) as CallStats['byOutcome'];
    const tools = rs.flatMap((r) => r.turns.flatMap((t) => t.toolCalls));
    const transfersByReason: Record<string, number> = {};
    for (const r of rs) if (r.transfer) transfersByReason[r.transfer.reason] = (transfersByReason[r.transfer.reason] ?? 0) + 1;
    const toolErrorsByTool: Record<string, number> = {};
    for (const t of tools) if (!t.ok) toolErrorsByTool[t.name] = (toolErrorsByTool[t.name] ?? 0) + 1;
    return {
      ...range,
      calls: rs.length,
      byOutcome,
      containmentRate: rs.length ? byOutcome.resolved / rs.length : 0,
      transfersByReason,
      toolCalls: tools.length,
      toolErrors: tools.filter((t) => !t.ok).length,
      toolErrorsByTool,
      averageHandleTimeMs: rs.length ? rs.reduce((a, r) => a + r.durationMs, 0) / rs.length : 0,
    };
  }
}
