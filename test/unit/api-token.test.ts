/** The API bearer token: generated once (0600 in a 0700 directory), reused, configured, compared. */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { bearerToken, ensureApiToken, tokensEqual } from '../../src/api/token.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-api-token-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('no token configured: one is generated (32 random bytes, base64url) with mode 0600, then reused', async () => {
  const path = join(dir, 'state', 'api-token');
  const first = await ensureApiToken(undefined, path);
  expect(first.generated).toBe(true);
  expect(first.source).toBe(path);
  expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
  expect((await readFile(path, 'utf8')).trim()).toBe(first.token);

  const again = await ensureApiToken(undefined, path);
  expect(again).toEqual({ token: first.token, source: path, generated: false });
  // Another directory gets another token.
  const other = await ensureApiToken(undefined, join(dir, 'other', 'api-token'));
  expect(other.token).not.toBe(first.token);
});

test('a configured token wins over the file and is checked', async () => {
  const path = join(dir, 'api-token');
  expect(await ensureApiToken('configured-token-0123456789', path)).toEqual({ token: 'configured-token-0123456789', source: 'config', generated: false });
  await expect(ensureApiToken('short', path)).rejects.toThrow('server.http.apiToken: the API token is too short (at least 16 characters)');
  await expect(ensureApiToken('has spaces in the token text', path)).rejects.toThrow(/printable ASCII without spaces/);
});

test('a token file that was tampered with is refused, not silently replaced', async () => {
  const path = join(dir, 'api-token');
  await writeFile(path, 'abc\n');
  await expect(ensureApiToken(undefined, path)).rejects.toThrow(`${path}: the API token is too short`);
});

test('constant-time comparison says equal only for equal tokens, whatever their lengths', () => {
  expect(tokensEqual('same-token-123456', 'same-token-123456')).toBe(true);
  expect(tokensEqual('same-token-123456', 'same-token-123457')).toBe(false);
  expect(tokensEqual('short', 'a-much-longer-token-value')).toBe(false);
  expect(tokensEqual('', 'x')).toBe(false);
});

test('bearer header parsing', () => {
  expect(bearerToken('Bearer abc.DEF-123_~')).toBe('abc.DEF-123_~');
  expect(bearerToken('bearer   tok ')).toBe('tok');
  expect(bearerToken('Basic abc')).toBeUndefined();
  expect(bearerToken('Bearer')).toBeUndefined();
  expect(bearerToken('Bearer a b')).toBeUndefined();
  expect(bearerToken(undefined)).toBeUndefined();
});
