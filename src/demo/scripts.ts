/**
 * The demo's scripted callers, for the call-centre scenario (scenarios/call-centre.yaml) on
 * the offline plugins with the demo CRM data (order 30552 is out for delivery).
 */
import type { DemoScript, ScriptedCallResult } from './scripted-call.js';

const usedTool = (r: ScriptedCallResult, name: string): boolean => r.tools.some((t) => t.call.name === name && t.result.ok);

export const ORDER_STATUS: DemoScript = {
  name: 'order-status',
  description: 'A caller checks an order by its number and hangs up satisfied.',
  extension: '100',
  steps: [
    { say: 'Where is my order?' },
    { say: 'Three zero five five two.' },
    { say: 'No, that is all. Thank you, goodbye.' },
  ],
  goal(r) {
    if (!usedTool(r, 'get_order_status')) return { ok: false, why: 'the agent never looked the order up (get_order_status)' };
    if (r.summary?.outcome !== 'agent_hangup') return { ok: false, why: `the call ended as "${r.summary?.outcome ?? 'unknown'}", not closed by the agent` };
    return { ok: true, why: 'order status told, call closed by the agent' };
  },
};

export const COMPLAINT: DemoScript = {
  name: 'complaint',
  description: 'A caller complains; the agent opens a ticket and transfers to a human operator.',
  extension: '100',
  steps: [{ say: 'I want to make a complaint. My parcel arrived damaged.' }],
  goal(r) {
    if (r.summary?.outcome !== 'transferred') return { ok: false, why: `the call ended as "${r.summary?.outcome ?? 'unknown'}", not transferred` };
    return { ok: true, why: usedTool(r, 'create_ticket') ? 'ticket opened and caller transferred to an operator' : 'caller transferred to an operator' };
  },
};

export const BARGE_IN: DemoScript = {
  name: 'barge-in',
  description: 'A caller cuts the agent off mid-reply and asks for a person.',
  extension: '100',
  steps: [
    { say: 'Where is my order?' },
    { say: 'Operator please. I want to speak to a real person.', bargeInAfterMs: 600 },
  ],
  goal(r) {
    if (!r.summary || r.summary.bargeIns.length === 0) return { ok: false, why: 'no barge-in was recorded' };
    if (r.summary.outcome !== 'transferred') return { ok: false, why: `the call ended as "${r.summary.outcome}", not transferred` };
    return { ok: true, why: `agent stopped ${Math.round(r.summary.bargeIns[0]!.reactionMs)} ms after the caller started, then transferred` };
  },
};

export const DEMO_SCRIPTS: readonly DemoScript[] = [ORDER_STATUS, COMPLAINT, BARGE_IN];
