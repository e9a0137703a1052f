/**
 * HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616 / RFC 8760 for
 * SHA-256): answer a 401 WWW-Authenticate or 407 Proxy-Authenticate challenge with an
 * Authorization / Proxy-Authorization header. Supports MD5, MD5-sess, SHA-256 and
 * SHA-256-sess, with qop "auth" or no qop (RFC 2069 compatibility). qop "auth-int" alone is
 * refused: it is never needed against Asterisk and would tie the digest to the body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseAuthChallenge, type AuthChallenge, type SipResponse } from './sip-message.js';

export interface DigestCredentials {
  username: string;
  password: string;
}

export interface DigestInput {
  username: string;
  password: string;
  realm: string;
  nonce: string;
  method: string;
  uri: string;
  algorithm?: string;
  qop?: 'auth';
  nc?: number;
  cnonce?: string;
}

const HASHES: Readonly<Record<string, 'md5' | 'sha256'>> = {
  MD5: 'md5',
  'MD5-SESS': 'md5',
  'SHA-256': 'sha256',
  'SHA-256-SESS': 'sha256',
};

export function isSupportedAlgorithm(algorithm: string | undefined): boolean {
  return (algorithm ?? 'MD5').toUpperCase() in HASHES;
}

/** The `response` value of a digest (lower-case hex). */
export function computeDigestResponse(i: DigestInput): string {
  const algorithm = (i.algorithm ?? 'MD5').toUpperCase();
  const hashName = HASHES[algorithm];
  if (!hashName) throw new Error(`unsupported digest algorithm ${i.algorithm}`);
  const h = (s: string): string => createHash(hashName).update(s, 'utf8').digest('hex');
  let ha1 = h(`${i.username}:${i.realm}:${i.password}`);
  if (algorithm.endsWith('-SESS')) {
    if (!i.cnonce) throw new Error(`${algorithm} needs a cnonce`);
    ha1 = h(`${ha1}:${i.nonce}:${i.cnonce}`);
  }
  const ha2 = h(`${i.method}:${i.uri}`);
  if (i.qop === 'auth') {
    if (!i.cnonce || i.nc === undefined) throw new Error('qop=auth needs cnonce and nc');
    return h(`${ha1}:${i.nonce}:${formatNc(i.nc)}:${i.cnonce}:auth:${ha2}`);
  }
  return h(`${ha1}:${i.nonce}:${ha2}`);
}

function formatNc(nc: number): string {
  return nc.toString(16).padStart(8, '0');
}

export interface ChosenChallenge {
  /** Header to send back: Authorization (401) or Proxy-Authorization (407). */
  headerName: 'authorization' | 'proxy-authorization';
  challenge: AuthChallenge;
}

/**
 * The challenge of a 401/407 to answer: the first Digest challenge with a supported algorithm
 * and qop (RFC 8760: challenges are listed in order of preference). Undefined when none fits.
 */
export function chooseChallenge(res: SipResponse): ChosenChallenge | undefined {
  const proxy = res.status === 407;
  const values = res.headers.getAll(proxy ? 'proxy-authenticate' : 'www-authenticate');
  for (const v of values) {
    let c: AuthChallenge;
    try {
      c = parseAuthChallenge(v);
    } catch {
      continue;
    }
    if (c.scheme.toLowerCase() !== 'digest') continue;
    if (!c.params.has('realm') || !c.params.has('nonce')) continue;
    if (!isSupportedAlgorithm(c.params.get('algorithm'))) continue;
    const qop = c.params.get('qop');
    if (qop !== undefined && !qop.split(',').some((q) => q.trim().toLowerCase() === 'auth')) continue;
    return { headerName: proxy ? 'proxy-authorization' : 'authorization', challenge: c };
  }
  return undefined;
}

/** The credentials header value answering `challenge` for a request `method uri`. */
export function buildAuthorization(
  challenge: AuthChallenge,
  creds: DigestCredentials,
  method: string,
  uri: string,
  nc = 1,
  cnonce: string = randomBytes(8).toString('hex'),
): string {
  const p = challenge.params;
  const realm = p.get('realm') ?? '';
  const nonce = p.get('nonce') ?? '';
  const algorithm = p.get('algorithm');
  const qop = p.get('qop') !== undefined ? ('auth' as const) : undefined;
  const response = computeDigestResponse({
    username: creds.username,
    password: creds.password,
    realm,
    nonce,
    method,
    uri,
    algorithm,
    qop,
    nc,
    cnonce,
  });
  const q = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const parts = [`username=${q(creds.username)}`, `realm=${q(realm)}`, `nonce=${q(nonce)}`, `uri=${q(uri)}`, `response=${q(response)}`];
  if (algorithm !== undefined) parts.push(`algorithm=${algorithm}`);
  if (qop) parts.push(`qop=auth`, `nc=${formatNc(nc)}`, `cnonce=${q(cnonce)}`);
  const opaque = p.get('opaque');
  if (opaque !== undefined) parts.push(`opaque=${q(opaque)}`);
  return `Digest ${parts.join(', ')}`;
}
