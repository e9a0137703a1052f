/** The session store from the config's `sessions` section (Redis with in-process failover, or in-process only). */
import type { SessionsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { FailoverSessionStore } from './failover-store.js';
import { MemorySessionStore } from './memory-store.js';
import { createSessionMetrics, type SessionMetrics } from './metrics.js';
import { RedisSessionStore } from './redis-store.js';

export interface OpenedSessions {
  store: FailoverSessionStore;
  metrics: SessionMetrics;
  ttlMs: number;
}

export function openSessionStore(config: SessionsConfig, deps: { log: Logger; registry: MetricsRegistry }): OpenedSessions {
  const ttlMs = config.ttlSeconds * 1000;
  const metrics = createSessionMetrics(deps.registry);
  const redis = config.redisUrl
    ? new RedisSessionStore({ url: config.redisUrl, ttlMs, keyPrefix: config.keyPrefix, timeoutMs: config.timeoutMs })
    : undefined;
  const store = new FailoverSessionStore({
    redis,
    redisUrl: config.redisUrl,
    memory: new MemorySessionStore({ ttlMs }),
    log: deps.log,
    metrics,
  });
  return { store, metrics, ttlMs };
}
