import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, parseScenario, ScenarioError, unreachableStates, type ScenarioIssue } from './scenario.js';

const CALL_CENTRE = resolve(import.meta.dirname, '../../scenarios/call-centre.yaml');

/** A small valid scenario; tests break one thing at a time. */
const BASE = `version: 1
name: t
start: menu
intents:
  status:
    examples: [where is my order]
slots:
  order_id:
    type: digits
states:
  menu:
    say: How can I help?
    intents:
      status: ask
  ask:
    collect: order_id
    say: Number?
    next: check
  check:
    tool:
      name: get_order_status
      args: { order_id: "{{order_id}}" }
    branches:
      - when: ok
        say: "It is {{result.status}}."
        goto: menu
      - goto: menu
`;

function issues(yaml: string): ScenarioIssue[] {
  try {
    parseScenario(yaml, 'test.yaml');
  } catch (err) {
    if (err instanceof ScenarioError) return [...err.issues];
    throw err;
  }
  throw new Error('expected the scenario to be refused');
}

describe('scenario validation', () => {
  it('accepts the shipped call-centre scenario, with every state reachable', async () => {
    const s = await loadScenarioFile(CALL_CENTRE);
    expect(s.name).toBe('call-centre');
    expect(unreachableStates(s)).toEqual([]);
    expect(Object.keys(s.faq)).toEqual(['delivery_times', 'opening_hours', 'returns_policy']);
  });

  it('accepts the base scenario', () => {
    expect(parseScenario(BASE).states.menu!.intents).toEqual({ status: 'ask' });
  });

  it('reports a bad state reference with its path and line', () => {
    const found = issues(BASE.replace('status: ask', 'status: aks'));
    expect(found).toEqual([{ path: 'states.menu.intents.status', line: 14, message: 'unknown state "aks" (states: menu, ask, check)' }]);
  });

  it('reports an unknown slot type with its path and the known types', () => {
    const found = issues(BASE.replace('type: digits', 'type: digitz'));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ path: 'slots.order_id.type', line: 9 });
    expect(found[0]!.message).toMatch(/unknown slot type \(types: number, digits, date, time, name, text, enum\)/);
  });

  it('reports every reference problem at once', () => {
    const yaml = BASE.replace('status: ask', 'status: aks')
      .replace('next: check', 'next: chek')
      .replace('collect: order_id', 'collect: order_number')
      .replace('"It is {{result.status}}."', '"Order {{order_no}} is {{result.status | shout}}."');
    const found = issues(yaml).map((i) => `${i.path}: ${i.message}`);
    expect(found).toEqual([
      'states.menu.intents.status: unknown state "aks" (states: menu, ask, check)',
      'states.ask.collect: unknown slot "order_number" (slots: order_id)',
      'states.ask.next: unknown state "chek" (states: menu, ask, check)',
      'states.check.branches[0].say: unknown filter "shout" (filters: digits, date, time, upper, lower, capitalize, take, pluck, first, last, or)',
    ]);
  });

  it('reports shape errors with paths: unknown keys, wrong types, missing fields', () => {
    const yaml = BASE.replace('say: How can I help?', 'sey: How can I help?').replace('version: 1', 'version: 2').replace('name: t\n', '');
    const found = issues(yaml).map((i) => `${i.path}: ${i.message}`);
    expect(found).toContain('states.menu: unknown key "sey"');
    expect(found).toContain('name: expected string, but it is missing');
    expect(found.some((f) => f.startsWith('version:'))).toBe(true);
  });

  it('refuses unknown intents, template slots and result fields used outside the grammar', () => {
    expect(issues(BASE.replace('      status: ask', '      track: ask'))[0]).toMatchObject({ path: 'states.menu.intents.track', message: expect.stringContaining('unknown intent "track"') as unknown });
    expect(issues(BASE.replace('say: Number?', 'say: "Number for {{customer}}?"'))[0]!.message).toMatch(/unknown slot "customer"/);
    expect(issues(BASE.replace('say: Number?', 'say: "Number {{var.a.b}}?"'))[0]!.message).toMatch(/var\.NAME/);
    expect(issues(BASE.replace('say: Number?', 'say: "Number {{order_id?"'))[0]!.message).toMatch(/unbalanced/);
  });

  it('refuses states that do two things, or nothing, or lack what their kind needs', () => {
    const both = issues(BASE.replace('    say: Number?\n', '    say: Number?\n    transfer: operator\n'));
    expect(both.some((i) => i.path === 'states.ask' && /does one thing/.test(i.message))).toBe(true);

    const nothing = issues(`${BASE}  stuck:\n    say: hello\n`);
    expect(nothing).toContainEqual(expect.objectContaining({ path: 'states.stuck', message: expect.stringContaining('no way forward') as unknown }));

    const noNext = issues(BASE.replace('    next: check\n', ''));
    expect(noNext).toContainEqual(expect.objectContaining({ path: 'states.ask.next', message: 'a state that collects a slot needs "next"' }));

    const noBranches = issues(BASE.replace(/    branches:[\s\S]*$/, ''));
    expect(noBranches).toContainEqual(expect.objectContaining({ path: 'states.check.branches' }));

    const noCatchAll = issues(BASE.replace('      - goto: menu\n', ''));
    expect(noCatchAll[0]!.message).toMatch(/no branch catches every result/);
  });

  it('refuses states that loop without waiting for the caller', () => {
    const yaml = `${BASE}  a:\n    say: one\n    next: b\n  b:\n    say: two\n    next: a\n`;
    const found = issues(yaml);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/states loop without waiting for the caller: (a -> b -> a|b -> a -> b)/);
  });

  it('checks the fallback, escalation targets and settings', () => {
    const yaml = BASE.replace(
      'start: menu\n',
      'start: menu\nfallback: { action: transfer }\nescalation: { rules: [{ phrases: [operator], goto: human }] }\nsettings: { timeZone: Mars/Olympus, matchThreshold: 2 }\n',
    );
    const found = issues(yaml).map((i) => i.path);
    expect(found).toEqual(expect.arrayContaining(['settings.timeZone', 'settings.matchThreshold']));
    const refs = issues(BASE.replace('start: menu\n', 'start: menu\nfallback: { action: transfer }\nescalation: { rules: [{ phrases: [operator], goto: human }] }\n'));
    expect(refs.map((i) => i.path)).toEqual(['escalation.rules[0].goto', 'fallback.destination']);
  });

  it('reports YAML syntax errors with their line', () => {
    const found = issues('version: 1\nname: t\nstates:\n  menu: [unclosed\n');
    expect(found[0]!.message).toMatch(/^YAML: /);
    expect(found[0]!.line).toBeGreaterThanOrEqual(4);
  });

  it('formats every problem with file, path and line', () => {
    try {
      parseScenario(BASE.replace('status: ask', 'status: aks'), 'flows/main.yaml');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        'scenario flows/main.yaml: 1 problem:\n  - states.menu.intents.status (line 14): unknown state "aks" (states: menu, ask, check)',
      );
    }
  });

  it('names a missing file', async () => {
    await expect(loadScenarioFile('/nonexistent/flow.yaml')).rejects.toThrow(/flow\.yaml.*ENOENT/s);
  });

  it('lists states nothing reaches', () => {
    const s = parseScenario(`${BASE}  orphan:\n    say: hi\n    next: menu\n`);
    expect(unreachableStates(s)).toEqual(['orphan']);
  });
});
