/**
 * AriConnection on top of ari-client: connects to the Stasis app, translates events into
 * our typed AriEvent union, and keeps the connection alive. ari-client retries a dropped
 * WebSocket a few times by itself; when it gives up (or Asterisk was down when we started)
 * this supervisor rebuilds the whole client with exponential backoff until close().
 */
import ariClient from 'ari-client';
import type { Logger } from '../log.js';
import { translateAriEvent } from './events.js';
import {
  AriRequestError,
  type AriBridge,
  type AriChannel,
  type AriConnection,
  type AriEvent,
  type ConnectionState,
  type ExternalMediaChannel,
  type ExternalMediaRequest,
  type HangupReason,
} from './types.js';
import { toAriBridge, toAriChannel } from './events.js';

export interface AriConnectOptions {
  url: string;
  username: string;
  password: string;
  app: string;
  logger: Logger;
  /** First and maximum delay between reconnect attempts. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Reject connectAri() if the first connection has not succeeded by then (default: wait forever). */
  initialTimeoutMs?: number;
}

type Client = Awaited<ReturnType<typeof ariClient.connect>>;

/** Connect and resolve once the app is registered with Asterisk. */
export async function connectAri(opts: AriConnectOptions): Promise<AriConnection> {
  const conn = new SupervisedAriConnection(opts);
  await conn.waitConnected(opts.initialTimeoutMs);
  return conn;
}

class SupervisedAriConnection implements AriConnection {
  readonly app: string;
  private client: Client | undefined;
  private _state: ConnectionState = 'connecting';
  private readonly eventHandlers = new Set<(e: AriEvent) => void>();
  private readonly stateHandlers = new Set<(s: ConnectionState, detail?: string) => void>();
  private readonly closing = new AbortController();
  private attempt = 0;
  private readonly log: Logger;

  constructor(private readonly opts: AriConnectOptions) {
    this.app = opts.app;
    this.log = opts.logger.child({ component: 'ari' });
    void this.superviseLoop();
  }

  get state(): ConnectionState {
    return this._state;
  }

  onEvent(handler: (e: AriEvent) => void): () => void {
    this.eventHandlers.add(handler);
    return () => this.eventHandlers.delete(handler);
  }

