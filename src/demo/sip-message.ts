/**
 * SIP messages (RFC 3261 §7, §20, §25): parse datagrams into requests and responses, build and
 * serialise them. Just what a UDP user agent needs, but parsed strictly enough that garbage is
 * refused with a `SipParseError` instead of half-understood:
 *
 *  - start line: `METHOD SP Request-URI SP SIP/2.0` or `SIP/2.0 SP 3DIGIT SP Reason`;
 *  - header names are case-insensitive, compact forms (i, m, f, t, v, l, c, k, ...) are
 *    expanded, folded lines (continuations starting with SP/HT) are unfolded;
 *  - headers may repeat; list-valued ones (Via, Route, Contact, ...) may also hold several
 *    comma-separated values, split outside quotes and angle brackets by `getList`;
 *  - the body is exactly Content-Length bytes (a datagram shorter than that is refused; without
 *    Content-Length the rest of the datagram, as UDP allows);
 *  - a request needs Via, From, To, Call-ID and CSeq with the request's method; a response Via,
 *    From, To, Call-ID and CSeq.
 * Bare LF line ends are accepted as well as CRLF (robustness principle); output always uses CRLF.
 */
import { randomBytes } from 'node:crypto';

export class SipParseError extends Error {
  override readonly name = 'SipParseError';
}

const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Spellings whose canonical form is not plain Title-Case per dash-separated word. */
const CANONICAL_NAMES: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  'rack': 'RAck',
  'rseq': 'RSeq',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
};

/** Lower-case long form of a header name (compact forms expanded). */
export function normalizeHeaderName(name: string): string {
  const lower = name.trim().toLowerCase();
  return COMPACT_FORMS[lower] ?? lower;
}

/** The conventional spelling of a header name, for output. */
export function canonicalHeaderName(name: string): string {
  const n = normalizeHeaderName(name);
  return CANONICAL_NAMES[n] ?? n.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** RFC 3261 token characters (header names, methods, parameter names). */
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/**
 * Split `value` at `separator` where it is not inside a quoted string or `<...>`.
 * Empty pieces (e.g. from a trailing comma) are dropped; pieces are trimmed.
 */
export function splitOutsideQuotes(value: string, separator: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '<') depth++;
    else if (ch === '>' && depth > 0) depth--;
    else if (ch === separator && depth === 0) {
      const piece = value.slice(start, i).trim();
      if (piece) out.push(piece);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

/** Parse `;name=value;flag` parameters (the text after the first ';', or with a leading ';'). */
export function parseParams(text: string): Map<string, string | undefined> {
  const params = new Map<string, string | undefined>();
  for (const piece of splitOutsideQuotes(text, ';')) {
    const eq = piece.indexOf('=');
    const name = (eq < 0 ? piece : piece.slice(0, eq)).trim().toLowerCase();
    if (!name) continue;
    params.set(name, eq < 0 ? undefined : unquote(piece.slice(eq + 1).trim()));
  }
  return params;
}

export function formatParams(params: ReadonlyMap<string, string | undefined>): string {
  let out = '';
  for (const [k, v] of params) out += v === undefined ? `;${k}` : `;${k}=${/^[^\s";,<>]*$/.test(v) ? v : `"${v.replace(/(["\\])/g, '\\$1')}"`}`;
  return out;
}

/** An ordered, case-insensitive multimap of header fields. */
export class SipHeaders {
  private readonly entries: Array<{ name: string; value: string }> = [];

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [n, v] of init) this.append(n, v);
  }

  /** First value of `name`, or undefined. */
  get(name: string): string | undefined {
    const n = normalizeHeaderName(name);
    return this.entries.find((e) => e.name === n)?.value;
  }

  /** Every header line of `name`, as written (not split at commas). */
  getAll(name: string): string[] {
    const n = normalizeHeaderName(name);
    return this.entries.filter((e) => e.name === n).map((e) => e.value);
  }

  /** Every value of a list-valued header (Via, Route, Contact, ...): lines split at top-level commas. */
  getList(name: string): string[] {
    return this.getAll(name).flatMap((v) => splitOutsideQuotes(v, ','));
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  append(name: string, value: string): this {
    const n = normalizeHeaderName(name);
    if (!TOKEN.test(n)) throw new SipParseError(`invalid header name "${name}"`);
    if (/[\r\n]/.test(value)) throw new SipParseError(`header ${name} contains a line break`);
    this.entries.push({ name: n, value: value.trim() });
    return this;
  }

  /** Replace every line of `name` with one value (appended at the end if it was absent). */
  set(name: string, value: string): this {
    const n = normalizeHeaderName(name);
    const i = this.entries.findIndex((e) => e.name === n);
    if (i < 0) return this.append(name, value);
    this.delete(name);
    this.entries.splice(i, 0, { name: n, value: value.trim() });
    return this;
  }

  delete(name: string): this {
    const n = normalizeHeaderName(name);
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]?.name === n) this.entries.splice(i, 1);
    return this;
  }

  /** [long lower-case name, value] pairs in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (const e of this.entries) yield [e.name, e.value];
  }

  clone(): SipHeaders {
    return new SipHeaders(this);
  }
}

interface SipMessageBase {
  headers: SipHeaders;
  body: Buffer;
}

export interface SipRequest extends SipMessageBase {
  kind: 'request';
  method: string;
  uri: string;
}

export interface SipResponse extends SipMessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

export interface CSeq {
  seq: number;
  method: string;
}

export function parseCSeq(value: string | undefined): CSeq | undefined {
  const m = /^(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  const seq = Number(m[1]);
  if (seq >= 2 ** 31) return undefined;
  return { seq, method: m[2] as string };
}

/** CSeq of a message that passed `parseSipMessage` (which guarantees one). */
export function cseqOf(msg: SipMessage): CSeq {
  const c = parseCSeq(msg.headers.get('cseq'));
  if (!c) throw new SipParseError('message has no valid CSeq');
  return c;
}

