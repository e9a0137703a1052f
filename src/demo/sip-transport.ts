/**
 * SIP over UDP for one user agent: a socket, the client transactions of RFC 3261 §17.1 (with
 * RFC 6026's "Accepted" state) and the server side of §17.2 that a UAC needs.
 *
 * Client:
 *  - INVITE: retransmitted on Timer A (T1, doubling) until any response; Timer B (64·T1) gives
 *    up when nothing at all came back. A 3xx-6xx is ACKed by the transaction (same branch) and
 *    retransmissions of it are re-ACKed for Timer D; a 2xx goes to the TU, and so do its
 *    retransmissions for Timer M (64·T1), so the TU can re-send its ACK (a separate transaction).
 *  - non-INVITE (BYE, CANCEL, ...): retransmitted on Timer E (T1 doubling, capped at T2; T2 once a
 *    provisional arrived) until a final response; Timer F (64·T1) gives up.
 * Server:
 *  - responses to requests are cached for 64·T1; a retransmitted request is answered from the
 *    cache without reaching the TU;
 *  - a final response to an INVITE is retransmitted (T1 doubling, capped at T2) until the ACK
 *    arrives, for at most 64·T1 (RFC 3261 §13.3.1.4 for 2xx, §17.2.1 otherwise).
 * Datagrams that are not SIP are counted and dropped; nothing on the receive path throws.
 * `close()` clears every timer and closes the socket: nothing keeps the process alive.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import {
  callIdOf,
  createRequest,
  cseqOf,
  isKeepAlive,
  parseSipMessage,
  serializeSipMessage,
  tagOf,
  topViaOf,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from './sip-message.js';

export interface SipTimers {
  /** RTT estimate (default 500 ms). */
  t1: number;
  /** Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s). */
  t2: number;
  /** Longest a message stays in the network (default 5 s). */
  t4: number;
}

export const DEFAULT_SIP_TIMERS: Readonly<SipTimers> = { t1: 500, t2: 4000, t4: 5000 };

export interface Destination {
  address: string;
  port: number;
}

export interface SipTraceEvent {
  direction: 'in' | 'out';
  /** Where it came from / went to. */
  remote: Destination;
  /** performance.now() */
  at: number;
  /** The datagram as text. */
  text: string;
  /** Set for inbound datagrams that did not parse. */
  error?: string;
}

export interface SipTransportStats {
  datagramsIn: number;
  datagramsOut: number;
  /** Inbound datagrams that were not SIP (keep-alives not counted). */
  garbage: number;
  keepAlives: number;
  /** Requests and INVITE responses sent again by a timer. */
  retransmissionsSent: number;
  /** Retransmitted requests answered from the response cache. */
  retransmissionsAbsorbed: number;
  /** Responses that matched no transaction. */
  strayResponses: number;
  sendErrors: number;
}

export interface SipTransportOptions {
  /** Local address to bind (an IP literal). */
  host: string;
  /** Local port (default 0: any). */
  port?: number;
  timers?: Partial<SipTimers>;
  /** New requests (retransmissions answered from the cache never get here). */
  onRequest: (req: SipRequest, source: Destination) => void;
  /** Responses no transaction wants (e.g. a 2xx retransmitted after Timer M). */
  onStrayResponse?: (res: SipResponse, source: Destination) => void;
  /** Socket errors, send failures and exceptions thrown by the handlers. */
  onError?: (err: unknown) => void;
  trace?: (e: SipTraceEvent) => void;
}

export interface ClientTransactionHandlers {
  /** Every response the TU should see (provisional, final, retransmitted 2xx to INVITE). */
  response: (res: SipResponse) => void;
  /** Timer B / F fired: no final response. */
  timeout: () => void;
}

export type ClientTransactionState = 'calling' | 'trying' | 'proceeding' | 'accepted' | 'completed' | 'terminated';

export class ClientTransaction {
  state: ClientTransactionState;
  /** Status of the first final response. */
  finalStatus: number | undefined;
  readonly isInvite: boolean;
  private retransmitTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;
  private interval: number;
  private nonInviteAck: SipRequest | undefined;

  constructor(
    private readonly transport: SipTransport,
    readonly request: SipRequest,
    readonly destination: Destination,
    readonly key: string,
    private readonly handlers: ClientTransactionHandlers,
    private readonly timers: SipTimers,
  ) {
    this.isInvite = request.method === 'INVITE';
    this.state = this.isInvite ? 'calling' : 'trying';
    this.interval = timers.t1;
  }

