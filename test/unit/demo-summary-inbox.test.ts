/** SummaryInbox: each end-of-call summary reaches the one scripted caller waiting for it. */
import { describe, expect, it } from 'vitest';
import type { CallSummary } from '../../src/call/call-session.js';
import { SummaryInbox } from '../../src/demo/scripted-call.js';

const summary = (number: string): CallSummary => ({
  info: { callId: number, channelId: number, caller: { number, name: '' }, agentName: 'a' },
  outcome: 'caller_hangup',
  durationMs: 1,
  turns: [],
  bargeIns: [],
  timeInStates: { answering: 0, listening: 0, thinking: 0, speaking: 0, transferring: 0, ended: 0 },
  dtmf: [],
  variables: {},
});
const from = (n: string) => (s: CallSummary): boolean => s.info.caller.number === n;

describe('SummaryInbox', () => {
  it('hands a summary that arrived first to the caller who asks, once', async () => {
    const inbox = new SummaryInbox();
    inbox.onCallEnded(summary('1'));
    inbox.onCallEnded(summary('2'));
    expect((await inbox.summaryFor(from('2'), 1000))?.info.callId).toBe('2');
    expect(await inbox.summaryFor(from('2'), 10)).toBeUndefined();
    expect((await inbox.summaryFor(from('1'), 1000))?.info.callId).toBe('1');
  });

  it('wakes a waiting caller only for its own summary, and gives up after the timeout', async () => {
    const inbox = new SummaryInbox();
    const waiting = inbox.summaryFor(from('7'), 5000);
    inbox.onCallEnded(summary('8'));
    inbox.onCallEnded(summary('7'));
    expect((await waiting)?.info.callId).toBe('7');
    expect((await inbox.summaryFor(from('8'), 1000))?.info.callId).toBe('8');
    expect(await inbox.summaryFor(from('9'), 20)).toBeUndefined();
    // A summary arriving after its waiter gave up is kept for the next one who asks.
    inbox.onCallEnded(summary('9'));
    expect((await inbox.summaryFor(from('9'), 1000))?.info.callId).toBe('9');
  });
});
