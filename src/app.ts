/**
 * Assembles a running Switchboard: logger, metrics, the shared VAD model, the ARI
 * connection, the media factory and the call controller, plus a small HTTP server for
 * /metrics (Prometheus), /health and, when given, the authenticated /api/ (call records).
 * The CLI, the end-to-end tests and the benchmarks all start Switchboard through
 * startSwitchboard().
 */
import { createServer, type Server } from 'node:http';
import type { ApiHandler } from './api/handler.js';
import type { AddressInfo } from 'node:net';
import { echoAgentFactory } from './agents/echo.js';
import type { AgentFactory } from './agents/agent.js';
import { connectAri } from './ari/ari-connection.js';
import type { AriConnection, ExternalMediaFormat } from './ari/types.js';
import { openVadSource } from './audio/vad/vad-source.js';
import type { TurnDetectorConfig } from './audio/vad/turn-detector.js';
import { CallController, type OverflowTarget } from './call/call-controller.js';
import type { CallSummary } from './call/call-session.js';
import { createEngineMetrics, type EngineMetrics } from './call/engine-metrics.js';
import { createRtpMediaFactory, type MediaThread } from './call/media-binding.js';
import { isThreadPriority, type ThreadPriority } from './threads/thread-priority.js';
import { createLogger, type Logger } from './log.js';
import { SessionsConfigSchema, type SessionsConfig } from './config/schema.js';
import type { FailoverSessionStore } from './sessions/failover-store.js';
import { openSessionStore } from './sessions/open.js';
import { MetricsRegistry } from './metrics/registry.js';
import { loadPbxConnection } from './pbx/connection.js';
import type { LatencyHistogram } from './rtp/histogram.js';

export interface AriCredentials {
  url: string;
  username: string;
  password: string;
  app: string;
}

/** Sandbox credentials file for `instance`, overridden by ARI_* environment variables. */
export async function resolveAriCredentials(instance?: string): Promise<AriCredentials> {
  const c = await loadPbxConnection(instance);
  return { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp };
}

export interface SwitchboardOptions {
  ari: AriCredentials;
  defaultAgent?: string;
  /** Extra agents besides the built-in ones. */
  agents?: AgentFactory[];
  format?: ExternalMediaFormat;
  maxCalls?: number;
  overflow?: OverflowTarget;
  /** 0 disables the HTTP server; undefined picks a free port. */
  httpPort?: number;
  logger?: Logger;
  turn?: Partial<TurnDetectorConfig>;
  /** Give up if ARI has not answered by then (default: keep retrying). */
  ariTimeoutMs?: number;
  onCallEnded?: (summary: CallSummary) => void;
  /** Share a registry with other subsystems (conversation metrics); default: a new one. */
  registry?: MetricsRegistry;
  /** Per-call sessions (config `sessions`): Redis when redisUrl is set, else in-process. */
  sessions?: Partial<SessionsConfig>;
  /** Address the HTTP server listens on (default 127.0.0.1). */
  httpHost?: string;
  /** Serves /api/* (the authenticated call-records API, src/api); absent: /api/* is 404. */
  api?: ApiHandler;
}

export interface RunningSwitchboard {
  readonly ari: AriConnection;
  readonly controller: CallController;
  readonly metrics: EngineMetrics;
  readonly registry: MetricsRegistry;
  /** Per-call sessions (Redis with in-process failover). */
  readonly sessions: FailoverSessionStore;
  readonly httpUrl: string | undefined;
  /** RTP endpoints currently open (0 after every call has ended). */
  openEndpoints(): number;
  /** Listeners on the shared media clock (0 when no call is up: no timer left running). */
  clockListeners(): number;
  stop(): Promise<void>;
}

/**
 * SWITCHBOARD_VAD_SILENCE_FLOOR_DBFS: windows quieter than this skip Silero as unvoiced
 * (default -60; "off" runs the model on every window). A negative number from -120 to -20.
 */
function vadSilenceFloorFromEnv(): number | null | undefined {
  const raw = process.env.SWITCHBOARD_VAD_SILENCE_FLOOR_DBFS;
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'off') return null;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < -120 || n > -20) throw new Error(`SWITCHBOARD_VAD_SILENCE_FLOOR_DBFS must be "off" or a number from -120 to -20 (got "${raw}")`);
  return n;
}

/** SWITCHBOARD_VAD_WINDOW_MS: 32 (default), 64 or 96; anything else is a startup error. */
function vadWindowMsFromEnv(): 32 | 64 | 96 | undefined {
  const raw = process.env.SWITCHBOARD_VAD_WINDOW_MS;
  if (raw === undefined || raw === '') return undefined;
  if (raw === '32' || raw === '64' || raw === '96') return Number(raw) as 32 | 64 | 96;
  throw new Error(`SWITCHBOARD_VAD_WINDOW_MS must be 32, 64 or 96 (got "${raw}")`);
}

/** SWITCHBOARD_MEDIA_THREAD: worker (default: RTP and the media clock on their own thread) or main. */
function mediaThreadFromEnv(): MediaThread {
  const raw = process.env.SWITCHBOARD_MEDIA_THREAD;
  if (raw === undefined || raw === '' || raw === 'worker') return 'worker';
  if (raw === 'main') return 'main';
  throw new Error(`SWITCHBOARD_MEDIA_THREAD must be "worker" or "main" (got "${raw}")`);
}

/**
 * SWITCHBOARD_MEDIA_PRIORITY: realtime (default: SCHED_RR, as Asterisk's `-p` or an audio
 * server's realtime thread), high (nice -20) or normal. The media thread's ticks are what the
 * caller hears; at 200 calls on 2 cores they otherwise wait up to 20 ms behind VAD, plugins
 * and Asterisk. Without CAP_SYS_NICE it falls back as far as needed (a warning says so).
 * SWITCHBOARD_VAD_PRIORITY: the same for the VAD worker thread (default high: barge-in and
 * end of turn wait on its answers; at normal priority it fell up to 256 ms behind at 200
 * calls and dropped windows).
 */
