/**
 * `switchboard calls`: argument checking (each mistake named, exit 2) and the text output
 * (the list, the two-sided transcript of one call, the stats), without any server.
 */
import { describe, expect, test } from 'vitest';
import { formatList, formatRecord, formatStats } from '../../src/cli/calls-format.js';
import { parseCallsArgs, runCalls } from '../../src/cli/calls.js';
import type { CallRecord } from '../../src/records/types.js';
import { orderStatusCall } from '../support/call-record-fixtures.js';
import { MemoryCallReader } from '../support/memory-call-reader.js';

describe('arguments', () => {
  test('list with every filter, checked and normalised', () => {
    expect(parseCallsArgs(['list', '--limit', '5', '--outcome', 'transferred', '--since', '2030-01-01', '--before', '2030-01-02T10:00:00Z', '--agent', 'support', '--caller', '+12025550143', '--json'])).toEqual({
      sub: 'list',
      query: { limit: 5, outcome: 'transferred', since: '2030-01-01T00:00:00.000Z', before: '2030-01-02T10:00:00.000Z', agent: 'support', callerNumber: '+12025550143' },
      range: {},
      json: true,
    });
    expect(parseCallsArgs(['list']).query).toEqual({ limit: 50 });
  });

  test('show takes one id; stats a range; the record source flags', () => {
    expect(parseCallsArgs(['show', '1700000000.1', '--url', 'http://127.0.0.1:1234'])).toMatchObject({ sub: 'show', id: '1700000000.1', url: 'http://127.0.0.1:1234' });
    expect(parseCallsArgs(['stats', '--since', '2030-01-01', '--until', '2030-02-01', '--database', 'postgres://db/x'])).toMatchObject({
      sub: 'stats',
      range: { since: '2030-01-01T00:00:00.000Z', until: '2030-02-01T00:00:00.000Z' },
      database: 'postgres://db/x',
    });
  });

  test.each([
    [[], 'missing subcommand (list, show ID or stats)'],
    [['delete'], 'unknown subcommand "delete" (list, show ID or stats)'],
    [['show'], 'calls show needs a call id (see `switchboard calls list`)'],
    [['show', 'a', 'b'], 'calls show takes one call id (got 2)'],
    [['list', 'extra'], 'calls list takes no arguments (got "extra")'],
    [['list', '--limit', '0'], '--limit must be a whole number from 1 to 500'],
    [['list', '--limit', '501'], '--limit must be a whole number from 1 to 500'],
    [['list', '--outcome', 'won'], '--outcome must be one of resolved, transferred, abandoned, failed'],
    [['list', '--since', 'last week'], '--since must be an ISO 8601 date or time, e.g. 2025-01-31 or 2025-01-31T09:00:00Z'],
    [['list', '--until', '2030-01-01'], '--until is not an option of "calls list"'],
    [['show', 'x', '--limit', '3'], '--limit is not an option of "calls show"'],
    [['stats', '--outcome', 'resolved'], '--outcome is not an option of "calls stats"'],
    [['stats', '--since', '2030-02-01', '--until', '2030-01-01'], '--since must be earlier than --until'],
    [['list', '--url', 'ftp://host'], '--url must be an http:// or https:// URL'],
    [['list', '--url', 'not a url'], '--url must be a URL such as http://127.0.0.1:9464 (got "not a url")'],
    [['list', '--url', 'http://x', '--database', 'postgres://y'], 'give either --url or --database, not both'],
    [['list', '--colour'], "Unknown option '--colour'"],
  ])('%j: %s', (args, message) => {
    expect(() => parseCallsArgs(args)).toThrow(message);
  });
});

