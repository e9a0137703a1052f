/**
 * A client for the call-records HTTP API (what `switchboard calls` uses by default). It is a
 * CallRecordReader, so the CLI reads the same way from a running Switchboard or, with
 * --database, from the store directly. Failures become ApiClientError with a message a person
 * can act on (not running, token refused, unknown id, database down).
 */
import type { CallListItem, CallListQuery, CallRecord, CallRecordReader, CallStats } from '../records/types.js';

export type ApiClientErrorKind = 'unreachable' | 'unauthorized' | 'bad_request' | 'not_found' | 'unavailable' | 'server' | 'protocol';

export class ApiClientError extends Error {
  override readonly name = 'ApiClientError';
  constructor(
    message: string,
    readonly kind: ApiClientErrorKind,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  /** Base URL of the Switchboard HTTP server, e.g. http://127.0.0.1:9464 */
  url: string;
  token: string;
  /** Where the token came from, for the "token refused" message. */
  tokenSource: string;
  timeoutMs?: number;
}

export function createApiClient(opts: ApiClientOptions): CallRecordReader {
  const base = opts.url.replace(/\/+$/, '');

  async function get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T | undefined> {
    const url = new URL(`${base}${path}`);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const why = cause?.code ?? (err instanceof Error && err.name === 'TimeoutError' ? 'no answer in time' : (err as Error).message);
      throw new ApiClientError(
        `no Switchboard answered at ${base} (${why}). Is it running (switchboard start)? ` +
          'Give its address with --url, or read the records database directly with --database URL.',
        'unreachable',
      );
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    const serverMessage = typeof (body as { error?: unknown } | undefined)?.error === 'string' ? (body as { error: string }).error : undefined;
    if (res.ok) {
      if (body === undefined) throw new ApiClientError(`${base}${path} did not answer with JSON: is ${base} a Switchboard?`, 'protocol', res.status);
      return body as T;
    }
    switch (res.status) {
      case 401:
        throw new ApiClientError(
          `the Switchboard at ${base} refused the API token from ${opts.tokenSource}` +
            `${serverMessage ? ` (${serverMessage})` : ''}. Set SWITCHBOARD_API_TOKEN to the token the server uses ` +
            '(its .switchboard/api-token, or the variable server.http.apiToken names).',
          'unauthorized',
          401,
        );
      case 400:
        throw new ApiClientError(`bad request: ${serverMessage ?? 'the server gave no reason'}`, 'bad_request', 400);
      case 404:
        if (serverMessage === 'no call with this id') return undefined;
        throw new ApiClientError(`${base} has no call-records API (${serverMessage ?? '404 Not Found'}): is it a Switchboard of this version?`, 'not_found', 404);
      case 503:
        throw new ApiClientError(`call records are unavailable: ${serverMessage ?? '503 Service Unavailable'}`, 'unavailable', 503);
      default:
        throw new ApiClientError(`the Switchboard at ${base} answered ${res.status}${serverMessage ? `: ${serverMessage}` : ''}`, 'server', res.status);
    }
  }

  const required = <T>(v: T | undefined, path: string): T => {
    if (v === undefined) throw new ApiClientError(`${base}${path} answered 404`, 'not_found', 404);
    return v;
  };

  return {
    async list(query: CallListQuery = {}): Promise<CallListItem[]> {
      const page = await get<{ calls: CallListItem[] }>('/api/calls', {
        limit: query.limit,
        before: query.before,
        before_call: query.beforeCallId,
        since: query.since,
        outcome: query.outcome,
        agent: query.agent,
        caller: query.callerNumber,
      });
      const calls = required(page, '/api/calls').calls;
      if (!Array.isArray(calls)) throw new ApiClientError(`${base}/api/calls answered without a "calls" list`, 'protocol');
      return calls;
    },
    async get(callId: string): Promise<CallRecord | undefined> {
      return get<CallRecord>(`/api/calls/${encodeURIComponent(callId)}`);
    },
    async stats(range: { since?: string; until?: string } = {}): Promise<CallStats> {
      return required(await get<CallStats>('/api/calls/stats', { since: range.since, until: range.until }), '/api/calls/stats');
    },
  };
}