export function callIdOf(msg: SipMessage): string {
  return msg.headers.get('call-id') ?? '';
}

// --- URIs and addresses ----------------------------------------------------------------------

export interface SipUri {
  scheme: 'sip' | 'sips';
  user: string | undefined;
  password: string | undefined;
  host: string;
  port: number | undefined;
  params: Map<string, string | undefined>;
  /** Raw `?headers` part (without the '?'), if any. */
  headers: string | undefined;
}

/** Parse a sip:/sips: URI. Throws SipParseError on anything else. */
export function parseSipUri(text: string): SipUri {
  const m = /^(sips?):(.*)$/i.exec(text.trim());
  if (!m) throw new SipParseError(`not a SIP URI: "${text}"`);
  const scheme = (m[1] as string).toLowerCase() as 'sip' | 'sips';
  let rest = m[2] as string;
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    password = colon < 0 ? undefined : userinfo.slice(colon + 1);
  }
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const params = semi < 0 ? new Map<string, string | undefined>() : parseParams(rest.slice(semi + 1));
  const { host, port } = parseHostPort(hostport);
  return { scheme, user, password, host, port, params, headers };
}

export function parseHostPort(text: string): { host: string; port: number | undefined } {
  const hp = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?::(\d{1,5}))?$/.exec(text.trim());
  if (!hp) throw new SipParseError(`invalid host[:port] "${text}"`);
  const port = hp[2] === undefined ? undefined : Number(hp[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new SipParseError(`port out of range in "${text}"`);
  const host = (hp[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function formatSipUri(u: SipUri): string {
  const userinfo = u.user === undefined ? '' : `${u.user}${u.password === undefined ? '' : `:${u.password}`}@`;
  const port = u.port === undefined ? '' : `:${u.port}`;
  return `${u.scheme}:${userinfo}${formatHost(u.host)}${port}${formatParams(u.params)}${u.headers === undefined ? '' : `?${u.headers}`}`;
}

export interface NameAddr {
  displayName: string | undefined;
  /** The URI text (between < > when bracketed). */
  uri: string;
  /** Header parameters (tag, expires, ...), after the URI. */
  params: Map<string, string | undefined>;
}

/**
 * Parse a From/To/Contact/Route value: `"Name" <uri>;params`, `Name <uri>;params` or the
 * addr-spec form `uri;params` (where parameters after the URI belong to the header).
 */
export function parseNameAddr(text: string): NameAddr {
  const t = text.trim();
  const lt = findUnquoted(t, '<');
  if (lt >= 0) {
    const gt = t.indexOf('>', lt);
    if (gt < 0) throw new SipParseError(`unterminated <uri> in "${text}"`);
    const display = t.slice(0, lt).trim();
    const rest = t.slice(gt + 1).trim();
    if (rest && !rest.startsWith(';')) throw new SipParseError(`unexpected text after <uri> in "${text}"`);
    return {
      displayName: display ? unquote(display) : undefined,
      uri: t.slice(lt + 1, gt).trim(),
      params: parseParams(rest),
    };
  }
  const semi = t.indexOf(';');
  const uri = semi < 0 ? t : t.slice(0, semi);
  if (!uri || /\s/.test(uri)) throw new SipParseError(`invalid address "${text}"`);
  return { displayName: undefined, uri, params: semi < 0 ? new Map<string, string | undefined>() : parseParams(t.slice(semi + 1)) };
}

function findUnquoted(s: string, ch: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ch) return i;
  }
  return -1;
}

export function formatNameAddr(a: NameAddr): string {
  const display = a.displayName === undefined ? '' : `"${a.displayName.replace(/(["\\])/g, '\\$1')}" `;
  return `${display}<${a.uri}>${formatParams(a.params)}`;
}

/** The `tag` parameter of a From/To value. */
export function tagOf(headerValue: string | undefined): string | undefined {
  if (headerValue === undefined) return undefined;
  try {
    return parseNameAddr(headerValue).params.get('tag');
  } catch {
    return undefined;
  }
}

export interface Via {
  protocol: string;
  transport: string;
  host: string;
  port: number | undefined;
  params: Map<string, string | undefined>;
}

export function parseVia(text: string): Via {
  const m = /^\s*([A-Za-z0-9]+\s*\/\s*[0-9.]+)\s*\/\s*([A-Za-z0-9]+)\s+([^;\s]+)\s*(;.*)?$/.exec(text);
  if (!m) throw new SipParseError(`invalid Via "${text}"`);
  const { host, port } = parseHostPort(m[3] as string);
  return {
    protocol: (m[1] as string).replace(/\s+/g, '').toUpperCase(),
    transport: (m[2] as string).toUpperCase(),
    host,
    port,
    params: parseParams(m[4] ?? ''),
  };
}

export function formatVia(v: Via): string {
  return `${v.protocol}/${v.transport} ${formatHost(v.host)}${v.port === undefined ? '' : `:${v.port}`}${formatParams(v.params)}`;
}

/** The top Via of a message (parsed), or undefined when it is missing or malformed. */
export function topViaOf(msg: SipMessage): Via | undefined {
  const first = msg.headers.getList('via')[0];
  if (first === undefined) return undefined;
  try {
    return parseVia(first);
  } catch {
    return undefined;
  }
}

// --- authentication headers --------------------------------------------------------------------

export interface AuthChallenge {
  scheme: string;
  params: Map<string, string>;
}

/** Parse a WWW-Authenticate / Proxy-Authenticate value: `Digest realm="x", nonce="y", ...`. */
export function parseAuthChallenge(text: string): AuthChallenge {
  const m = /^\s*([A-Za-z0-9\-._~+]+)\s*(.*)$/s.exec(text);
  if (!m) throw new SipParseError(`invalid authentication challenge "${text}"`);
  const params = new Map<string, string>();
  for (const piece of splitOutsideQuotes(m[2] as string, ',')) {
    const eq = piece.indexOf('=');
    if (eq <= 0) throw new SipParseError(`invalid challenge parameter "${piece}"`);
    params.set(piece.slice(0, eq).trim().toLowerCase(), unquote(piece.slice(eq + 1).trim()));
  }
  return { scheme: m[1] as string, params };
}

// --- parsing -----------------------------------------------------------------------------------

const REQUEST_LINE = /^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP\/2\.0$/;
const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d) ?(.*)$/;

/** Bytes before the blank line that ends the headers, and where the body starts. */
function splitHead(buf: Buffer): { headEnd: number; bodyStart: number } {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { headEnd: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { headEnd: lf, bodyStart: lf + 2 };
  // No blank line: the whole datagram is headers (a message without a body).
  return { headEnd: buf.length, bodyStart: buf.length };
}

/** A datagram of nothing but CR/LF: RFC 5626 keep-alive, not a message. */
export function isKeepAlive(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}

/** Parse one SIP message from a datagram. Throws SipParseError when it is not one. */
export function parseSipMessage(buf: Buffer): SipMessage {
  if (buf.length === 0 || isKeepAlive(buf)) throw new SipParseError('empty datagram');
  // Leading CRLFs before the start line are ignored (RFC 3261 §7.5).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  const data = buf.subarray(start);
  const { headEnd, bodyStart } = splitHead(data);
  const head = data.toString('utf8', 0, headEnd);
  if (head.includes('\0')) throw new SipParseError('NUL byte in headers');
  const lines = head.split(/\r?\n/);
  const startLine = (lines.shift() ?? '').trim();

  const headers = new SipHeaders();
  let current: { name: string; value: string } | undefined;
  const flush = (): void => {
    if (current) headers.append(current.name, current.value);
    current = undefined;
  };
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (!current) throw new SipParseError('continuation line before any header');
      current.value += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipParseError(`malformed header line "${line.slice(0, 80)}"`);
    const name = line.slice(0, colon).trim();
    if (!TOKEN.test(name)) throw new SipParseError(`invalid header name "${name.slice(0, 80)}"`);
    current = { name, value: line.slice(colon + 1).trim() };
  }
  flush();

  const available = data.length - bodyStart;
  let bodyLength = available;
  const cl = headers.get('content-length');
  if (cl !== undefined) {
    if (!/^\d{1,9}$/.test(cl)) throw new SipParseError(`invalid Content-Length "${cl}"`);
    bodyLength = Number(cl);
    if (bodyLength > available) throw new SipParseError(`truncated body: Content-Length ${bodyLength}, ${available} bytes present`);
  }
  const body = Buffer.from(data.subarray(bodyStart, bodyStart + bodyLength));

  let msg: SipMessage;
  const req = REQUEST_LINE.exec(startLine);
  if (req) {
    msg = { kind: 'request', method: (req[1] as string).toUpperCase(), uri: req[2] as string, headers, body };
  } else {
    const res = STATUS_LINE.exec(startLine);
    if (!res) throw new SipParseError(`not a SIP start line: "${startLine.slice(0, 80)}"`);
    msg = { kind: 'response', status: Number(res[1]), reason: (res[2] ?? '').trim(), headers, body };
  }
  validate(msg);
  return msg;
}

/** `parseSipMessage` that returns undefined instead of throwing. */
export function tryParseSipMessage(buf: Buffer): SipMessage | undefined {
  try {
    return parseSipMessage(buf);
  } catch {
    return undefined;
  }
}

function validate(msg: SipMessage): void {
  const h = msg.headers;
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (!h.has(name)) throw new SipParseError(`missing ${canonicalHeaderName(name)} header`);
  }
  if (!topViaOf(msg)) throw new SipParseError('malformed top Via');
  parseNameAddr(h.get('from') as string);
  parseNameAddr(h.get('to') as string);
  const cseq = parseCSeq(h.get('cseq'));
  if (!cseq) throw new SipParseError(`invalid CSeq "${h.get('cseq')}"`);
  if (msg.kind === 'request') {
    if (cseq.method.toUpperCase() !== msg.method) throw new SipParseError(`CSeq method ${cseq.method} does not match ${msg.method}`);
    if (!/^[a-z][a-z0-9+\-.]*:/i.test(msg.uri)) throw new SipParseError(`invalid Request-URI "${msg.uri}"`);
  }
}

