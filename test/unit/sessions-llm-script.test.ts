/**
 * llm-script's snapshot()/restore() (plugin API 1.1) with the real call-centre scenario: a
 * dialog snapshot taken after "where is my order", passed through JSON (as Redis keeps it) and
 * restored into a session of a new provider (as a restarted Switchboard would), still accepts
 * the order number and looks it up; a fresh session given the same messages does not. Bad
 * snapshots are refused and leave the session as it was.
 */
import { resolve } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { createScriptProvider } from '../../plugins/llm-script/index.js';
import type { ScriptSession } from '../../plugins/llm-script/session.js';
import { fakeCrm, FakeLoop, FIXED_NOW, toolSpecs } from '../../plugins/llm-script/testing.js';
import { silentLogger } from '../../src/log.js';
import { PLUGIN_API_VERSION, PluginError, type LlmSession } from '../../src/plugins/api.js';

const REPO = resolve(import.meta.dirname, '../..');
const TOOLS = toolSpecs(['get_order_status', 'change_address', 'cancel_order', 'create_ticket', 'transfer_call', 'end_call', 'set_variable']);

async function newSession(): Promise<ScriptSession & LlmSession> {
  // A new provider each time: nothing is shared with the "previous process" but the snapshot.
  const provider = await createScriptProvider({ scenario: 'scenarios/call-centre.yaml' }, { configDir: REPO, log: silentLogger }, { now: FIXED_NOW });
  return (await provider.session({ callId: 'c-restore', agent: 'support', language: 'en-US', variables: { caller_number: '+15550100' } })) as ScriptSession & LlmSession;
}

describe('llm-script session snapshot and restore', () => {
  it('the plugin API is 1.1 (snapshot/restore), and 1.0 plugins still load', () => {
    expect(PLUGIN_API_VERSION).toBe('1.1.0');
    expect(semver.satisfies(PLUGIN_API_VERSION, '^1.0.0')).toBe(true); // what the loader checks a 1.0 plugin's range with
  });

  it('after "where is my order", a restored session still takes the order number and looks it up', async () => {
    const crm = fakeCrm({ '30552': { status: 'out_for_delivery' } });
    const before = new FakeLoop(await newSession(), TOOLS, crm.handlers);
    await before.open();
    const asked = await before.say('where is my order');
    expect(asked.text).toMatch(/What is your order number/);
    const saved: unknown = JSON.parse(JSON.stringify((before.session as ScriptSession).snapshot()));

    const restored = await newSession();
    restored.restore(saved);
    const after = new FakeLoop(restored, TOOLS, crm.handlers);
    after.messages.push(...before.messages, { role: 'assistant', content: "Sorry about that, I'm back. Where were we?" });
    const looked = await after.say('three zero five five two');
    // (set_variable carries the intent the scenario noted when the caller asked.)
    expect(looked.calls.filter((c) => c.name !== 'set_variable').map((c) => [c.name, c.arguments])).toEqual([['get_order_status', { order_id: '30552' }]]);
    expect(looked.text).toMatch(/out for delivery/);

    // Without the snapshot the same words mean nothing to the dialog: the state is what carried it.
    const fresh = new FakeLoop(await newSession(), TOOLS, crm.handlers);
    fresh.messages.push(...after.messages.slice(0, before.messages.length + 1));
    const lost = await fresh.say('three zero five five two');
    expect(lost.calls.map((c) => c.name)).not.toContain('get_order_status');
  });

  it('refuses a snapshot it cannot use, keeping its own state', async () => {
    const s = await newSession();
    const crm = fakeCrm({});
    const loop = new FakeLoop(s, TOOLS, crm.handlers);
    await loop.open();
    const own = s.snapshot();
    const good = s.snapshot();
    const attempts: unknown[] = [
      null,
      'listening',
      { ...good, status: 'dancing' },
      { ...good, current: 'no_such_state' },
      { ...good, inputState: 'nowhere' },
      { ...good, slots: { order_id: { nested: true } } },
      { ...good, retries: { greeting: -1 } },
    ];
    for (const bad of attempts) {
      expect(() => s.restore(bad)).toThrow(PluginError);
      expect(s.snapshot()).toEqual(own);
    }
    expect(() => s.restore({ ...good, current: 'no_such_state' })).toThrow(/state "no_such_state" is not in scenario "call-centre"/);
  });

  it('keeps fields it does not know (a later DialogState) instead of dropping them', async () => {
    const s = await newSession();
    s.restore({ ...s.snapshot(), futureField: { kept: true } });
    expect(s.snapshot()).toMatchObject({ futureField: { kept: true } });
  });
});
