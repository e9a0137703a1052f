/**
 * Scenario features the car-service pack needs, each on its own: the time slot, picking from
 * offered choices, list filters in templates, filling slots from tool results, deciding states
 * that branch on slots and variables, and the recognition hints slots contribute.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { parseSpokenTime, spokenTime } from './dates.js';
import { ScriptProvider } from './index.js';
import { normalize } from './normalize.js';
import { parseScenario, ScenarioError, type SlotSpec } from './scenario.js';
import { compileSlot, extractChoice, extractSlot, ordinalPick } from './slots.js';
import { parseTemplate, renderSpeech, renderValue, TemplateSyntaxError } from './template.js';
import { calledNames, FakeLoop, scriptSession, toolSpecs, type ToolHandler } from './testing.js';

const today = { year: 2026, month: 11, day: 23 };

describe('time slot', () => {
  it.each([
    ['ten thirty', '10:30'],
    ['10:30', '10:30'],
    ['half past two', '14:30'],
    ['quarter past nine', '09:15'],
    ['quarter to eleven', '10:45'],
    ['twenty past nine', '09:20'],
    ['ten to three', '14:50'],
    ['nine oh five', '09:05'],
    ["ten o'clock", '10:00'],
    ['two p m', '14:00'],
    ['two pm', '14:00'],
    ['eight a.m.', '08:00'],
    ['three in the afternoon', '15:00'],
    ['nine in the morning', '09:00'],
    ['noon', '12:00'],
    ['twelve thirty', '12:30'],
    ['fourteen thirty', '14:30'],
    ['Ten thirty, please.', '10:30'],
    ['at two', '14:00'],
    ['how about nine fifteen', '09:15'],
    ['seven', '07:00'],
    ['six', '18:00'],
  ])('"%s" -> %s', (text, want) => {
    expect(parseSpokenTime(text)).toBe(want);
  });

  it.each(['two tyres please', 'i need two tyres', 'the first one', 'my 2020 tesla', 'the 5th of may', 'on thursday please', 'book an oil change'])(
    'finds no time in "%s"',
    (text) => {
      expect(parseSpokenTime(text)).toBeUndefined();
    },
  );

  it('reads a bare hour from `earliest` on', () => {
    expect(parseSpokenTime('six', { earliest: '06:00' })).toBe('06:00');
    expect(parseSpokenTime('five', { earliest: '06:00' })).toBe('17:00');
    expect(parseSpokenTime('five a m', { earliest: '06:00' })).toBe('05:00');
  });

  it('speaks times for text-to-speech', () => {
    expect(['08:00', '08:30', '12:00', '12:30', '14:05', '00:00'].map(spokenTime)).toEqual(['8 AM', '8:30 AM', '12 noon', '12:30 PM', '2:05 PM', 'midnight']);
    expect(spokenTime('tomorrow')).toBeUndefined();
  });

  it('is a slot type', () => {
    const spec: SlotSpec = { type: 'time', earliest: '07:00' };
    const at = (text: string): unknown => extractSlot(compileSlot('time', spec), text, normalize(text), { today });
    expect(at('half past ten')).toBe('10:30');
    expect(at('whenever')).toBeUndefined();
  });
});

describe('choices', () => {
  const times = ['08:00', '08:30', '09:00', '09:30'];
  const slot = compileSlot('time', { type: 'time', earliest: '07:00' });
  const choose = (text: string, choices: string[] | undefined = times): ReturnType<typeof extractChoice> =>
    extractChoice(slot, text, normalize(text), { today }, choices);
  const chooseFree = (text: string): ReturnType<typeof extractChoice> => extractChoice(slot, text, normalize(text), { today }, undefined);

  it('picks by position', () => {
    expect(ordinalPick(normalize('the first one'), 4)).toBe(0);
    expect(ordinalPick(normalize('the second one please'), 4)).toBe(1);
    expect(ordinalPick(normalize('number three'), 4)).toBe(2);
    expect(ordinalPick(normalize('the last one'), 4)).toBe(3);
    expect(ordinalPick(normalize('the earliest'), 4)).toBe(0);
    expect(ordinalPick(normalize('the latest you have'), 4)).toBe(3);
    expect(ordinalPick(normalize('the fifth'), 4)).toBeUndefined();
    expect(ordinalPick(normalize('the 2nd of may'), 4)).toBeUndefined();
  });

  it('takes a position or a value from the list, and refuses a value outside it', () => {
    expect(choose('the second one')).toEqual({ value: '08:30', picked: true });
    expect(choose('nine thirty')).toEqual({ value: '09:30', picked: false });
    expect(choose('ten thirty')).toEqual({ value: undefined, rejected: '10:30' });
    expect(choose('no idea')).toEqual({ value: undefined });
    // No list, or an empty one: an ordinary slot.
    expect(choose('ten thirty', [])).toEqual({ value: '10:30', picked: false });
    expect(chooseFree('ten thirty')).toEqual({ value: '10:30', picked: false });
  });
});

describe('template list filters', () => {
  const ctx = {
    slots: { name: 'Jamie Smithers' },
    vars: {},
    result: { free: ['08:00', '08:30', '09:00', '14:00'], cars: [{ description: 'Toyota Camry' }, { description: 'Honda CR-V' }] },
    error: undefined,
    input: '',
  };
  const say = (t: string): string => renderSpeech(parseTemplate(t), ctx);

  it('takes, plucks, picks and joins list items', () => {
    expect(say('I can do {{result.free | take:3 | time | or}}.')).toBe('I can do 8 AM, 8:30 AM or 9 AM.');
    expect(say('{{result.free | time}}')).toBe('8 AM, 8:30 AM, 9 AM and 2 PM');
    expect(say('your {{result.cars | pluck:description | or}}?')).toBe('your Toyota Camry or Honda CR-V?');
    expect(say('{{result.free | first | time}} to {{result.free | last | time}}')).toBe('8 AM to 2 PM');
    expect(say('{{name | first}} / {{name | last}}')).toBe('Jamie / Smithers');
    expect(renderValue(parseTemplate('{{result.free | take:2}}'), ctx)).toEqual(['08:00', '08:30']);
  });

  it('refuses filters with a missing, extra or bad argument', () => {
    expect(() => parseTemplate('{{result.free | take}}')).toThrow(TemplateSyntaxError);
    expect(() => parseTemplate('{{result.free | take:0}}')).toThrow(/take:3/);
    expect(() => parseTemplate('{{result.free | pluck:a b}}')).toThrow(/pluck/);
    expect(() => parseTemplate('{{name | upper:x}}')).toThrow(/takes no argument/);
  });
});

const SCENARIO = `
version: 1
name: features
start: look
intents:
  other: { examples: [another day] }
slots:
  time: { type: time }
  order_id: { type: digits }
  note: { type: text }
states:
  look:
    set: { mode: "{{var.mode}}" }
    tool: { name: get_order_status, args: { order_id: "123" } }
    branches:
      - when: { field: times.0, exists: true }
        fill: { order_id: "{{result.order_id}}", note: "{{result.note}}" }
        goto: route
      - say: "Nothing free."
        goto: bye
  route:
    branches:
      - when: { var: mode, equals: fast }
        goto: fast
      - when: { slot: note, exists: true }
        goto: pick
      - goto: bye
  fast:
    say: "Fast lane for {{order_id}}."
    next: pick
  pick:
    collect: time
    choices: "{{result.times}}"
    say: "I can do {{result.times | take:2 | time | or}}."
    reprompt: ["Sorry, I have {{result.times | time}}."]
    intents: { other: bye }
    next: booked
  booked:
    tool: { name: change_address, args: { order_id: "{{order_id}}", address: "at {{time}} please" } }
    branches:
      - when: ok
        say: "Booked {{time | time}} for {{order_id}}."
        clear: [time]
        goto: check
      - goto: bye
  check:
    branches:
      - when: { slot: time, exists: true }
        goto: bye
      - say: "The time is forgotten."
        goto: bye
  bye: { say: Bye., end: true }
`;

describe('deciding states, fill and choices in a dialog', () => {
  const handlers = (times: string[]): Record<string, ToolHandler> => ({
    get_order_status: () => ({ ok: true, data: { order_id: '4242', note: 'vip', times } }),
    change_address: ({ address }) => ({ ok: true, data: { address } }),
    set_variable: () => ({ ok: true, data: null }),
    end_call: () => ({ ok: true, data: null }),
  });
  const tools = toolSpecs(['get_order_status', 'change_address', 'end_call']);

  it('fills slots from a result, branches on slots, picks a choice, and speaks a cleared slot before forgetting it', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO), tools, handlers(['09:00', '09:30', '10:00']));
    const open = await loop.open();
    expect(calledNames(open.calls)).toEqual(['get_order_status']);
    expect(open.text).toBe('I can do 9 AM or 9:30 AM.');
    const miss = await loop.say('eleven');
    expect(miss.text).toBe('Sorry, I have 9 AM, 9:30 AM and 10 AM.');
    const done = await loop.say('the last one');
    expect(done.calls[0]!.arguments).toEqual({ order_id: '4242', address: 'at 10:00 please' });
    expect(done.text).toBe('Booked 10 AM for 4242. The time is forgotten. Bye.');
  });

  it('branches on a call variable', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO, { variables: { mode: 'fast' } }), tools, handlers(['09:00']));
    expect((await loop.open()).text).toBe('Fast lane for 4242. I can do 9 AM.');
    expect((await loop.say('another day')).text).toBe('Bye.');
  });

  it('takes the default branch of a tool result that has no list', async () => {
    const loop = new FakeLoop(await scriptSession(SCENARIO), tools, handlers([]));
    expect((await loop.open()).text).toBe('Nothing free. Bye.');
  });
});

describe('validation of the new fields', () => {
  const issues = (yaml: string): string[] => {
    try {
      parseScenario(yaml, 'x.yaml');
      return [];
    } catch (err) {
      if (!(err instanceof ScenarioError)) throw err;
      return err.issues.map((i) => `${i.path}: ${i.message}`);
    }
  };

  it('accepts the feature scenario', () => {
    expect(issues(SCENARIO)).toEqual([]);
  });

  it('refuses choices without collect, fills of unknown slots, conditions on unknown slots or on two things', () => {
    const found = issues(
      SCENARIO.replace('    choices: "{{result.times}}"\n', '')
        .replace('  fast:\n    say: "Fast lane for {{order_id}}."', '  fast:\n    choices: "{{result.times}}"\n    say: "Fast lane for {{order_id}}."')
        .replace('fill: { order_id: "{{result.order_id}}"', 'fill: { order_nr: "{{result.order_id}}"')
        .replace('{ slot: note, exists: true }', '{ slot: notes, exists: true }'),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        'states.fast.choices: "choices" only applies to a state that collects a slot',
        'states.look.branches[0].fill.order_nr: unknown slot "order_nr" (slots: time, order_id, note)',
        'states.route.branches[1].when.slot: unknown slot "notes" (slots: time, order_id, note)',
      ]),
    );
    const shape = issues(SCENARIO.replace('{ var: mode, equals: fast }', '{ var: mode, slot: note, equals: fast }'));
    expect(shape.some((f) => f.startsWith('states.route.branches[0].when') && f.includes('a condition tests one of field, slot or var'))).toBe(true);
  });

  it('refuses a deciding state that loops, has "next", or no branch for every case', () => {
    expect(issues(SCENARIO.replace('      - goto: bye\n  fast:', '      - goto: route\n  fast:'))).toContainEqual(
      'states.route: states loop without waiting for the caller: route -> route',
    );
    expect(issues(SCENARIO.replace('  route:\n    branches:', '  route:\n    next: bye\n    branches:'))).toContainEqual('states.route.next: a decide state does not use "next"');
    expect(issues(SCENARIO.replace('      - goto: bye\n  fast:', '  fast:'))).toContainEqual(
      'states.route.branches: no branch catches every result: end with a branch without "when", or cover both ok and error',
    );
  });
});

describe('recognition hints', () => {
  it('lists the vocabulary of date, time and name slots, and the ways to pick a choice', () => {
    const sc = parseScenario(`${SCENARIO}\n`.replace('  note: { type: text }', '  note: { type: text }\n  day: { type: date }\n  who: { type: name }'));
    const phrases = new ScriptProvider(sc, silentLogger).expectedPhrases();
    expect(phrases).toEqual(expect.arrayContaining(['thursday', 'tomorrow', 'next friday', "ten o'clock", 'half past', 'p m', 'the second one', 'the earliest', 'my name is', 'another day']));
  });
});