// --- building and serialising ------------------------------------------------------------------

export function serializeSipMessage(msg: SipMessage): Buffer {
  const startLine = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0` : `SIP/2.0 ${msg.status} ${msg.reason}`;
  let head = `${startLine}\r\n`;
  for (const [name, value] of msg.headers) {
    if (name === 'content-length') continue;
    head += `${canonicalHeaderName(name)}: ${value}\r\n`;
  }
  head += `Content-Length: ${msg.body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), msg.body]);
}

export function createRequest(method: string, uri: string, headers: Iterable<readonly [string, string]>, body?: Buffer | string): SipRequest {
  return { kind: 'request', method: method.toUpperCase(), uri, headers: new SipHeaders(headers), body: toBody(body) };
}

function toBody(body: Buffer | string | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  415: 'Unsupported Media Type',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  603: 'Decline',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'OK' : 'Error');
}

/**
 * A response to `req` (RFC 3261 §8.2.6): Via (all, in order), From, To, Call-ID and CSeq
 * copied; `toTag` added to To when it has none.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  opts: { reason?: string; toTag?: string; headers?: Iterable<readonly [string, string]>; body?: Buffer | string } = {},
): SipResponse {
  const headers = new SipHeaders();
  for (const v of req.headers.getAll('via')) headers.append('via', v);
  headers.append('from', req.headers.get('from') ?? '');
  let to = req.headers.get('to') ?? '';
  if (opts.toTag !== undefined && tagOf(to) === undefined && status !== 100) to = `${to};tag=${opts.toTag}`;
  headers.append('to', to);
  headers.append('call-id', req.headers.get('call-id') ?? '');
  headers.append('cseq', req.headers.get('cseq') ?? '');
  if (opts.headers) for (const [n, v] of opts.headers) headers.append(n, v);
  return { kind: 'response', status, reason: opts.reason ?? reasonPhrase(status), headers, body: toBody(opts.body) };
}

/** Random token for tags, Call-IDs and branches (hex, `bytes` random bytes). */
export function randomToken(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

/** The RFC 3261 magic cookie that marks a branch as globally unique. */
export const BRANCH_MAGIC = 'z9hG4bK';

export function newBranch(): string {
  return `${BRANCH_MAGIC}${randomToken(10)}`;
}

/** First line of a message, for logs. */
export function describeSipMessage(msg: SipMessage): string {
  const c = parseCSeq(msg.headers.get('cseq'));
  const cseq = c ? ` (CSeq ${c.seq} ${c.method})` : '';
  return msg.kind === 'request' ? `${msg.method} ${msg.uri}${cseq}` : `${msg.status} ${msg.reason}${cseq}`;
}