  /** Send the request and arm the timers. */
  start(): void {
    this.transport.send(this.request, this.destination);
    this.armRetransmit();
    this.lifetimeTimer = setTimeout(() => this.onTimeout(), 64 * this.timers.t1);
  }

  /** Stop everything; no more callbacks. Idempotent. */
  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    clearTimeout(this.retransmitTimer);
    clearTimeout(this.lifetimeTimer);
    this.retransmitTimer = undefined;
    this.lifetimeTimer = undefined;
    this.transport.forget(this);
  }

  private armRetransmit(): void {
    clearTimeout(this.retransmitTimer);
    this.retransmitTimer = setTimeout(() => {
      if (this.state === 'terminated' || this.state === 'completed' || this.state === 'accepted') return;
      if (this.isInvite && this.state !== 'calling') return;
      this.transport.send(this.request, this.destination);
      this.transport.stats.retransmissionsSent++;
      if (this.isInvite) this.interval *= 2;
      else this.interval = this.state === 'proceeding' ? this.timers.t2 : Math.min(this.interval * 2, this.timers.t2);
      this.armRetransmit();
    }, this.interval);
  }

  private onTimeout(): void {
    // Timer B/F only matter before a final response; in Accepted/Completed this is Timer M/D/K.
    const hadFinal = this.finalStatus !== undefined;
    const proceedingInvite = this.isInvite && this.state === 'proceeding';
    if (proceedingInvite) {
      // An INVITE that got a provisional response waits for its final one as long as the TU
      // wants (it CANCELs on its own timeout); only the lifetime timer is spent.
      this.lifetimeTimer = undefined;
      return;
    }
    this.terminate();
    if (!hadFinal) this.safe(() => this.handlers.timeout());
  }

  /** A response whose branch and CSeq method matched this transaction. */
  receive(res: SipResponse): void {
    if (this.state === 'terminated') return;
    const status = res.status;
    if (status < 200) {
      if (this.state === 'calling' || this.state === 'trying') {
        this.state = 'proceeding';
        if (this.isInvite) clearTimeout(this.retransmitTimer);
        else {
          this.interval = this.timers.t2;
          this.armRetransmit();
        }
      }
      if (this.state === 'proceeding') this.safe(() => this.handlers.response(res));
      return;
    }
    if (this.isInvite) {
      if (status < 300) {
        const first = this.state !== 'accepted';
        if (first) {
          this.finalStatus ??= status;
          this.state = 'accepted';
          clearTimeout(this.retransmitTimer);
          clearTimeout(this.lifetimeTimer);
          this.lifetimeTimer = setTimeout(() => this.terminate(), 64 * this.timers.t1); // Timer M
        }
        this.safe(() => this.handlers.response(res));
        return;
      }
      if (this.state === 'completed') {
        // A retransmitted final response: our ACK was lost.
        if (this.nonInviteAck) this.transport.send(this.nonInviteAck, this.destination);
        return;
      }
      if (this.state === 'accepted') return;
      this.finalStatus = status;
      this.state = 'completed';
      clearTimeout(this.retransmitTimer);
      clearTimeout(this.lifetimeTimer);
      this.nonInviteAck = ackForNon2xx(this.request, res);
      this.transport.send(this.nonInviteAck, this.destination);
      this.lifetimeTimer = setTimeout(() => this.terminate(), Math.max(32_000, 64 * this.timers.t1)); // Timer D
      this.safe(() => this.handlers.response(res));
      return;
    }
    if (this.state === 'completed') return; // retransmitted final
    this.finalStatus = status;
    this.state = 'completed';
    clearTimeout(this.retransmitTimer);
    clearTimeout(this.lifetimeTimer);
    this.lifetimeTimer = setTimeout(() => this.terminate(), this.timers.t4); // Timer K
    this.safe(() => this.handlers.response(res));
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.transport.reportError(err);
    }
  }
}

/** The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3). */
export function ackForNon2xx(invite: SipRequest, res: SipResponse): SipRequest {
  const headers: Array<[string, string]> = [];
  const via = invite.headers.getList('via')[0];
  if (via !== undefined) headers.push(['Via', via]);
  for (const r of invite.headers.getAll('route')) headers.push(['Route', r]);
  headers.push(['Max-Forwards', '70']);
  headers.push(['From', invite.headers.get('from') ?? '']);
  headers.push(['To', res.headers.get('to') ?? invite.headers.get('to') ?? '']);
  headers.push(['Call-ID', callIdOf(invite)]);
  headers.push(['CSeq', `${cseqOf(invite).seq} ACK`]);
  return createRequest('ACK', invite.uri, headers);
}

