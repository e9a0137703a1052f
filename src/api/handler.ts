/**
 * The HTTP API under /api/ (the server in src/app.ts hands every /api/ request here):
 *
 *   GET /api/calls?limit&before&since&outcome&agent&caller   newest first: { calls, nextBefore }
 *   GET /api/calls/stats?since&until                         CallStats
 *   GET /api/calls/{id}                                      the full CallRecord
 *
 * Every request needs `Authorization: Bearer <token>` (401 with WWW-Authenticate otherwise),
 * checked before anything else so an unauthenticated client learns nothing about the routes.
 * Errors are JSON `{ "error": "..." }`: 400 names the bad parameter, 404 unknown call or
 * endpoint, 405 wrong method, 503 records disabled or their database unreachable.
 *
 * The access log has method, route template, status and time: no query string, no call id,
 * no token (query values may be phone numbers).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { CallRecordReader } from '../records/types.js';
import { isDbUnavailableError } from '../storage/db.js';
import { ApiError, CALL_ID, parseListQuery, parseStatsRange } from './query.js';
import { bearerToken, tokensEqual } from './token.js';

export interface ApiHandlerOptions {
  /** The records store; undefined when records are disabled (every call answers 503). */
  reader: CallRecordReader | undefined;
  /** The bearer token every request must present. */
  token: string;
  log: Logger;
}

/** Handles one request whose path starts with /api/; never throws, always answers. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => void;

export const API_PREFIX = '/api/';
const REALM = 'Bearer realm="switchboard"';
const ENDPOINTS = 'GET /api/calls, GET /api/calls/stats, GET /api/calls/{id}';

interface Route {
  /** Template for the access log. */
  name: string;
  run(url: URL, reader: CallRecordReader): Promise<unknown>;
}

function route(path: string): Route | undefined {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (p === '/api/calls') {
    return {
      name: '/api/calls',
      run: async (url, reader) => {
        const query = parseListQuery(url.searchParams);
        const calls = await reader.list(query);
        const last = calls[calls.length - 1];
        const more = calls.length >= query.limit && last !== undefined;
        // Pass both back as before / before_call for the next page.
        return { calls, nextBefore: more ? last.startedAt : null, nextBeforeCall: more ? last.callId : null };
      },
    };
  }
  if (p === '/api/calls/stats') {
    return { name: '/api/calls/stats', run: (url, reader) => reader.stats(parseStatsRange(url.searchParams)) };
  }
  const m = /^\/api\/calls\/([^/]+)$/.exec(p);
  if (m?.[1] !== undefined) {
    const raw = m[1];
    return {
      name: '/api/calls/{id}',
      run: async (url, reader) => {
        if ([...url.searchParams.keys()].length > 0) throw new ApiError(400, 'GET /api/calls/{id} takes no query parameters');
        let id: string;
        try {
          id = decodeURIComponent(raw);
        } catch {
          throw new ApiError(400, 'the call id in the path is not valid percent-encoding');
        }
        const record = CALL_ID.test(id) ? await reader.get(id) : undefined;
        if (!record) throw new ApiError(404, 'no call with this id');
        return record;
      },
    };
  }
  return undefined;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

export function createApiHandler(opts: ApiHandlerOptions): ApiHandler {
  const log = opts.log.child({ component: 'api' });

  /** `ctx.route` is set as soon as the route is known (for the access log). */
  async function answer(req: IncomingMessage, ctx: { route: string }): Promise<unknown> {
    const presented = bearerToken(req.headers.authorization);
    if (presented === undefined) {
      const why = req.headers.authorization ? 'the Authorization header is not "Bearer <token>"' : 'missing Authorization: Bearer <token>';
      throw new ApiError(401, `${why} (the token is in .switchboard/api-token or server.http.apiToken)`, { 'www-authenticate': `${REALM}, error="invalid_request"` });
    }
    if (!tokensEqual(presented, opts.token)) {
      throw new ApiError(401, 'the bearer token is not valid', { 'www-authenticate': `${REALM}, error="invalid_token"` });
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://switchboard.invalid');
    } catch {
      throw new ApiError(400, 'malformed request path');
    }
    const r = route(url.pathname);
    if (!r) throw new ApiError(404, `no such endpoint; the API has ${ENDPOINTS}`);
    ctx.route = r.name;
    if (req.method !== 'GET') throw new ApiError(405, `method ${req.method ?? '?'} not allowed here: use GET`, { allow: 'GET' });
    if (!opts.reader) throw new ApiError(503, 'call records are disabled in this Switchboard (records.enabled: false)');
    try {
      return await r.run(url, opts.reader);
    } catch (err) {
      // The store's own check of a query (src/records/pg-store.ts CallQueryError): the client's mistake.
      if (err instanceof Error && err.name === 'CallQueryError') throw new ApiError(400, err.message);
      if (isDbUnavailableError(err)) {
        log.warn({ err: (err as Error).message, route: r.name }, 'call-records database unavailable');
        throw new ApiError(503, 'the call-records database is unavailable; try again later', { 'retry-after': '5' });
      }
      throw err;
    }
  }

  return (req, res) => {
    const started = performance.now();
    const done = (routeName: string, status: number): void => {
      const entry = { method: req.method, route: routeName, status, ms: Math.round(performance.now() - started) };
      if (status >= 500) log.warn(entry, 'api request');
      else log.debug(entry, 'api request');
    };
    const ctx = { route: 'unrouted' };
    answer(req, ctx).then(
      (body) => {
        send(res, 200, body);
        done(ctx.route, 200);
      },
      (err: unknown) => {
        if (err instanceof ApiError) {
          send(res, err.status, { error: err.message }, err.headers);
          done(ctx.route, err.status);
          return;
        }
        log.error({ err, route: ctx.route }, 'api request failed');
        send(res, 500, { error: 'internal error (see the Switchboard log)' });
        done(ctx.route, 500);
      },
    ).catch((err: unknown) => {
      // Writing the answer failed (the client went away mid-response): nothing left to tell it.
      log.debug({ err: (err as Error).message, route: ctx.route }, 'api response not sent');
      if (!res.writableEnded) res.destroy();
    });
  };
}
