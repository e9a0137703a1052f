import { describe, expect, it } from 'vitest';
import { calendarDateIn, parseSpokenDate, spokenDate, type CalendarDate } from './dates.js';
import { editDistance, normalizeToString as n, phoneticKey, stem, tokenSimilarity } from './normalize.js';

describe('normalize: text', () => {
  it('lower-cases, drops punctuation and hesitations, expands contractions with or without apostrophes', () => {
    expect(n("Where's my ORDER?!")).toBe('where is my order');
    expect(n('wheres my order')).toBe('where is my order');
    expect(n('Um, I DON’T know... uh')).toBe('i do not know');
    expect(n("I can't, it won't")).toBe('i can not it will not');
    expect(n('i wanna cancel')).toBe('i want to cancel');
    expect(n("the order's address")).toBe('the order address');
    expect(n('Café crème')).toBe('cafe creme');
  });

  it('splits letters glued to numbers', () => {
    expect(n('order427')).toBe('order 427');
  });
});

describe('normalize: numerals', () => {
  it('keeps single spoken digits as separate digits', () => {
    expect(n('four two seven')).toBe('4 2 7');
    expect(n('Four, two, seven.')).toBe('4 2 7');
  });

  it('joins compound numbers', () => {
    expect(n('twenty five')).toBe('25');
    expect(n('twenty-five')).toBe('25');
    expect(n('four twenty seven')).toBe('4 27');
    expect(n('four hundred and twenty seven')).toBe('427');
    expect(n('one hundred twenty three')).toBe('123');
    expect(n('two thousand and six')).toBe('2006');
    expect(n('twenty five hundred')).toBe('2500');
    expect(n('a hundred')).toBe('100');
    expect(n('five thousand three hundred')).toBe('5300');
    expect(n('nineteen eighty four')).toBe('19 84');
    expect(n('twelve')).toBe('12');
  });

  it('reads "double" / "triple" and "oh" between digits', () => {
    expect(n('double five one')).toBe('5 5 1');
    expect(n('triple oh seven')).toBe('0 0 0 7');
    expect(n('four oh seven')).toBe('4 0 7');
    expect(n('oh four')).toBe('0 4');
    // "oh" that is an exclamation stays a word
    expect(n('oh I see')).toBe('oh i see');
  });

  it('turns ordinal words into ordinals', () => {
    expect(n('the fifth of May')).toBe('the 5th of may');
    expect(n('twenty first')).toBe('21st');
    expect(n('thirtieth')).toBe('30th');
    expect(n('the second one')).toBe('the 2nd 1');
  });

  it('leaves digit homophones alone outside a digit slot', () => {
    expect(n('i want to go for it')).toBe('i want to go for it');
  });
});

describe('token similarity', () => {
  it('equates stems, small typos and homophones, but not different short words', () => {
    expect(stem('cancelled')).toBe('cancel');
    expect(stem('cancellation')).toBe('cancel');
    expect(stem('delivery')).toBe(stem('delivered'));
    expect(stem('address')).toBe('address');
    expect(stem('status')).toBe('status');
    expect(tokenSimilarity('cancel', 'cancelling')).toBeGreaterThanOrEqual(0.8);
    expect(tokenSimilarity('adress', 'address')).toBeGreaterThanOrEqual(0.8);
    expect(tokenSimilarity('operater', 'operator')).toBeGreaterThanOrEqual(0.8);
    expect(tokenSimilarity('complaint', 'complain')).toBeGreaterThanOrEqual(0.8);
    expect(phoneticKey('their')).toBe(phoneticKey('there'));
    expect(tokenSimilarity('yet', 'yes')).toBe(0);
    expect(tokenSimilarity('your', 'hours')).toBe(0);
    expect(tokenSimilarity('427', '428')).toBe(0);
    expect(tokenSimilarity('order', 'border')).toBeLessThan(0.8);
  });

  it('computes edit distance with transpositions and a cut-off', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ordre', 'order')).toBe(1);
    expect(editDistance('abcdef', 'uvwxyz', 2)).toBe(3);
  });
});

describe('dates with an injected clock', () => {
  // Friday 1 May 2026
  const today: CalendarDate = { year: 2026, month: 5, day: 1 };
  const d = (text: string, prefer?: 'future' | 'past' | 'any'): string | undefined => parseSpokenDate(text, today, prefer);

  it('reads relative days', () => {
    expect(d('today')).toBe('2026-05-01');
    expect(d('tomorrow please')).toBe('2026-05-02');
    expect(d('the day after tomorrow')).toBe('2026-05-03');
    expect(d('yesterday')).toBe('2026-04-30');
    expect(d('in three days')).toBe('2026-05-04');
    expect(d('in a week')).toBe('2026-05-08');
    expect(d('in two weeks')).toBe('2026-05-15');
    expect(d('tomorow')).toBe('2026-05-02');
  });

  it('reads weekday names as the next such day (or the last one)', () => {
    expect(d('on monday')).toBe('2026-05-04');
    expect(d('next Friday')).toBe('2026-05-08');
    expect(d('friday')).toBe('2026-05-08');
    expect(d('this friday')).toBe('2026-05-01');
    expect(d('last tuesday')).toBe('2026-04-28');
    expect(d('wensday')).toBe('2026-05-06');
    expect(d('monday', 'past')).toBe('2026-04-27');
  });

  it('reads day-and-month forms with ordinals, in either order, with an optional year', () => {
    expect(d('the fifth of May')).toBe('2026-05-05');
    expect(d('May the fifth')).toBe('2026-05-05');
    expect(d('may 5th')).toBe('2026-05-05');
    expect(d('5 june')).toBe('2026-06-05');
    expect(d('the twenty first of june')).toBe('2026-06-21');
    expect(d('march third')).toBe('2027-03-03'); // already past this year
    expect(d('march third', 'past')).toBe('2026-03-03');
    expect(d('the 3rd of march 2025')).toBe('2025-03-03');
    expect(d('december twenty fifth twenty twenty six')).toBe('2026-12-25');
    expect(d('febuary 2nd')).toBe('2027-02-02');
  });

  it('reads a bare ordinal day as this month or the next', () => {
    expect(d('on the 20th')).toBe('2026-05-20');
    expect(d('the first')).toBe('2026-05-01');
    expect(d('the thirty first', 'future')).toBe('2026-05-31');
  });

  it('refuses impossible or absent dates, and "may" the verb', () => {
    expect(d('the 31st of april')).toBeUndefined();
    expect(d('I may call back')).toBeUndefined();
    expect(d('no idea')).toBeUndefined();
  });

  it('accepts ISO dates as written', () => {
    expect(d('2026-07-14')).toBe('2026-07-14');
  });

  it('takes "today" in the configured time zone', () => {
    const lateUtc = new Date('2026-05-01T23:30:00Z');
    expect(calendarDateIn(lateUtc, 'UTC')).toEqual({ year: 2026, month: 5, day: 1 });
    expect(calendarDateIn(lateUtc, 'Europe/Kyiv')).toEqual({ year: 2026, month: 5, day: 2 });
    expect(calendarDateIn(lateUtc, 'America/New_York')).toEqual({ year: 2026, month: 5, day: 1 });
  });

  it('speaks ISO dates', () => {
    expect(spokenDate('2026-05-05')).toBe('Tuesday the 5th of May');
    expect(spokenDate('2026-06-22')).toBe('Monday the 22nd of June');
    expect(spokenDate('2026-06-11')).toBe('Thursday the 11th of June');
    expect(spokenDate('not a date')).toBeUndefined();
  });
});
