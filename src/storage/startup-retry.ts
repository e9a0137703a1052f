/** Start-up against a database that may still be coming up (docker compose starts them together). */
import type { Logger } from '../log.js';
import { isDbUnavailableError } from './db.js';

/** A database that is still starting (docker compose) gets `seconds` to come up. */
export async function withStartupRetry<T>(fn: () => Promise<T>, seconds: number, log: Logger, where: string): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isDbUnavailableError(err) || Date.now() >= deadline) throw err;
      if (attempt === 1) log.warn({ db: where, err: err instanceof Error ? err.message : String(err) }, 'database not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 5000, Math.max(0, deadline - Date.now()))));
    }
  }
}
