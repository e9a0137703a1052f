/**
 * Conversations end to end: the sandbox Asterisk, Switchboard started from the demo config
 * with the offline plugins (PocketSphinx, the call-centre scenario, Flite, the CRM on an
 * embedded PostgreSQL), and a scripted SIP caller speaking with a Flite voice. Each script
 * must reach its goal: an order looked up and the call closed by the agent; a complaint
 * ticketed and escalated to the operator; a reply cut off by the caller (barge-in) and the
 * caller transferred to a human.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createCallerVoice, type CallerVoice } from '../../src/demo/caller-voice.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, type DemoScript, SummaryInbox } from '../../src/demo/scripted-call.js';
import { BARGE_IN, COMPLAINT, ORDER_STATUS } from '../../src/demo/scripts.js';
import { silentLogger } from '../../src/log.js';
import { startFromConfig, type RunningFromConfig } from '../../src/runtime.js';
import { useSandbox } from '../support/pbx.js';

const REPO = resolve(import.meta.dirname, '../..');
const sandbox = useSandbox('conversation');

describe('multi-turn conversations with the offline plugins through the sandbox PBX', () => {
  let sb: RunningFromConfig;
  let callerVoice: CallerVoice;
  const recorder = new ConversationRecorder();
  const inbox = new SummaryInbox();

  beforeAll(async () => {
    const c = sandbox().connection;
    const loaded = await loadConfig(resolve(REPO, 'demo/switchboard.demo.yaml'), { env: { ...process.env, SWITCHBOARD_HTTP_PORT: '0' } });
    sb = await startFromConfig(loaded, {
      ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
      logger: silentLogger,
      observerFor: recorder.observerFor,
      onCallEnded: inbox.onCallEnded,
    });
    callerVoice = await createCallerVoice(silentLogger, REPO);
  }, 300_000);

  afterAll(async () => {
    await sb?.stop();
    await callerVoice?.close();
  }, 60_000);

  async function run(script: DemoScript): Promise<ReturnType<typeof runScriptedCall>> {
    const result = await runScriptedCall(script, {
      sip: { host: '127.0.0.1', port: sandbox().ports.sip },
      recorder,
      voice: (text) => callerVoice.render(text),
      summaryFor: inbox.summaryFor,
    });
    console.log(`--- ${script.name}\n${formatTranscript(result)}`);
    return result;
  }

  test('order status: the number is recognised, looked up in the CRM, and the agent closes the call', async () => {
    const r = await run(ORDER_STATUS);
    expect(script(ORDER_STATUS, r)).toEqual({ ok: true, why: expect.any(String) as string });
    const lookup = r.tools.find((t) => t.call.name === 'get_order_status')!;
    expect(lookup.result).toMatchObject({ ok: true });
    expect(r.summary!.turns.length).toBeGreaterThanOrEqual(3);
    expect(r.end.reason).toBe('remote-bye');
  }, 180_000);

  test('complaint: a ticket is opened and the caller is escalated to the operator', async () => {
    const r = await run(COMPLAINT);
    expect(script(COMPLAINT, r).ok).toBe(true);
    expect(r.tools.map((t) => t.call.name)).toEqual(['create_ticket', 'transfer_call']);
    expect(r.tools[1]!.call.arguments).toMatchObject({ destination: 'operator' });
  }, 180_000);

  test('barge-in mid-reply, then escalation to a human', async () => {
    const r = await run(BARGE_IN);
    expect(script(BARGE_IN, r).ok).toBe(true);
    const b = r.summary!.bargeIns[0]!;
    expect(b.droppedMs).toBeGreaterThan(0);
    // The reply the caller cut is recorded as what was actually played.
    expect(r.transcript.some((e) => e.who === 'agent' && !e.completed)).toBe(true);
  }, 180_000);

  test('nothing is left behind', async () => {
    await new Promise((r) => setTimeout(r, 500));
    expect(sb.controller.activeCalls).toBe(0);
    expect(sb.openEndpoints()).toBe(0);
    expect(await sb.ari.listBridges()).toEqual([]);
  });
});

function script(s: DemoScript, r: Awaited<ReturnType<typeof runScriptedCall>>): { ok: boolean; why: string } {
  return s.goal(r);
}
