/**
 * Building blocks for call-record tests: a call's identity, the engine's end-of-call summary,
 * tool outcomes as the conversation reports them, and a whole order-status conversation
 * played through a real CallRecorder.
 */
import type { CallInfo } from '../../src/agents/agent.js';
import type { CallSummary } from '../../src/call/call-session.js';
import type { BargeInRecord, TurnLatency } from '../../src/call/turn-timing.js';
import type { ConversationObserver } from '../../src/conversation/conversation-agent.js';
import type { ToolOutcome } from '../../src/conversation/tool-runner.js';
import type { ToolResult } from '../../src/plugins/api.js';
import { CallRecorder } from '../../src/records/recorder.js';
import type { CallRecord } from '../../src/records/types.js';

export function callInfo(callId: string, over: Partial<CallInfo> = {}): CallInfo {
  return { callId, channelId: callId, caller: { number: '(202) 555-0143', name: 'Maria' }, dialed: '100', agentName: 'support', ...over };
}

/** A turn latency whose wall-clock time is not believed (keeps records deterministic). */
export function latency(turn: number, latencyMs: number): TurnLatency {
  return { turn, callerLastSpeechAt: -1e12, endOfTurnDecidedAt: -1e12 + 600, agentFirstAudioAt: -1e12 + latencyMs, latencyMs };
}

export function bargeIn(turn: number): BargeInRecord {
  return { turn, speechOnsetAt: 0, decidedAt: 80, agentLastAudioAt: 85, reactionMs: 85, stopAfterDecisionMs: 5, playedMs: 1200, droppedMs: 2400 };
}

export function summaryOf(info: CallInfo, over: Partial<CallSummary> = {}): CallSummary {
  return {
    info,
    outcome: 'caller_hangup',
    durationMs: 10_000,
    turns: [],
    bargeIns: [],
    timeInStates: { answering: 0, listening: 0, thinking: 0, speaking: 0, transferring: 0, ended: 0 },
    dtmf: [],
    variables: {},
    ...over,
  };
}

export function tool(id: string, name: string, args: unknown, result: ToolResult, extra: Partial<ToolOutcome> = {}): ToolOutcome {
  return { call: { id, name, arguments: args }, result, durationMs: 12.34, ...extra };
}

export const GREETING = "Hello, you're through to Acme customer service. How can I help?";

/** The order-status conversation, as the conversation agent reports it to its observer. */
export function playOrderStatus(o: ConversationObserver): void {
  o.agentSaid(1, GREETING, GREETING, true);
  o.callerSaid(2, 'where is my order');
  o.toolCalled(2, tool('s1', 'set_variable', { name: 'intent', value: 'order_status' }, { ok: true, data: { intent: 'order_status' } }));
  o.agentSaid(2, 'Sure. What is the order number?', 'Sure. What is the order number?', true);
  o.callerSaid(3, 'three zero five five two');
  o.agentSaid(3, 'One moment please.', 'One moment please.', true);
  o.toolCalled(3, tool('c1', 'get_order_status', { order_id: 30552 }, { ok: true, data: { order_id: 30552, status: 'out for delivery', delivery_address: '301 Pine Avenue' } }));
  o.agentSaid(3, 'Order 30552 is out for delivery. It should arrive today.', 'Order 30552 is out…', false);
  o.callerSaid(4, "thanks that's all");
  o.toolCalled(4, tool('e1', 'end_call', { reason: 'completed' }, { ok: true, data: { ending: true } }));
  o.agentSaid(4, 'Thank you for calling. Goodbye.', 'Thank you for calling. Goodbye.', true);
}

/** The engine's summary of the order-status call. */
export function orderStatusSummary(info: CallInfo, outcome: CallSummary['outcome'] = 'agent_hangup'): CallSummary {
  return summaryOf(info, {
    outcome,
    durationMs: 41_000,
    turns: [latency(2, 640.25), latency(3, 702.5), latency(4, 655)],
    bargeIns: [bargeIn(3)],
    variables: { intent: 'order_status' },
  });
}

/**
 * The order-status call: greeting; "where is my order"; the number, looked up, the answer cut
 * by a barge-in; "that's all", goodbye and end_call. The clock ticks one second per event.
 */
export function orderStatusCall(callId: string, opts: { startedAt?: Date; caller?: string; outcome?: CallSummary['outcome'] } = {}): {
  recorder: CallRecorder;
  summary: CallSummary;
  record: CallRecord;
} {
  const start = opts.startedAt ?? new Date('2030-01-07T14:00:00.000Z');
  let t = start.getTime();
  const recorder = new CallRecorder(callInfo(callId, opts.caller ? { caller: { number: opts.caller, name: '' } } : {}), {
    now: () => new Date((t += 1000)),
  });
  playOrderStatus(recorder);
  const summary = orderStatusSummary(recorder.call, opts.outcome);
  return { recorder, summary, record: recorder.finish(summary) };
}
