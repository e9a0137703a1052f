/** Prometheus metrics of the session store and of call adoption after a restart. */
import type { MetricsRegistry } from '../metrics/registry.js';

export function createSessionMetrics(r: MetricsRegistry) {
  return {
    redisUp: r.gauge('switchboard_session_store_redis_up', '1 while sessions are kept in Redis, 0 while Redis is down or unset (in-process store)'),
    fallbacks: r.counter('switchboard_session_store_fallbacks_total', 'Session operations served by the in-process store because Redis was unavailable, by operation'),
    outages: r.counter('switchboard_session_store_outages_total', 'Switches from Redis to the in-process store'),
    reconnects: r.counter('switchboard_session_store_reconnects_total', 'Returns to Redis after an outage'),
    resynced: r.counter('switchboard_session_store_resynced_total', 'Sessions kept in memory during an outage and written back to Redis'),
    invalid: r.counter('switchboard_session_store_invalid_total', 'Stored sessions that could not be read (wrong version or shape) and were ignored'),
    saveErrors: r.counter('switchboard_session_save_errors_total', 'Session saves that failed in every store'),
    adoptions: r.counter('switchboard_calls_adopted_total', 'Calls found in the Stasis app after a (re)connect, by result (adopted, no_session, failed)'),
    staleChannels: r.counter('switchboard_stale_media_channels_total', 'ExternalMedia channels left by a previous process, hung up'),
    staleBridges: r.counter('switchboard_stale_bridges_total', 'Bridges left by a previous process, destroyed'),
    lostCalls: r.counter('switchboard_calls_lost_total', 'Calls ended because their channel was gone after an ARI reconnect'),
  };
}

export type SessionMetrics = ReturnType<typeof createSessionMetrics>;