interface ServerEntry {
  response: SipResponse | undefined;
  destination: Destination;
  expiresAt: number;
}

interface PendingInviteResponse {
  response: SipResponse;
  destination: Destination;
  timer: NodeJS.Timeout | undefined;
  interval: number;
  startedAt: number;
  onAckTimeout: (() => void) | undefined;
}

function branchKey(msg: SipMessage, method: string): string {
  const via = topViaOf(msg);
  const branch = via?.params.get('branch');
  if (branch?.startsWith('z9hG4bK')) return `${branch}|${via?.host}:${via?.port ?? 5060}|${method}`;
  // RFC 2543 peers: no usable branch, match on the dialog identifiers instead.
  return `${callIdOf(msg)}|${tagOf(msg.headers.get('from'))}|${cseqOf(msg).seq}|${method}`;
}

export class SipTransport {
  readonly stats: SipTransportStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    garbage: 0,
    keepAlives: 0,
    retransmissionsSent: 0,
    retransmissionsAbsorbed: 0,
    strayResponses: 0,
    sendErrors: 0,
  };
  readonly timers: SipTimers;
  readonly local: Destination;

  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerEntry>();
  /** Final responses to INVITEs awaiting their ACK, by Call-ID and CSeq number. */
  private readonly inviteResponses = new Map<string, PendingInviteResponse>();
  private inFlight = 0;
  private drainWaiters: Array<() => void> = [];
  private closed = false;
  private closing: Promise<void> | undefined;

  static async open(opts: SipTransportOptions): Promise<SipTransport> {
    if (isIP(opts.host) === 0) throw new TypeError(`SIP bind address must be an IP literal, got "${opts.host}"`);
    const socket = createSocket(isIP(opts.host) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.port ?? 0, opts.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new SipTransport(socket, opts);
  }

  private constructor(
    private readonly socket: Socket,
    private readonly opts: SipTransportOptions,
  ) {
    this.timers = { ...DEFAULT_SIP_TIMERS, ...opts.timers };
    const a = socket.address();
    this.local = { address: a.address, port: a.port };
    socket.on('message', this.onMessage);
    socket.on('error', (err) => {
      this.stats.sendErrors++;
      this.reportError(err);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Send a message once (no transaction). */
  send(msg: SipMessage, dest: Destination): void {
    if (this.closed) return;
    const buf = serializeSipMessage(msg);
    this.stats.datagramsOut++;
    this.trace('out', dest, buf);
    this.inFlight++;
    try {
      this.socket.send(buf, dest.port, dest.address, (err) => {
        if (err) {
          this.stats.sendErrors++;
          this.reportError(err);
        }
        this.settleSend();
      });
    } catch (err) {
      this.stats.sendErrors++;
      this.settleSend();
      this.reportError(err);
    }
  }

  /** Send a request in a new client transaction. ACK is not a transaction: use `send`. */
  request(req: SipRequest, dest: Destination, handlers: ClientTransactionHandlers): ClientTransaction {
    if (req.method === 'ACK') throw new Error('ACK is sent with send(), not as a transaction');
    const key = branchKey(req, req.method);
    const tx = new ClientTransaction(this, req, dest, key, handlers, this.timers);
    if (this.closed) {
      tx.state = 'terminated';
      return tx;
    }
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /**
   * Answer a request. Final responses are cached for retransmitted requests; a final response
   * to an INVITE is retransmitted until its ACK (or `onAckTimeout` after 64·T1).
   */
  respond(req: SipRequest, res: SipResponse, dest: Destination, opts: { onAckTimeout?: () => void } = {}): void {
    if (this.closed) return;
    const key = branchKey(req, req.method);
    const entry = this.servers.get(key) ?? { response: undefined, destination: dest, expiresAt: 0 };
    if (res.status >= 200) {
      entry.response = res;
      entry.expiresAt = performance.now() + 64 * this.timers.t1;
    }
    this.servers.set(key, entry);
    this.send(res, dest);
    if (req.method === 'INVITE' && res.status >= 200) {
      const ackKey = `${callIdOf(req)}|${cseqOf(req).seq}`;
      this.stopInviteResponse(ackKey);
      const pending: PendingInviteResponse = {
        response: res,
        destination: dest,
        timer: undefined,
        interval: this.timers.t1,
        startedAt: performance.now(),
        onAckTimeout: opts.onAckTimeout,
      };
      this.inviteResponses.set(ackKey, pending);
      this.armInviteResponse(ackKey, pending);
    }
  }

  /** Close the socket and drop every transaction and timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      for (const tx of [...this.clients.values()]) tx.terminate();
      for (const key of [...this.inviteResponses.keys()]) this.stopInviteResponse(key);
      this.servers.clear();
      this.socket.off('message', this.onMessage);
      // Let datagrams already handed to the socket (a 200 to a BYE, an ACK) leave first.
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 200);
          this.drainWaiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      await new Promise<void>((resolve) => {
        try {
          this.socket.close(() => resolve());
        } catch {
          resolve();
        }
      });
    })();
    return this.closing;
  }

  /** @internal Called by a transaction when it terminates. */
  forget(tx: ClientTransaction): void {
    if (this.clients.get(tx.key) === tx) this.clients.delete(tx.key);
  }

  /** @internal */
  reportError(err: unknown): void {
    const h = this.opts.onError;
    if (!h) return;
    try {
      h(err);
    } catch {
      // nowhere left to report
    }
  }

  private settleSend(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  private armInviteResponse(key: string, p: PendingInviteResponse): void {
    p.timer = setTimeout(() => {
      if (this.inviteResponses.get(key) !== p) return;
      if (performance.now() - p.startedAt >= 64 * this.timers.t1) {
        this.inviteResponses.delete(key);
        if (p.onAckTimeout) {
          try {
            p.onAckTimeout();
          } catch (err) {
            this.reportError(err);
          }
        }
        return;
      }
      this.send(p.response, p.destination);
      this.stats.retransmissionsSent++;
      p.interval = Math.min(p.interval * 2, this.timers.t2);
      this.armInviteResponse(key, p);
    }, p.interval);
  }

  private stopInviteResponse(key: string): void {
    const p = this.inviteResponses.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.inviteResponses.delete(key);
  }

  private trace(direction: 'in' | 'out', remote: Destination, buf: Buffer, error?: string): void {
    const t = this.opts.trace;
    if (!t) return;
    try {
      t({ direction, remote, at: performance.now(), text: buf.toString('utf8'), ...(error === undefined ? {} : { error }) });
    } catch (err) {
      this.reportError(err);
    }
  }

  private readonly onMessage = (buf: Buffer, rinfo: RemoteInfo): void => {
    if (this.closed) return;
    const source: Destination = { address: rinfo.address, port: rinfo.port };
    this.stats.datagramsIn++;
    if (isKeepAlive(buf)) {
      this.stats.keepAlives++;
      return;
    }
    let msg: SipMessage;
    try {
      msg = parseSipMessage(buf);
    } catch (err) {
      this.stats.garbage++;
      this.trace('in', source, buf, err instanceof Error ? err.message : String(err));
      return;
    }
    this.trace('in', source, buf);
    try {
      if (msg.kind === 'response') this.onResponse(msg, source);
      else this.onRequest(msg, source);
    } catch (err) {
      this.reportError(err);
    }
  };

  private onResponse(res: SipResponse, source: Destination): void {
    const tx = this.clients.get(branchKey(res, cseqOf(res).method));
    if (tx) {
      tx.receive(res);
      return;
    }
    this.stats.strayResponses++;
    this.opts.onStrayResponse?.(res, source);
  }

  private onRequest(req: SipRequest, source: Destination): void {
    const now = performance.now();
    for (const [k, e] of this.servers) if (e.expiresAt <= now) this.servers.delete(k);

    if (req.method === 'ACK') {
      // ACK of a non-2xx final: same branch as the INVITE. ACK of a 2xx: a new transaction,
      // matched by Call-ID and CSeq number. Either way the INVITE response stops repeating.
      const ackKey = `${callIdOf(req)}|${cseqOf(req).seq}`;
      this.stopInviteResponse(ackKey);
      const nonSuccess = this.servers.get(branchKey(req, 'INVITE'));
      if (nonSuccess?.response && nonSuccess.response.status >= 300) return;
      this.opts.onRequest(req, source);
      return;
    }
    const key = branchKey(req, req.method);
    const entry = this.servers.get(key);
    if (entry) {
      // A retransmission: repeat the last response (nothing yet: the TU is still on it).
      this.stats.retransmissionsAbsorbed++;
      if (entry.response) this.send(entry.response, source);
      return;
    }
    this.servers.set(key, { response: undefined, destination: source, expiresAt: now + 64 * this.timers.t1 });
    this.opts.onRequest(req, source);
  }
}
