/**
 * Config of the tools-micromobility plugin (the block under `plugins.tools-micromobility.config`).
 * Every field has a default; unknown keys are errors.
 *
 *   databaseUrl         postgres://… (default: env DATABASE_URL), or pglite:memory / pglite:<dir>
 *   seedDemoData        default: true on embedded PGlite, false on a real server
 *   demoTransitMs       demo data: how long the delayed fix of scooter 4217 takes to arrive
 *                       after a locate request (default 40% of geofenceRecheckMs)
 *   geofenceRecheckMs   end_trip on a vehicle the CRM shows in a red zone (or outside every
 *                       parking area): ask the vehicle for a fresh fix, wait this long, check again
 *   restarts            remote restarts allowed per vehicle within a window
 *   phone               how numbers without "+" are read (country code, trunk prefix)
 *   exclude             tool names not to offer (e.g. create_ticket when tools-crm's is used)
 */
import { z } from 'zod';
import { DEFAULT_PHONE_RULES } from '../../src/storage/phone.js';

export const MICROMOBILITY_TOOL_NAMES = ['get_active_trip', 'get_vehicle_status', 'end_trip', 'restart_transport', 'create_ticket'] as const;
export type MicromobilityToolName = (typeof MICROMOBILITY_TOOL_NAMES)[number];

const PhoneRulesSchema = z.strictObject({
  countryCode: z.string().regex(/^[1-9]\d{0,2}$/, 'digits of a country calling code, e.g. "1" or "380"').default(DEFAULT_PHONE_RULES.countryCode),
  nationalPrefix: z.string().regex(/^\d{0,2}$/).default(DEFAULT_PHONE_RULES.nationalPrefix),
  internationalPrefixes: z.array(z.string().regex(/^\d{2,4}$/)).default([...DEFAULT_PHONE_RULES.internationalPrefixes]),
});

const RestartsSchema = z.strictObject({
  max: z.number().int().min(1).max(20).default(3),
  windowMinutes: z.number().int().min(1).max(24 * 60).default(10),
});

export const MicromobilityConfigSchema = z.strictObject({
  databaseUrl: z
    .string()
    .regex(/^(postgres(ql)?:\/\/|pglite:)/i, 'must be postgres://…, postgresql://…, pglite:<directory> or pglite:memory')
    .optional(),
  seedDemoData: z.boolean().optional(),
  /** Default: 40% of geofenceRecheckMs (4 s of the 10 s), so the re-check finds the fix. */
  demoTransitMs: z.number().int().min(0).max(600_000).optional(),
  /** Apply pending migrations at startup (under an advisory lock). */
  migrate: z.boolean().default(true),
  /** Keep retrying an unreachable database at startup this long before failing. */
  connectRetrySeconds: z.number().int().min(0).max(600).default(30),
  geofenceRecheckMs: z.number().int().min(0).max(60_000).default(10_000),
  restarts: RestartsSchema.default(RestartsSchema.parse({})),
  phone: PhoneRulesSchema.default(PhoneRulesSchema.parse({})),
  exclude: z.array(z.enum(MICROMOBILITY_TOOL_NAMES)).default([]),
});

export type MicromobilityConfig = z.infer<typeof MicromobilityConfigSchema>;
