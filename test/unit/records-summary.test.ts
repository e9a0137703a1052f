/**
 * The end-of-call summary: deterministic words from the record (intent or first words, the
 * business tools and what they answered, how the call ended, turns and length).
 */
import { describe, expect, it } from 'vitest';
import { describeResult, formatDuration, summarizeCall } from '../../src/records/summary.js';
import type { RecordedToolCall, RecordedTurn } from '../../src/records/types.js';

function turn(n: number, over: Partial<RecordedTurn> = {}): RecordedTurn {
  return { turn: n, completed: true, bargedIn: false, toolCalls: [], errors: [], startedAt: '2030-01-07T14:00:00.000Z', ...over };
}

function call(name: string, ok: boolean, result: unknown, over: Partial<RecordedToolCall> = {}): RecordedToolCall {
  return { id: name, name, arguments: {}, ok, result, error: ok ? undefined : String(result), durationMs: 5, at: '2030-01-07T14:00:00.000Z', ...over };
}

const base = { variables: {}, outcome: 'resolved' as const, endReason: 'agent_hangup', transfer: undefined, durationMs: 41_000, bargeIns: 0 };

describe('summarizeCall', () => {
  it('quotes the first words when there is no intent, and lists up to three tools', () => {
    const tools = [
      call('lookup_customer', true, { found: true, customer_id: 4 }),
      call('get_order_status', true, { order_id: 30552, status: 'out_for_delivery' }),
      call('change_address', false, 'The delivery address of order 30552 cannot be changed any more.'),
      call('create_ticket', true, { ticket_id: 9, status: 'open' }),
    ];
    const s = summarizeCall({
      ...base,
      turns: [turn(1), turn(2, { callerText: 'hi  I would like to change the address of my order please, it is urgent', toolCalls: tools })],
    });
    expect(s).toBe(
      'Caller said "hi I would like to change the address of my order please…"; the agent used lookup_customer (ok), ' +
        'get_order_status (order 30552, out for delivery), change_address (failed: The delivery address of order 30552 cannot be changed any…) ' +
        'and 1 more tool call and closed the call after 2 turns (41 s). Resolved.',
    );
  });

  it('leaves call-control tools out of what the agent did', () => {
    const s = summarizeCall({
      ...base,
      variables: { intent: 'order_status' },
      turns: [turn(2, { toolCalls: [call('set_variable', true, {}), call('end_call', true, { ending: true })] })],
    });
    expect(s).toBe('Caller asked about order status; the agent closed the call after 1 turn (41 s). Resolved.');
  });

  it('says why a call failed and how long a long call was', () => {
    const s = summarizeCall({ ...base, outcome: 'failed', endReason: 'failed', durationMs: 125_400, turns: [turn(2, { callerText: 'hello', errors: [{ stage: 'tts', error: 'voice crashed' }] })] });
    expect(s).toBe('Caller said "hello"; the call failed (tts: voice crashed) after 1 turn (2 min 5 s). Failed.');
  });

  it('describes tool results briefly', () => {
    expect(describeResult(call('t', true, { found: false, reason: 'No customer' }))).toBe('not found');
    expect(describeResult(call('t', false, 'x', { failure: 'timeout' }))).toBe('failed: timeout');
    expect(describeResult(call('t', true, null))).toBe('ok');
    expect(describeResult(call('t', true, 'done'))).toBe('done');
    expect(describeResult(call('t', true, { appointment_id: 12, status: 'booked', date: '2030-01-08' }))).toBe('appointment 12, booked');
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(59_400)).toBe('59 s');
    expect(formatDuration(120_000)).toBe('2 min');
    expect(formatDuration(3_723_000)).toBe('62 min 3 s');
  });
});