describe('output', () => {
  const { record } = orderStatusCall('1700000000.1', { caller: '+12025550143' });

  test('show: summary and outcome on top, then each turn with who said what, tool calls, latency and the cut-off', () => {
    const text = formatRecord(record);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Call 1700000000.1: RESOLVED');
    expect(lines[1]).toBe(`  summary   ${record.summary}`);
    expect(text).toContain('  caller    +12025550143, dialled 100');
    expect(text).toContain('ended: agent_hangup');
    expect(text).toContain('turn 3  [14:00:04Z, latency 703 ms, barge-in]\n  caller: three zero five five two\n');
    expect(text).toContain('  tool:   get_order_status {"order_id":30552} → {"order_id":30552,"status":"out for delivery","delivery_address":"301 Pine Avenue"} (12 ms)');
    expect(text).toContain(
      '  agent:  One moment please. Order 30552 is out for delivery. It should arrive today.\n          [cut off after: "One moment please. Order 30552 is out…"]',
    );
    expect(text).toContain('turn 4  [14:00:06Z, latency 655 ms]\n  caller: thanks that\'s all\n  tool:   end_call {"reason":"completed"} → {"ending":true} (12 ms)\n  agent:  Thank you for calling. Goodbye.');
    // A turn the caller did not cut has no cut-off line.
    expect(text.match(/cut off/g)).toHaveLength(1);
  });

  test('show: failed tools, errors, a transfer, and a reply cut before anything was heard', () => {
    const r: CallRecord = {
      ...record,
      outcome: 'transferred',
      transfer: { destination: 'operator', reason: 'complaint' },
      turns: [
        {
          turn: 1,
          callerText: 'I want to complain',
          agentText: 'I am sorry to hear that.',
          agentPlayed: '',
          completed: false,
          bargedIn: true,
          toolCalls: [{ id: 't', name: 'create_ticket', arguments: { topic: 'late' }, ok: false, result: null, error: 'CRM timed out', failure: 'timeout', durationMs: 5000, at: '2030-01-07T14:00:02.000Z' }],
          errors: [{ stage: 'tts', error: 'voice unavailable' }],
          startedAt: '2030-01-07T14:00:01.000Z',
        },
      ],
    };
    const text = formatRecord(r);
    expect(text).toContain('Call 1700000000.1: TRANSFERRED');
    expect(text).toContain('  transfer  to operator: complaint');
    expect(text).toContain('  tool:   create_ticket {"topic":"late"} ✗ timeout: CRM timed out (5000 ms)');
    expect(text).toContain('[cut off before anything was heard]');
    expect(text).toContain('  error:  tts: voice unavailable');
    expect(text).not.toContain('latency');
  });

  test('list: a table with the summary clipped to the width', () => {
    const items = [{ callId: '1700000000.1', callerNumber: '+12025550143', agent: 'support', startedAt: '2030-01-07T13:59:27.000Z', durationMs: 41_000, outcome: 'resolved' as const, turns: 4, summary: 'x'.repeat(300) }];
    const [header, row] = formatList(items, { width: 120 }).split('\n');
    expect(header).toMatch(/^STARTED \(UTC\)\s+CALL ID\s+CALLER\s+AGENT\s+DURATION\s+OUTCOME\s+TURNS\s+SUMMARY$/);
    expect(row).toMatch(/^2030-01-07 13:59:27Z {2}1700000000\.1 {2}\+12025550143 {2}support {2}41 s {6}resolved {2}4 {6}x+…$/);
    expect(row!.length).toBeLessThanOrEqual(120);
    expect(formatList([])).toBe('No calls recorded (matching these filters).');
  });

  test('stats: containment, outcomes, transfers, tool errors, handle time', () => {
    const text = formatStats({
      calls: 4,
      byOutcome: { resolved: 2, transferred: 1, abandoned: 1, failed: 0 },
      containmentRate: 0.5,
      transfersByReason: { complaint: 1 },
      toolCalls: 5,
      toolErrors: 1,
      toolErrorsByTool: { create_ticket: 1 },
      averageHandleTimeMs: 45_000,
      medianTurnLatencyMs: 655.2,
      since: '2030-01-01T00:00:00.000Z',
    });
    expect(text.split('\n')).toEqual([
      'Calls               4 (since 2030-01-01 00:00:00Z)',
      'Containment rate    50.0% (2 resolved without a human)',
      'By outcome          resolved 2, transferred 1, abandoned 1, failed 0',
      'Transfers by reason complaint 1',
      'Tool calls          5, errors 1 (create_ticket 1)',
      'Average handle time 45 s',
      'Median turn latency 655 ms',
    ]);
  });

  test('runCalls: --json gives the reader\'s data; an unknown id is an error naming it', async () => {
    const reader = new MemoryCallReader([record]);
    expect(JSON.parse(await runCalls(parseCallsArgs(['show', '1700000000.1', '--json']), reader))).toEqual(JSON.parse(JSON.stringify(record)));
    expect(JSON.parse(await runCalls(parseCallsArgs(['list', '--json']), reader))).toHaveLength(1);
    await expect(runCalls(parseCallsArgs(['show', 'nope']), reader)).rejects.toThrow('no call with id "nope" (see `switchboard calls list`)');
  });
});

describe('terminal safety', () => {
  test('control characters from the network (ESC, OSC) never reach the terminal', async () => {
    const { terminalSafe } = await import('../../src/cli/calls-format.js');
    const evil = 'Eve\u001b]0;pwned\u0007\u001b[2J\u009b31m';
    const out = terminalSafe(`caller ${evil}\nnext line\ttab`);
    expect(out).not.toMatch(/[\u001b\u0007\u009b]/);
    expect(out).toContain('\nnext line\ttab');
  });
});