  onStateChange(handler: (s: ConnectionState, detail?: string) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  waitConnected(timeoutMs?: number): Promise<void> {
    if (this._state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const off = this.onStateChange((s, detail) => {
        if (s === 'connected') {
          off();
          clearTimeout(timer);
          resolve();
        } else if (s === 'closed') {
          off();
          clearTimeout(timer);
          reject(new Error(`ARI connection closed before connecting${detail ? `: ${detail}` : ''}`));
        }
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`ARI at ${this.opts.url} did not answer within ${timeoutMs} ms`));
          void this.close();
        }, timeoutMs);
      }
    });
  }

  private setState(s: ConnectionState, detail?: string): void {
    if (this._state === s) return;
    this._state = s;
    this.log.info({ state: s, detail }, 'ARI connection state');
    for (const h of this.stateHandlers) h(s, detail);
  }

  /** Build a client, run it until it gives up, back off, repeat — until close(). */
  private async superviseLoop(): Promise<void> {
    const initial = this.opts.backoffInitialMs ?? 250;
    const max = this.opts.backoffMaxMs ?? 5000;
    while (!this.closing.signal.aborted) {
      let detail = '';
      try {
        const lost = await this.runOnce();
        detail = lost;
        this.attempt = 0;
      } catch (err) {
        detail = err instanceof Error ? err.message : String(err);
      }
      if (this.closing.signal.aborted) break;
      this.setState('reconnecting', detail);
      const delay = Math.min(max, initial * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
      this.attempt++;
      this.log.warn({ delayMs: Math.round(delay), attempt: this.attempt, detail }, 'ARI unavailable, retrying');
      await sleep(delay, this.closing.signal);
    }
    this.setState('closed');
  }

  /** Connect one ari-client instance; resolves with a reason when it is lost for good. */
  private async runOnce(): Promise<string> {
    const client = await withQuietSwagger(() => ariClient.connect(this.opts.url, this.opts.username, this.opts.password));
    if (this.closing.signal.aborted) {
      safeStop(client);
      return 'closed';
    }
    this.client = client;
    const lost = new Promise<string>((resolve) => {
      client.on('WebSocketMaxRetries', (err: unknown) => resolve(`websocket gave up: ${describe(err)}`));
      client.on('WebSocketReconnecting', (err: unknown) => this.setState('reconnecting', describe(err)));
      client.on('WebSocketConnected', () => this.setState('connected'));
      this.closing.signal.addEventListener('abort', () => resolve('closed'), { once: true });
    });
    // ari-client emits every event under '*'; its typings only list the named ones.
    (client as unknown as NodeJS.EventEmitter).on('*', (raw: unknown) => this.dispatch(raw));
    await client.start(this.app);
    this.setState('connected');
    const reason = await lost;
    this.client = undefined;
    safeStop(client);
    return reason;
  }

  private dispatch(raw: unknown): void {
    const event = translateAriEvent(raw);
    for (const h of this.eventHandlers) {
      try {
        h(event);
      } catch (err) {
        this.log.error({ err, eventType: event.type }, 'ARI event handler threw');
      }
    }
  }

  private requireClient(operation: string): Client {
    if (!this.client || this._state !== 'connected') {
      throw new AriRequestError(operation, `not connected (state ${this._state})`);
    }
    return this.client;
  }

  private async call<T>(operation: string, fn: (c: Client) => Promise<T>): Promise<T> {
    const client = this.requireClient(operation);
    try {
      return await fn(client);
    } catch (err) {
      throw new AriRequestError(operation, asteriskMessage(err), { cause: err });
    }
  }

  async answer(channelId: string): Promise<void> {
    await this.call('channels.answer', (c) => c.channels.answer({ channelId }));
  }

  async hangup(channelId: string, reason: HangupReason = 'normal'): Promise<void> {
    await this.call('channels.hangup', (c) => c.channels.hangup({ channelId, reason }));
  }

  async getChannelVar(channelId: string, variable: string): Promise<string | undefined> {
    try {
      const v = await this.call('channels.getChannelVar', (c) => c.channels.getChannelVar({ channelId, variable }));
      return v.value;
    } catch (err) {
      // Asterisk answers 404 both for a missing channel and an unset variable; the caller
      // treats both as "no value", and a vanished channel surfaces in its next operation.
      if (err instanceof AriRequestError) return undefined;
      throw err;
    }
  }

  async setChannelVar(channelId: string, variable: string, value: string): Promise<void> {
    await this.call('channels.setChannelVar', (c) => c.channels.setChannelVar({ channelId, variable, value }));
  }

  async createBridge(type: 'mixing' = 'mixing', name?: string): Promise<AriBridge> {
    const b = await this.call('bridges.create', (c) => c.bridges.create({ type, ...(name ? { name } : {}) }));
    return toAriBridge(b);
  }

  async addToBridge(bridgeId: string, channelIds: string[]): Promise<void> {
    await this.call('bridges.addChannel', (c) => c.bridges.addChannel({ bridgeId, channel: channelIds }));
  }

  async destroyBridge(bridgeId: string): Promise<void> {
    await this.call('bridges.destroy', (c) => c.bridges.destroy({ bridgeId }));
  }

  async externalMedia(req: ExternalMediaRequest): Promise<ExternalMediaChannel> {
    const ch = await this.call('channels.externalMedia', (c) =>
      c.channels.externalMedia({
        app: req.app,
        external_host: req.externalHost,
        format: req.format,
        encapsulation: 'rtp',
        transport: 'udp',
        direction: 'both',
        ...(req.channelId ? { channelId: req.channelId } : {}),
        ...(req.variables ? { variables: { variables: req.variables } } : {}),
      }),
    );
    const channel = toAriChannel(ch);
    const host = channel.channelvars?.UNICASTRTP_LOCAL_ADDRESS;
    const port = Number(channel.channelvars?.UNICASTRTP_LOCAL_PORT);
    return { channel, asteriskRtp: host && Number.isInteger(port) && port > 0 ? { host, port } : undefined };
  }

  async continueInDialplan(
    channelId: string,
    target: { context: string; extension: string; priority?: number },
  ): Promise<void> {
    await this.call('channels.continueInDialplan', (c) =>
      c.channels.continueInDialplan({ channelId, context: target.context, extension: target.extension, priority: target.priority ?? 1 }),
    );
  }

  async listChannels(): Promise<AriChannel[]> {
    const list = await this.call('channels.list', (c) => c.channels.list());
    return list.map(toAriChannel);
  }

  async listBridges(): Promise<AriBridge[]> {
    const list = await this.call('bridges.list', (c) => c.bridges.list());
    return list.map(toAriBridge);
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    const c = this.client;
    this.client = undefined;
    if (c) safeStop(c);
    this.setState('closed');
  }
}

function safeStop(client: Client): void {
  try {
    client.stop();
  } catch {
    // The WebSocket may already be gone; stop() only closes it.
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err === undefined) return 'unknown';
  return typeof err === 'string' ? err : JSON.stringify(err);
}

/** ari-client puts Asterisk's JSON body ({"message": "..."}) into Error.message. */
function asteriskMessage(err: unknown): string {
  const text = describe(err);
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: a transport error
  }
  return text;
}

/** swagger-client prints a deprecation banner on every connect; keep stdout clean. */
async function withQuietSwagger<T>(fn: () => Promise<T>): Promise<T> {
  const { log, warn } = console;
  const filter =
    (original: (...a: unknown[]) => void) =>
    (...args: unknown[]): void => {
      const first = args[0];
      const text = Array.isArray(first) ? String(first[0]) : String(first);
      if (!text.includes('deprecated version of Swagger')) original(...args);
    };
  console.log = filter(log);
  console.warn = filter(warn);
  try {
    return await fn();
  } finally {
    console.log = log;
    console.warn = warn;
  }
}
