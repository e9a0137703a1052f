import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildYesNoLexicon, detectYesNo, findPhrase, IntentMatcher, negatedBefore } from './match.js';
import { normalize } from './normalize.js';
import { parseScenario } from './scenario.js';

const scenario = parseScenario(readFileSync(resolve(import.meta.dirname, '../../scenarios/call-centre.yaml'), 'utf8'));
const matcher = new IntentMatcher([
  ...Object.entries(scenario.intents).map(([id, i]) => ({ id, examples: i.examples, keywords: i.keywords })),
  ...Object.entries(scenario.faq).map(([id, f]) => ({ id: `faq:${id}`, examples: f.examples, keywords: f.keywords })),
]);
const THRESHOLD = scenario.settings.matchThreshold;
const intentOf = (text: string): string | undefined => matcher.best(normalize(text), THRESHOLD)?.id;

describe('intent matching (call-centre scenario)', () => {
  it.each([
    ['where is my order', 'order_status'],
    ['WHERE IS MY ORDER??', 'order_status'],
    ['can you tell me when my order will come', 'order_status'],
    ['I want to change my address', 'change_address'],
    ['I need to update the delivery address for my order', 'change_address'],
    ['cancel my order please', 'cancel_order'],
    ['how long does delivery take', 'faq:delivery_times'],
    ['what are your opening hours', 'faq:opening_hours'],
    ['what is your returns policy', 'faq:returns_policy'],
    ['my parcel arrived damaged', 'complaint'],
    ['I have a question', 'faq_question'],
    ['bye', 'goodbye'],
    ['say that again', 'repeat'],
  ])('%s -> %s', (text, intent) => {
    expect(intentOf(text)).toBe(intent);
  });

  it.each([
    // typos
    ['wher is my ordr', 'order_status'],
    ['change adress please', 'change_address'],
    ['cancelation of my order', 'cancel_order'],
    ['what are your openning hours', 'faq:opening_hours'],
    // recogniser homophones and near-misses (pocketsphinx-style)
    ['wear is my order', 'order_status'],
    ['i want to council my order', 'cancel_order'],
    ['how long does the livery take', 'faq:delivery_times'],
    ['i would like to make a compliant', 'complaint'],
    ['what are you open in ours', 'faq:opening_hours'],
    // missing words, extra words, hesitations, no punctuation
    ['where my order', 'order_status'],
    ['uh yeah hi i was wondering where my parcel is it hasnt come yet', 'order_status'],
    ['um so basically i moved house last week', 'change_address'],
    ['how do i uh send something back', 'faq:returns_policy'],
  ])('noisy: %s -> %s', (text, intent) => {
    expect(intentOf(text)).toBe(intent);
  });

  it.each(['the weather is nice today', 'blah blah', 'hello', 'yes', 'no', 'order'])('no intent for %j', (text) => {
    expect(intentOf(text)).toBeUndefined();
  });

  it('weights words that tell intents apart above words they share', () => {
    const scores = matcher.scoreAll(normalize('cancel my order'));
    expect(scores[0]!.id).toBe('cancel_order');
    const status = scores.find((s) => s.id === 'order_status')!;
    expect(status.score).toBeLessThan(0.5);
  });

  it('restricts the choice to the intents a state allows', () => {
    const allowed = new Set(['goodbye', 'repeat']);
    expect(matcher.best(normalize('where is my order'), THRESHOLD, allowed)).toBeUndefined();
    expect(matcher.best(normalize('ok bye'), THRESHOLD, allowed)?.id).toBe('goodbye');
  });

  it('ignores a negated keyword', () => {
    const m = new IntentMatcher([{ id: 'cancel', examples: [], keywords: ['cancel'] }]);
    expect(m.best(normalize('cancel it'), 0.5)?.id).toBe('cancel');
    expect(m.best(normalize('no do not cancel'), 0.5)).toBeUndefined();
  });
});

describe('phrase finding', () => {
  it('allows one stray word between phrase words, and fuzzy tokens', () => {
    expect(findPhrase(normalize('i want a real live person'), normalize('real person'))).toBeDefined();
    expect(findPhrase(normalize('get me an operater'), normalize('operator'))).toBeDefined();
    expect(findPhrase(normalize('real, like an actual person'), normalize('real person'))).toBeUndefined();
    expect(findPhrase(normalize('person real'), normalize('real person'))).toBeUndefined();
  });

  it('spots a negation just before a phrase', () => {
    const t = normalize("I don't need a human");
    const m = findPhrase(t, ['human'])!;
    expect(negatedBefore(t, m.start)).toBe(true);
    const t2 = normalize('no I want a human');
    expect(negatedBefore(t2, findPhrase(t2, ['human'])!.start)).toBe(false);
  });
});

describe('yes / no', () => {
  const lex = buildYesNoLexicon(scenario.lexicon.yes, scenario.lexicon.no);
  const yn = (text: string): string | undefined => detectYesNo(normalize(text), lex);

  it.each(['yes', 'Yeah.', 'yep', 'correct', "that's right", 'sure, go ahead', 'yes please', 'uh huh', 'absolutely', 'corect'])('%j is yes', (t) => {
    expect(yn(t)).toBe('yes');
  });

  it.each(['no', 'nope', 'nah', 'no thanks', 'not correct', "that's not right", "that's wrong", "No, that's all", 'nothing else', 'not really'])('%j is no', (t) => {
    expect(yn(t)).toBe('no');
  });

  it.each(['maybe', 'what', 'yet', 'no yes', ''])('%j is neither', (t) => {
    expect(yn(t)).toBeUndefined();
  });
});
