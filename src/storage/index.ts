/** Business data storage: one Db interface over PostgreSQL or embedded PGlite, migrations, the CRM. */
export {
  constraintName,
  isDbUnavailableError,
  isRetryableTransactionError,
  sqlState,
  transactionWithRetry,
  type Db,
  type DbDialect,
  type DbSession,
  type QueryResult,
  type Queryable,
  type SqlValue,
} from './db.js';
export { createPgDb, describeUrl, type PgDbOptions } from './pg.js';
export { createPgliteDb, type PgliteDbOptions } from './pglite.js';
export { openDb, parseDbLocation, type DbLocation, type OpenDbOptions } from './open.js';
export {
  DEFAULT_MIGRATIONS_DIR,
  MigrationChecksumError,
  MigrationError,
  checksum,
  loadMigrations,
  migrate,
  type AppliedMigration,
  type MigrateOptions,
  type MigrateResult,
  type Migration,
} from './migrate.js';
export { IdempotencyConflictError, canonicalJson, purgeIdempotency, requestHash, runIdempotent, type IdempotentOutcome, type IdempotentRequest } from './idempotency.js';
export { DEFAULT_PHONE_RULES, isE164, normalizePhone, phoneHint, type PhoneRules } from './phone.js';
export { containsPattern, escapeLike, prefixPattern } from './sql.js';
export {
  DEFAULT_SERVICES,
  WEEKDAYS,
  addDays,
  daysBetween,
  gridProblem,
  gridStarts,
  hhmm,
  isHhmm,
  isIsoDate,
  isOpenOn,
  isValidTimeZone,
  localDate,
  minutesOf,
  scheduleProblems,
  serviceMinutes,
  weekdayOf,
  type BusinessHours,
  type Schedule,
  type ServiceType,
  type Weekday,
} from './schedule.js';
export {
  CrmError,
  CrmStore,
  ORDER_STATUSES,
  TICKET_CATEGORIES,
  describeVehicle,
  type Appointment,
  type AppointmentStatus,
  type CrmErrorCode,
  type CrmStoreOptions,
  type CustomerMatch,
  type CustomerProfile,
  type DaySlots,
  type Order,
  type OrderItem,
  type OrderStatus,
  type Ticket,
  type TicketCategory,
  type Vehicle,
} from './crm.js';
export { DEMO_CUSTOMERS, seedDemoData, type SeedResult } from './seed.js';
