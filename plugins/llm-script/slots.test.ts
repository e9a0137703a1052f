import { describe, expect, it } from 'vitest';
import { normalize } from './normalize.js';
import type { SlotSpec } from './scenario.js';
import { compileSlot, extractDigits, extractName, extractSlot, type SlotValue } from './slots.js';

const today = { year: 2026, month: 5, day: 1 };
const extract = (spec: SlotSpec, text: string): SlotValue | undefined => extractSlot(compileSlot('s', spec), text, normalize(text), { today });

describe('digits slot', () => {
  const orderId: SlotSpec = { type: 'digits', minLength: 3, maxLength: 10 };

  it('normalises spoken digits', () => {
    expect(extract(orderId, 'four two seven')).toBe('427');
    expect(extract(orderId, 'it is four twenty seven')).toBe('427');
    expect(extract(orderId, 'double five one')).toBe('551');
    expect(extract(orderId, 'four oh seven')).toBe('407');
    expect(extract(orderId, 'Order #427, please')).toBe('427');
    expect(extract(orderId, 'four hundred and twenty seven')).toBe('427');
    expect(extract(orderId, '4 2 7')).toBe('427');
  });

  it('reads recogniser homophones of digits only when the plain reading is too short', () => {
    // pocketsphinx heard "four two seven" as "for to seven"
    expect(extract(orderId, 'for to seven')).toBe('427');
    expect(extractDigits(normalize('one two three for me'), 3)).toBe('123');
  });

  it('respects the length limits and prefers the run that fits', () => {
    expect(extract(orderId, 'seven')).toBeUndefined();
    expect(extract(orderId, 'order 427 from the 5th')).toBe('427');
    expect(extract({ type: 'digits', minLength: 3, maxLength: 4 }, 'one two three four five')).toBeUndefined();
    expect(extract(orderId, 'no idea')).toBeUndefined();
  });
});

describe('number slot', () => {
  it('reads numerals within bounds', () => {
    expect(extract({ type: 'number' }, 'twenty five people')).toBe(25);
    expect(extract({ type: 'number', min: 1, max: 10 }, 'for two people')).toBe(2);
    expect(extract({ type: 'number', min: 1, max: 10 }, 'forty')).toBeUndefined();
    expect(extract({ type: 'number' }, 'a few')).toBeUndefined();
  });
});

describe('date slot', () => {
  it('uses the injected day', () => {
    expect(extract({ type: 'date', prefer: 'future' }, 'tomorrow')).toBe('2026-05-02');
    expect(extract({ type: 'date', prefer: 'future' }, 'the 5th of may')).toBe('2026-05-05');
    expect(extract({ type: 'date', prefer: 'future' }, 'sometime')).toBeUndefined();
  });
});

describe('name slot', () => {
  it('takes the name after a lead-in, or a short bare answer', () => {
    expect(extractName(normalize('my name is john smith'))).toBe('John Smith');
    expect(extractName(normalize("Hi, this is Anna and I'm calling about my order"))).toBe('Anna');
    expect(extractName(normalize('i am peter'))).toBe('Peter');
    expect(extractName(normalize('Maria Lopez'))).toBe('Maria Lopez');
    expect(extractName(normalize('yes'))).toBeUndefined();
    expect(extractName(normalize('i would like to know where my order is'))).toBeUndefined();
  });
});

describe('text slot', () => {
  const address: SlotSpec = { type: 'text', minWords: 2, stripPrefixes: ['my new address is', 'it is', 'the address is'] };

  it('strips lead-ins and keeps the rest, normalised', () => {
    expect(extract(address, 'My new address is twelve High Street, Springfield')).toBe('12 high street springfield');
    expect(extract(address, 'yeah, it is 5 Baker Street')).toBe('5 baker street');
    expect(extract(address, '5 Baker Street')).toBe('5 baker street');
  });

  it('refuses answers shorter than minWords', () => {
    expect(extract(address, 'yes')).toBeUndefined();
    expect(extract(address, 'it is')).toBeUndefined();
  });
});

describe('enum slot', () => {
  const speed: SlotSpec = { type: 'enum', values: { standard: ['regular', 'normal'], express: ['next day', 'fast', 'quick'] } };

  it('maps synonyms to the canonical value, fuzzily', () => {
    expect(extract(speed, 'the normal one')).toBe('standard');
    expect(extract(speed, 'Express please')).toBe('express');
    expect(extract(speed, 'expres')).toBe('express');
    expect(extract(speed, 'next day delivery')).toBe('express');
    expect(extract(speed, 'whatever')).toBeUndefined();
  });
});
