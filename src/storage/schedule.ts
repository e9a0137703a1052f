/**
 * Business hours and the slot grid appointments are booked on, as pure functions. Dates are
 * calendar dates in the business's time zone ("2026-11-24"), times are wall-clock "HH:MM"
 * there; turning them into instants is left to PostgreSQL (`(date + time) AT TIME ZONE tz`),
 * which knows the zone rules, DST included.
 */

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface BusinessHours {
  /** Opening time, "HH:MM" (24 h). */
  open: string;
  /** Closing time, "HH:MM": the last appointment ends by then. */
  close: string;
  /** Length of the booking grid's step and of a service with no duration of its own. */
  slotMinutes: number;
  /** Days the business takes appointments. */
  days: readonly Weekday[];
  /** Appointments that may run at the same time (service bays). */
  bays: number;
  /** Dates closed regardless of the weekday (holidays), "YYYY-MM-DD". */
  closedDates: readonly string[];
}

export interface ServiceType {
  name: string;
  /** Duration, a multiple of the slot length. */
  minutes: number;
}

export interface Schedule {
  /** IANA zone of the business ("America/New_York"). */
  timezone: string;
  hours: BusinessHours;
  /** Services that can be booked; the tool schema only accepts these names. */
  services: readonly ServiceType[];
  /** Furthest date that can be booked, in days from today. */
  maxDaysAhead: number;
  /** A slot must start at least this long after now to be offered or booked. */
  minLeadMinutes: number;
}

export const DEFAULT_SERVICES: readonly ServiceType[] = [
  { name: 'oil change', minutes: 30 },
  { name: 'tire rotation', minutes: 30 },
  { name: 'inspection', minutes: 60 },
  { name: 'brake service', minutes: 90 },
  { name: 'diagnostics', minutes: 60 },
];

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

export function isHhmm(s: string): boolean {
  return TIME_RE.test(s);
}

/** Minutes since midnight of "HH:MM". */
export function minutesOf(hhmm: string): number {
  const m = TIME_RE.exec(hhmm);
  if (!m) throw new RangeError(`not a HH:MM time: ${hhmm}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export function hhmm(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** The calendar date `now` falls on in `timezone`. */
export function localDate(now: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(now);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

export function addDays(date: string, days: number): string {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a date: ${date}`);
  const dt = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days));
  return dt.toISOString().slice(0, 10);
}

/** Whole days from `a` to `b` (both YYYY-MM-DD). */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

export function weekdayOf(date: string): Weekday {
  return WEEKDAYS[new Date(`${date}T00:00:00Z`).getUTCDay()]!;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** True when the business takes appointments on `date` at all. */
export function isOpenOn(hours: BusinessHours, date: string): boolean {
  return hours.days.includes(weekdayOf(date)) && !hours.closedDates.includes(date);
}

/** Start times ("HH:MM") on the grid where an appointment of `minutes` fits in the day. */
export function gridStarts(hours: BusinessHours, minutes: number): string[] {
  const open = minutesOf(hours.open);
  const close = minutesOf(hours.close);
  const out: string[] = [];
  for (let t = open; t + minutes <= close; t += hours.slotMinutes) out.push(hhmm(t));
  return out;
}

/** Why `time` cannot start an appointment of `minutes` (undefined when it can). */
export function gridProblem(hours: BusinessHours, time: string, minutes: number): 'outside_hours' | 'off_grid' | undefined {
  const t = minutesOf(time);
  const open = minutesOf(hours.open);
  if (t < open || t + minutes > minutesOf(hours.close)) return 'outside_hours';
  if ((t - open) % hours.slotMinutes !== 0) return 'off_grid';
  return undefined;
}

/** Duration of `service` (its own, else one slot). */
export function serviceMinutes(schedule: Schedule, service: string | undefined): number {
  if (!service) return schedule.hours.slotMinutes;
  const s = schedule.services.find((x) => x.name.toLowerCase() === service.toLowerCase());
  return s ? s.minutes : schedule.hours.slotMinutes;
}

/** Problems with a schedule configuration, in words (empty when it is usable). */
export function scheduleProblems(s: Schedule): string[] {
  const out: string[] = [];
  if (!isValidTimeZone(s.timezone)) out.push(`timezone "${s.timezone}" is not an IANA time zone`);
  const h = s.hours;
  if (!isHhmm(h.open) || !isHhmm(h.close)) out.push('businessHours.open and close must be HH:MM');
  else if (minutesOf(h.close) <= minutesOf(h.open)) out.push('businessHours.close must be after businessHours.open');
  else if (minutesOf(h.close) - minutesOf(h.open) < h.slotMinutes) out.push('businessHours leave no room for a single slot');
  if (h.days.length === 0) out.push('businessHours.days is empty: nothing could ever be booked');
  for (const d of h.closedDates) if (!isIsoDate(d)) out.push(`businessHours.closedDates: "${d}" is not a YYYY-MM-DD date`);
  for (const svc of s.services) {
    if (svc.minutes % h.slotMinutes !== 0) out.push(`service "${svc.name}" lasts ${svc.minutes} min, not a multiple of slotMinutes (${h.slotMinutes})`);
  }
  const names = s.services.map((x) => x.name.toLowerCase());
  if (new Set(names).size !== names.length) out.push('services: two services have the same name');
  return out;
}
