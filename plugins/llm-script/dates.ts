/**
 * Spoken dates to ISO dates ("tomorrow", "next friday", "the fifth of May", "May 5th 2027",
 * "in three days"), relative to a calendar day the caller supplies, so tests inject a clock.
 * Calendar arithmetic is done on UTC midnights: no daylight-saving surprises.
 */
import { editDistance, normalize, tokenSimilarity } from './normalize.js';

export interface CalendarDate {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
}

export type DatePreference = 'future' | 'past' | 'any';

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const MONTH_ABBR: Readonly<Record<string, number>> = {
  jan: 1, feb: 2, mar: 3, apr: 4, jun: 6, jul: 7, aug: 8, sep: 9, sept: 9, oct: 10, nov: 11, dec: 12,
};
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** Today's calendar date at `now` in `timeZone` (IANA name; default: the process's zone). */
export function calendarDateIn(now: Date, timeZone?: string): CalendarDate {
  const fmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const parts = Object.fromEntries(fmt.formatToParts(now).map((p) => [p.type, p.value]));
  return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function toUtc(d: CalendarDate): number {
  return Date.UTC(d.year, d.month - 1, d.day);
}

function fromUtc(ms: number): CalendarDate {
  const dt = new Date(ms);
  return { year: dt.getUTCFullYear(), month: dt.getUTCMonth() + 1, day: dt.getUTCDate() };
}

export function addDays(d: CalendarDate, days: number): CalendarDate {
  return fromUtc(toUtc(d) + days * 86_400_000);
}

function weekday(d: CalendarDate): number {
  return new Date(toUtc(d)).getUTCDay();
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function isoDate(d: CalendarDate): string {
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

function compare(a: CalendarDate, b: CalendarDate): number {
  return toUtc(a) - toUtc(b);
}

/**
 * Index of the month or weekday name `token` is (a closed set, so looser than general
 * matching: up to two edits from 6 letters, "wensday"), or -1. Ambiguous near-misses are -1.
 */
function fuzzyIndex(token: string, names: readonly string[]): number {
  const exact = names.indexOf(token);
  if (exact >= 0) return exact;
  if (token.length < 5) return -1;
  const maxEdits = token.length >= 6 ? 2 : 1;
  let best = -1;
  let bestD = Infinity;
  let tie = false;
  names.forEach((n, i) => {
    if (n[0] !== token[0]) return;
    const d = editDistance(token, n, maxEdits);
    if (d < bestD) {
      bestD = d;
      best = i;
      tie = false;
    } else if (d === bestD) tie = true;
  });
  return bestD <= maxEdits && !tie ? best : -1;
}

function monthOf(token: string): number | undefined {
  const abbr = MONTH_ABBR[token];
  if (abbr) return abbr;
  if (token === 'may') return 5;
  const i = fuzzyIndex(token, MONTHS);
  return i >= 0 ? i + 1 : undefined;
}

function dayOf(token: string | undefined, allowPlain: boolean): number | undefined {
  if (token === undefined) return undefined;
  const m = /^(\d{1,2})(st|nd|rd|th)?$/.exec(token);
  if (!m) return undefined;
  if (!m[2] && !allowPlain) return undefined;
  const n = Number(m[1]);
  return n >= 1 && n <= 31 ? n : undefined;
}

function yearAt(tokens: readonly string[], i: number): { year: number; len: number } | undefined {
  const t = tokens[i];
  if (t && /^\d{4}$/.test(t)) {
    const y = Number(t);
    if (y >= 1900 && y <= 2199) return { year: y, len: 1 };
  }
  // "twenty twenty six" -> "20 26"
  const next = tokens[i + 1];
  if ((t === '19' || t === '20') && next && /^\d{2}$/.test(next)) return { year: Number(t) * 100 + Number(next), len: 2 };
  return undefined;
}

function skipFillers(tokens: readonly string[], i: number): number {
  let j = i;
  while (tokens[j] === 'the' || tokens[j] === 'of' || tokens[j] === 'on') j++;
  return j;
}

function build(year: number, month: number, day: number): CalendarDate | undefined {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  return { year, month, day };
}

function place(date: { month: number; day: number; year?: number }, today: CalendarDate, prefer: DatePreference): CalendarDate | undefined {
  if (date.year !== undefined) return build(date.year, date.month, date.day);
  let d = build(today.year, date.month, date.day);
  // 29 February in a common year: try the neighbouring year in the preferred direction.
  if (!d) return build(today.year + (prefer === 'past' ? -1 : 1), date.month, date.day);
  if (prefer === 'future' && compare(d, today) < 0) d = build(today.year + 1, date.month, date.day);
  else if (prefer === 'past' && compare(d, today) > 0) d = build(today.year - 1, date.month, date.day);
  return d;
}

/**
 * Month-and-day forms: "5th of may", "may 5th", "may the 5th", "5 may", each with an optional
 * year. 'invalid' when a month and day were said but make no date ("the 31st of April").
 */
function explicitDate(tokens: readonly string[], today: CalendarDate, prefer: DatePreference): CalendarDate | 'invalid' | undefined {
  let invalid = false;
  for (let i = 0; i < tokens.length; i++) {
    const month = monthOf(tokens[i]!);
    if (month === undefined) continue;
    // "may" is also a verb: only a month next to a day.
    // month [the] day [year]
    const after = skipFillers(tokens, i + 1);
    const dayAfter = dayOf(tokens[after], true);
    if (dayAfter !== undefined) {
      const y = yearAt(tokens, skipFillers(tokens, after + 1));
      const d = place({ month, day: dayAfter, ...(y ? { year: y.year } : {}) }, today, prefer);
      if (d) return d;
      invalid = true;
    }
    // [the] day [of] month [year]
    let before = i - 1;
    if (tokens[before] === 'of') before--;
    const dayBefore = dayOf(tokens[before], true);
    if (dayBefore !== undefined) {
      const y = yearAt(tokens, i + 1);
      const d = place({ month, day: dayBefore, ...(y ? { year: y.year } : {}) }, today, prefer);
      if (d) return d;
      invalid = true;
    }
  }
  return invalid ? 'invalid' : undefined;
}

const NUMBER_WORDS_IN = /^(\d+)$/;

/**
 * The ISO date (YYYY-MM-DD) a caller means, or undefined. `prefer` resolves dates said
 * without a year or week ("Monday", "the 5th"): the next one (future), the last one (past),
 * or this week's/month's/year's (any).
 */
export function parseSpokenDate(text: string, today: CalendarDate, prefer: DatePreference = 'future'): string | undefined {
  const iso = /\b(\d{4})-(\d{2})-(\d{2})\b/.exec(text);
  if (iso) {
    const d = build(Number(iso[1]), Number(iso[2]), Number(iso[3]));
    if (d) return isoDate(d);
  }
  const tokens = normalize(text);
  const has = (w: string): number => tokens.findIndex((t) => t === w || (w.length >= 6 && tokenSimilarity(t, w) >= 0.8));

  const explicit = explicitDate(tokens, today, prefer);
  if (explicit === 'invalid') return undefined;
  if (explicit) return isoDate(explicit);

  const tomorrow = has('tomorrow');
  if (tomorrow >= 0) {
    const dayAfter = tokens[tomorrow - 1] === 'after' && tokens[tomorrow - 2] === 'day';
    return isoDate(addDays(today, dayAfter ? 2 : 1));
  }
  const yesterday = has('yesterday');
  if (yesterday >= 0) {
    const dayBefore = tokens[yesterday - 1] === 'before' && tokens[yesterday - 2] === 'day';
    return isoDate(addDays(today, dayBefore ? -2 : -1));
  }
  if (has('today') >= 0 || has('tonight') >= 0) return isoDate(today);

  // "in 3 days", "in a week", "in 2 weeks"
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (tokens[i] !== 'in') continue;
    const n = tokens[i + 1] === 'a' ? 1 : NUMBER_WORDS_IN.test(tokens[i + 1]!) ? Number(tokens[i + 1]) : undefined;
    if (n === undefined) continue;
    const unit = tokens[i + 2]!;
    if (unit === 'day' || unit === 'days') return isoDate(addDays(today, n));
    if (unit === 'week' || unit === 'weeks') return isoDate(addDays(today, 7 * n));
  }
  const nextWeek = tokens.findIndex((t, i) => t === 'next' && tokens[i + 1] === 'week');
  if (nextWeek >= 0 && fuzzyWeekdayIndex(tokens) < 0) return isoDate(addDays(today, 7));

  const wd = fuzzyWeekdayIndex(tokens);
  if (wd >= 0) {
    const target = fuzzyIndex(tokens[wd]!, WEEKDAYS);
    const qualifier = tokens[wd - 1];
    const now = weekday(today);
    const ahead = (target - now + 7) % 7;
    const behind = (now - target + 7) % 7;
    if (qualifier === 'last' || (prefer === 'past' && qualifier !== 'next' && qualifier !== 'this')) return isoDate(addDays(today, -(behind || 7)));
    if (qualifier === 'this' || prefer === 'any') return isoDate(addDays(today, ahead));
    return isoDate(addDays(today, ahead || 7));
  }

  // "the 5th" alone: this month if still to come, else next month (or the reverse for past).
  for (let i = 0; i < tokens.length; i++) {
    const day = dayOf(tokens[i], false);
    if (day === undefined) continue;
    let d = build(today.year, today.month, day);
    if (prefer === 'future' && (!d || compare(d, today) < 0)) {
      const next = addDays({ year: today.year, month: today.month, day: 1 }, daysInMonth(today.year, today.month));
      d = build(next.year, next.month, day);
    } else if (prefer === 'past' && (!d || compare(d, today) > 0)) {
      const prev = addDays({ year: today.year, month: today.month, day: 1 }, -1);
      d = build(prev.year, prev.month, day);
    }
    if (d) return isoDate(d);
  }
  return undefined;
}

function fuzzyWeekdayIndex(tokens: readonly string[]): number {
  return tokens.findIndex((t) => fuzzyIndex(t, WEEKDAYS) >= 0);
}

const SPOKEN_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const SPOKEN_WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** "2026-05-05" -> "Tuesday the 5th of May" (undefined for anything that is not an ISO date). */
export function spokenDate(iso: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso.trim());
  if (!m) return undefined;
  const d = build(Number(m[1]), Number(m[2]), Number(m[3]));
  if (!d) return undefined;
  const n = d.day;
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th';
  return `${SPOKEN_WEEKDAYS[weekday(d)]!} the ${n}${suffix} of ${SPOKEN_MONTHS[d.month - 1]!}`;
}

// --- times of day ---------------------------------------------------------------------------

const HHMM_RE = /^([01]?\d|2[0-3]):([0-5]\d)$/;

function hhmm(h: number, m: number): string {
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

/**
 * "14:30" -> "2:30 PM", "08:00" -> "8 AM", "12:00" -> "12 noon" (undefined for anything else).
 * Capitals, not "a.m.": text-to-speech reads "AM" as the letters, and a sentence splitter does
 * not take its dot for the end of a sentence.
 */
export function spokenTime(value: string): string | undefined {
  const m = HHMM_RE.exec(value.trim());
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h === 0 && min === 0) return 'midnight';
  if (h === 12 && min === 0) return '12 noon';
  const h12 = h % 12 === 0 ? 12 : h % 12;
  return `${h12}${min ? `:${String(min).padStart(2, '0')}` : ''} ${h < 12 ? 'AM' : 'PM'}`;
}

export interface TimeOptions {
  /**
   * How an hour said without a.m./p.m. is read: the first of h and h+12 at or after this
   * "HH:MM" (default "07:00": "eight" is 08:00, "two" is 14:00, "twelve" is noon).
   */
  earliest?: string;
}

/** Words that may stand around a bare hour and still leave it the whole answer ("ten please"). */
const TIME_FILLERS = new Set([
  'the', 'a', 'at', 'around', 'about', 'please', 'ok', 'okay', 'yes', 'yeah', 'sure', 'how', 'what', 'say', 'let', 'us',
  'make', 'it', 'then', 'maybe', 'would', 'could', 'can', 'i', 'do', 'is', 'that', 'fine', 'good', 'works', 'for', 'me', 'best',
  'well', 'so', 'like', 'want', 'take', 'prefer', 'book', 'on', 'by', 'be', 'great', 'thanks', 'thank', 'you', 'will',
  'm', 'am', 'pm', 'in', 'this', 'morning', 'afternoon', 'evening', 'tonight', 'o',
]);
const AM_WORDS = [['am'], ['a', 'm'], ['in', 'the', 'morning'], ['this', 'morning'], ['morning']];
const PM_WORDS = [['pm'], ['p', 'm'], ['in', 'the', 'afternoon'], ['this', 'afternoon'], ['afternoon'], ['in', 'the', 'evening'], ['this', 'evening'], ['evening'], ['tonight']];
const TIME_LEADS = new Set(['at', 'around', 'about', 'from', 'after', 'before', 'by', 'until', 'till']);

function startsWithAt(tokens: readonly string[], i: number, seqs: readonly (readonly string[])[]): number {
  for (const s of seqs) if (s.every((w, k) => tokens[i + k] === w)) return s.length;
  return 0;
}

function hourOf(t: string | undefined): number | undefined {
  if (t === undefined || !/^\d{1,2}$/.test(t)) return undefined;
  const n = Number(t);
  return n <= 24 ? n : undefined;
}

function minuteOf(t: string | undefined): number | undefined {
  if (t === undefined || !/^\d{1,2}$/.test(t)) return undefined;
  const n = Number(t);
  return n <= 59 ? n : undefined;
}

/**
 * The time of day ("HH:MM", 24 h) a caller means, or undefined: "ten thirty", "10:30",
 * "half past two", "quarter to eleven", "twenty past nine", "nine oh five", "ten o'clock",
 * "two p m", "three in the afternoon", "noon". An hour said alone counts only when it is the
 * whole answer ("ten, please") or follows "at"/"around" ("at ten"), so "two tyres" is no time.
 */
export function parseSpokenTime(text: string, opts: TimeOptions = {}): string | undefined {
  const earliestMatch = HHMM_RE.exec(opts.earliest ?? '07:00');
  const earliest = earliestMatch ? Number(earliestMatch[1]) * 60 + Number(earliestMatch[2]) : 7 * 60;
  const tokens = normalize(text);
  const meridiemAt = (i: number): 'am' | 'pm' | undefined =>
    startsWithAt(tokens, i, AM_WORDS) > 0 ? 'am' : startsWithAt(tokens, i, PM_WORDS) > 0 ? 'pm' : undefined;
  let meridiem: 'am' | 'pm' | undefined;
  for (let i = 0; i < tokens.length && !meridiem; i++) meridiem = meridiemAt(i);

  const finish = (hour: number, m: number): string | undefined => {
    const h = hour === 24 ? 0 : hour;
    if (h > 23 || m > 59) return undefined;
    if (h >= 13 || h === 0) return hhmm(h, m);
    if (meridiem === 'am') return hhmm(h === 12 ? 0 : h, m);
    if (meridiem === 'pm') return hhmm(h === 12 ? 12 : h + 12, m);
    if (h === 12) return hhmm(12, m);
    // No a.m./p.m.: the first reading at or after `earliest`.
    return h * 60 + m >= earliest ? hhmm(h, m) : hhmm(h + 12, m);
  };

  const colon = /\b([01]?\d|2[0-3]):([0-5]\d)\b/.exec(text);
  if (colon) return finish(Number(colon[1]), Number(colon[2]));
  if (tokens.includes('noon') || tokens.includes('midday')) return '12:00';
  if (tokens.includes('midnight')) return '00:00';

  // half past ten, quarter past ten, quarter to eleven, twenty (minutes) past nine, ten to three
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const minutes = t === 'half' ? 30 : t === 'quarter' ? 15 : minuteOf(t);
    if (minutes === undefined || minutes === 0) continue;
    const j = tokens[i + 1] === 'minutes' ? i + 2 : i + 1;
    const rel = tokens[j];
    const h = hourOf(tokens[j + 1]);
    if (h === undefined || h > 12) continue;
    if (rel === 'past' || rel === 'after') return finish(h, minutes);
    if ((rel === 'to' || rel === 'before') && t !== 'half') return finish(h === 1 ? 12 : h - 1, 60 - minutes);
  }
  for (let i = 0; i < tokens.length; i++) {
    const h = hourOf(tokens[i]);
    if (h === undefined) continue;
    const next = tokens[i + 1];
    // ten o'clock (normalised to "10 0 clock"), ten oclock
    if ((next === '0' && tokens[i + 2] === 'clock') || next === 'oclock' || next === 'clock') return finish(h, 0);
    // nine oh five ("9 0 5")
    if (next === '0' && /^\d$/.test(tokens[i + 2] ?? '')) return finish(h, Number(tokens[i + 2]));
    // ten thirty, nine forty five
    const m = minuteOf(next);
    if (m !== undefined && m >= 10) return finish(h, m);
    // fourteen hundred
    if (next === 'hundred') return finish(h, 0);
    // an hour alone: after "at"/"around", before a.m./p.m., or as the whole answer ("ten, please")
    const alone = tokens.every((x, k) => k === i || TIME_FILLERS.has(x));
    if (TIME_LEADS.has(tokens[i - 1] ?? '') || meridiemAt(i + 1) !== undefined || alone) return finish(h, 0);
  }
  return undefined;
}
