/**
 * The HTTP API's bearer token.
 *
 * Configured: `server.http.apiToken: ${SOME_ENV}` (a secret, so only ever an environment
 * reference). Not configured: generated on the first start (32 random bytes, base64url) into
 * `<state dir>/api-token` with mode 0600 (the state dir is `.switchboard/`, beside the sandbox
 * PBX credentials; SWITCHBOARD_STATE_DIR moves it) and reused afterwards, so the CLI on the
 * same machine finds it. Only the file's path is ever logged, never the token.
 *
 * Comparison is constant-time: both sides are hashed to the same length first, so neither the
 * token's content nor its length leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stateDirectory } from '../pbx/paths.js';

export const API_TOKEN_FILE = 'api-token';
/** Shortest token accepted from a file or the environment. */
export const MIN_TOKEN_LENGTH = 16;

export function apiTokenPath(stateDir: string = stateDirectory()): string {
  return join(stateDir, API_TOKEN_FILE);
}

export function generateApiToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Checks a token's shape; returns it trimmed or throws naming `source`. */
export function validateToken(token: string, source: string): string {
  const t = token.trim();
  if (t.length < MIN_TOKEN_LENGTH) throw new Error(`${source}: the API token is too short (at least ${MIN_TOKEN_LENGTH} characters)`);
  if (!/^[\x21-\x7e]+$/.test(t)) throw new Error(`${source}: the API token must be printable ASCII without spaces`);
  return t;
}

/** The token in `path`, or undefined when the file does not exist. */
export async function readApiToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the API token file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return validateToken(text, path);
}

export interface ResolvedApiToken {
  token: string;
  /** Where it came from: "config" or the file's path. */
  source: string;
  /** True when this call created the file. */
  generated: boolean;
}

/**
 * The token to require: the configured one, else the one in `path`, else a new one written
 * there (atomically, mode 0600, directory 0700).
 */
export async function ensureApiToken(configured: string | undefined, path: string = apiTokenPath()): Promise<ResolvedApiToken> {
  if (configured !== undefined) return { token: validateToken(configured, 'server.http.apiToken'), source: 'config', generated: false };
  const existing = await readApiToken(path);
  if (existing !== undefined) return { token: existing, source: path, generated: false };
  const token = generateApiToken();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${token}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  return { token, source: path, generated: true };
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time token comparison (independent of where or whether the two differ). */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
  return m?.[1];
}
