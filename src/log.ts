/**
 * Structured logging (pino). One root logger; a child per call (`callLogger`).
 * Personal data only ever goes under the keys in REDACT_PATHS, which pino censors.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'caller',
  'callerNumber',
  'phone',
  'transcript',
  'text',
  'password',
  'secret',
  'authorization',
  'dtmf',
  '*.dtmf',
  '*.caller',
  '*.callerNumber',
  '*.phone',
  '*.transcript',
  '*.text',
  '*.password',
  '*.secret',
  '*.authorization',
];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.SWITCHBOARD_LOG_LEVEL ?? 'info';
  const options = { name: opts.name ?? 'switchboard', level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return opts.destination ? pino(options, opts.destination as DestinationStream) : pino(options);
}

/** A logger that discards everything (tests and benchmarks that want quiet). */
export const silentLogger: Logger = pino({ level: 'silent' });
