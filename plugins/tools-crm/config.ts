/**
 * Config of the tools-crm plugin (the block under `plugins.tools-crm.config`). Every field has
 * a default; unknown keys are errors (a typo must not be silently ignored).
 *
 *   databaseUrl   postgres://… (default: env DATABASE_URL), or pglite:memory / pglite:<dir>;
 *                 with neither, an embedded in-memory PGlite with demo data
 *   seedDemoData  default: true on embedded PGlite, false on a real server
 *   timezone      IANA zone the business's dates and times are in
 *   businessHours open/close "HH:MM", slotMinutes, days, bays (parallel appointments), closedDates
 *   services      bookable services and their durations (the model can only pick these)
 *   phone         how numbers without "+" are read (country code, trunk prefix)
 *   staffNumbers  numbers whose callers are staff: they may look up other customers
 *   cache         redisUrl (unset: no cache), ttlSeconds, keyPrefix, timeoutMs
 */
import { z } from 'zod';
import { normalizePhone } from '../../src/storage/phone.js';
import { DEFAULT_SERVICES, WEEKDAYS, isIsoDate, isValidTimeZone, scheduleProblems, type Schedule } from '../../src/storage/schedule.js';

const Hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a 24-hour time "HH:MM"');

export const BusinessHoursSchema = z.strictObject({
  open: Hhmm.default('08:00'),
  close: Hhmm.default('18:00'),
  slotMinutes: z.number().int().min(5).max(240).default(30),
  days: z.array(z.enum(WEEKDAYS)).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
  /** Appointments that can run at the same time (service bays). */
  bays: z.number().int().min(1).max(100).default(1),
  closedDates: z.array(z.string().refine(isIsoDate, 'must be a date "YYYY-MM-DD"')).default([]),
});

export const ServiceSchema = z.strictObject({
  name: z.string().trim().min(1).max(60),
  minutes: z.number().int().min(5).max(8 * 60),
});

export const PhoneRulesSchema = z.strictObject({
  countryCode: z.string().regex(/^[1-9]\d{0,2}$/, 'digits of a country calling code, e.g. "1" or "44"').default('1'),
  nationalPrefix: z.string().regex(/^\d{0,2}$/).default('1'),
  internationalPrefixes: z.array(z.string().regex(/^\d{2,4}$/)).default(['011', '00']),
});

export const CacheConfigSchema = z.strictObject({
  /** redis://host:port/db. Unset: every lookup goes to the database. */
  redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  ttlSeconds: z.number().int().min(1).max(86_400).default(300),
  keyPrefix: z.string().max(100).default('switchboard:crm:'),
  /** A cache command slower than this is abandoned and the database answers instead. */
  timeoutMs: z.number().int().min(10).max(5000).default(250),
});

export const CrmConfigSchema = z
  .strictObject({
    databaseUrl: z.string().min(1).optional(),
    seedDemoData: z.boolean().optional(),
    /** Apply pending migrations at startup (under an advisory lock). */
    migrate: z.boolean().default(true),
    /** Keep retrying an unreachable database at startup this long before failing. */
    connectRetrySeconds: z.number().int().min(0).max(600).default(30),
    timezone: z.string().refine(isValidTimeZone, 'must be an IANA time zone such as "America/New_York"').default('UTC'),
    businessHours: BusinessHoursSchema.default(BusinessHoursSchema.parse({})),
    services: z.array(ServiceSchema).min(1).default([...DEFAULT_SERVICES]),
    /** Furthest date that can be booked, in days from today. */
    maxDaysAhead: z.number().int().min(1).max(730).default(60),
    /** Slots starting sooner than this are neither offered nor booked. */
    minLeadMinutes: z.number().int().min(0).max(7 * 24 * 60).default(30),
    phone: PhoneRulesSchema.default(PhoneRulesSchema.parse({})),
    /** Callers from these numbers are staff (may look up any customer). */
    staffNumbers: z.array(z.string()).default([]),
    cache: CacheConfigSchema.default(CacheConfigSchema.parse({})),
  })
  .superRefine((c, ctx) => {
    for (const message of scheduleProblems(toSchedule(c))) ctx.addIssue({ code: 'custom', message, path: ['businessHours'] });
    c.staffNumbers.forEach((n, i) => {
      if (!normalizePhone(n, c.phone)) ctx.addIssue({ code: 'custom', message: `"${n}" is not a phone number`, path: ['staffNumbers', i] });
    });
  });

export type CrmConfig = z.infer<typeof CrmConfigSchema>;

export function toSchedule(c: Pick<CrmConfig, 'timezone' | 'businessHours' | 'services' | 'maxDaysAhead' | 'minLeadMinutes'>): Schedule {
  return { timezone: c.timezone, hours: c.businessHours, services: c.services, maxDaysAhead: c.maxDaysAhead, minLeadMinutes: c.minLeadMinutes };
}