function priorityFromEnv(name: string, fallback: ThreadPriority): ThreadPriority {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (isThreadPriority(raw)) return raw;
  throw new Error(`${name} must be realtime, high or normal (got "${raw}")`);
}

export async function startSwitchboard(opts: SwitchboardOptions): Promise<RunningSwitchboard> {
  const log = opts.logger ?? createLogger();
  const registry = opts.registry ?? new MetricsRegistry();
  const metrics = createEngineMetrics(registry);
  const agents = new Map<string, AgentFactory>([[echoAgentFactory.name, echoAgentFactory]]);
  for (const a of opts.agents ?? []) agents.set(a.name, a);

  // Silero on a worker thread unless SWITCHBOARD_VAD_THREAD=main (in-thread VadBatcher).
  const vad = await openVadSource({ logger: log.child({ component: 'vad' }), priority: priorityFromEnv('SWITCHBOARD_VAD_PRIORITY', 'high') });
  const media = createRtpMediaFactory({
    vadSource: vad.source,
    metrics,
    mediaThread: mediaThreadFromEnv(),
    mediaThreadPriority: priorityFromEnv('SWITCHBOARD_MEDIA_PRIORITY', 'realtime'),
    log: log.child({ component: 'media' }),
    ...(opts.turn ? { defaultTurn: opts.turn } : {}),
    ...(vadWindowMsFromEnv() ? { vadWindowMs: vadWindowMsFromEnv() } : {}),
    ...(vadSilenceFloorFromEnv() !== undefined ? { vadSilenceFloorDbfs: vadSilenceFloorFromEnv() } : {}),
  });
  try {
    await media.start();
  } catch (err) {
    await vad.close();
    throw err;
  }
  const asQuantiles = (h: LatencyHistogram) => () => ({ count: h.count, sum: h.mean * h.count, quantile: (q: number) => h.percentile(q * 100) });
  registry.quantileView('switchboard_rtp_send_deviation_ms', 'Outbound RTP: |send time - scheduled time| per packet (ended calls)', asQuantiles(media.pacing.sendDeviation));
  registry.quantileView('switchboard_rtp_interval_jitter_ms', 'Outbound RTP: |packet interval - 20 ms| within talkspurts (ended calls)', asQuantiles(media.pacing.intervalJitter));
  registry.quantileView('switchboard_media_clock_lateness_ms', 'Shared 20 ms media clock: tick lateness', asQuantiles(media.clockLateness));
  let ari: Awaited<ReturnType<typeof connectAri>>;
  try {
    ari = await connectAri({
      url: opts.ari.url,
      username: opts.ari.username,
      password: opts.ari.password,
      app: opts.ari.app,
      logger: log,
      ...(opts.ariTimeoutMs !== undefined ? { initialTimeoutMs: opts.ariTimeoutMs } : {}),
    });
  } catch (err) {
    // No ARI, no calls: let go of the worker threads started above.
    await media.close();
    await vad.close();
    throw err;
  }
  const sessions = openSessionStore(SessionsConfigSchema.parse(opts.sessions ?? {}), { log, registry });
  const controller = new CallController({
    ari,
    media,
    agents,
    defaultAgent: opts.defaultAgent ?? 'echo',
    log,
    metrics,
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.maxCalls ? { maxCalls: opts.maxCalls } : {}),
    overflow: opts.overflow ?? { context: 'switchboard-handoff', extension: 'queue' },
    ...(opts.onCallEnded ? { onCallEnded: opts.onCallEnded } : {}),
    sessions: { store: sessions.store, metrics: sessions.metrics, ready: () => sessions.store.ready(), ttlMs: sessions.ttlMs },
  });

  let server: Server | undefined;
  let httpUrl: string | undefined;
  if (opts.httpPort !== 0) {
    server = createServer((req, res) => {
      // /metrics and /health hold no personal data and stay unauthenticated; /api/ needs a token.
      if (opts.api && (req.url === '/api' || req.url?.startsWith('/api/') || req.url?.startsWith('/api?'))) {
        opts.api(req, res);
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(registry.render());
      } else if (req.url === '/health') {
        const ok = ari.state === 'connected';
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ari: ari.state, activeCalls: controller.activeCalls, sessions: sessions.store.mode }));
      } else {
        res.writeHead(404).end();
      }
    });
    const s = server;
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(opts.httpPort ?? 0, opts.httpHost ?? '127.0.0.1', () => resolve());
      });
    } catch (err) {
      // Nothing has taken a call yet (the controller starts below): let go of everything.
      await sessions.store.close();
      await ari.close();
      await media.close();
      await vad.close();
      throw err;
    }
    const addr = s.address() as AddressInfo;
    const host = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    httpUrl = `http://${host}:${addr.port}`;
  }
  // Calls are taken (and orphans adopted) only once everything above is up.
  controller.start();
  log.info({ app: opts.ari.app, ari: opts.ari.url, http: httpUrl, vad: vad.version, vadThread: vad.thread, mediaThread: media.mediaThread }, 'Switchboard ready');

  return {
    ari,
    controller,
    metrics,
    registry,
    httpUrl,
    openEndpoints: () => media.openEndpoints,
    clockListeners: () => media.clockListeners,
    sessions: sessions.store,
    async stop() {
      await controller.stop();
      await sessions.store.close();
      await ari.close();
      await media.close();
      await vad.close();
      if (server) await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
