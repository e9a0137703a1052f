/**
 * `switchboard calls list | show ID | stats`: the call records, from a running Switchboard's
 * HTTP API (default) or straight from the records database (--database, e.g. while
 * Switchboard is stopped). Exit 0 on success, 1 when the records cannot be read (server not
 * running, token refused, unknown call id, database unreachable), 2 for a usage error.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ApiClientError, createApiClient } from '../api/client.js';
import { ApiError, DEFAULT_PAGE_SIZE, parseAgent, parseCallCursor, parseCaller, parseIsoTime, parseLimit, parseOutcome } from '../api/query.js';
import { apiTokenPath, readApiToken, validateToken } from '../api/token.js';
import { expandEnv, type Env } from '../config/env.js';
import type { CallListQuery, CallRecordReader } from '../records/types.js';
import { formatList, formatRecord, formatStats } from './calls-format.js';
import type { CliCommand } from './main.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:9464';

const USAGE = [
  'Usage: switchboard calls list  [--limit N] [--outcome O] [--since TIME] [--before TIME [--before-call ID]] [--agent A] [--caller NUMBER] [--json]',
  '       switchboard calls show ID [--json]',
  '       switchboard calls stats [--since TIME] [--until TIME] [--json]',
  '',
  '  list     recorded calls, newest first (--limit 1-500, default 50; --before TIME --before-call ID of the last row pages back)',
  '  show     one call: summary, outcome, and the two-sided transcript with tool calls and latency',
  '  stats    containment rate, calls by outcome, transfers by reason, tool errors, average handle time',
  '',
  '  --outcome O     resolved | transferred | abandoned | failed',
  '  TIME            ISO 8601, e.g. 2025-01-31 or 2025-01-31T09:00:00Z',
  '  --json          print JSON instead of text',
  '',
  'Where the records come from:',
  '  --url URL       a running Switchboard (default: $SWITCHBOARD_URL, else server.http of the config,',
  `                  else ${DEFAULT_API_URL})`,
  '  --config FILE   the config whose server.http to use (default: $SWITCHBOARD_CONFIG, else ./switchboard.yaml if present)',
  '  --database URL  read the records database directly instead: postgres://… or pglite:<directory>',
  '                  (an embedded pglite directory can be open in one process only: stop Switchboard first)',
  '',
  'API token: $SWITCHBOARD_API_TOKEN, else the variable server.http.apiToken names in the config,',
  'else the token Switchboard generated in .switchboard/api-token.',
].join('\n');

class UsageError extends Error {}
class ReadError extends Error {}

const SUBCOMMAND_OPTIONS: Record<string, readonly string[]> = {
  list: ['limit', 'outcome', 'since', 'before', 'before-call', 'agent', 'caller'],
  show: [],
  stats: ['since', 'until'],
};
const COMMON = ['json', 'url', 'config', 'database'];

/** Argument values checked with the API's own rules; the message names the flag. */
function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(err.message);
    throw err;
  }
}

export interface ParsedCallsArgs {
  sub: 'list' | 'show' | 'stats';
  id?: string;
  query: CallListQuery;
  range: { since?: string; until?: string };
  json: boolean;
  url?: string;
  config?: string;
  database?: string;
}

/** Parses and checks the arguments; throws UsageError (exit 2) with a message naming the flag. */
export function parseCallsArgs(args: string[]): ParsedCallsArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        limit: { type: 'string' },
        outcome: { type: 'string' },
        since: { type: 'string' },
        before: { type: 'string' },
        'before-call': { type: 'string' },
        until: { type: 'string' },
        agent: { type: 'string' },
        caller: { type: 'string' },
        json: { type: 'boolean', default: false },
        url: { type: 'string' },
        config: { type: 'string' },
        database: { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [sub, ...rest] = parsed.positionals;
  if (sub === undefined) throw new UsageError('missing subcommand (list, show ID or stats)');
  if (sub !== 'list' && sub !== 'show' && sub !== 'stats') throw new UsageError(`unknown subcommand "${sub}" (list, show ID or stats)`);
  const v = parsed.values;
  const allowed = new Set([...(SUBCOMMAND_OPTIONS[sub] ?? []), ...COMMON]);
  for (const [key, value] of Object.entries(v)) {
    if (value !== undefined && !(key === 'json' && value === false) && !allowed.has(key)) throw new UsageError(`--${key} is not an option of "calls ${sub}"`);
  }
  if (sub === 'show') {
    if (rest.length === 0) throw new UsageError('calls show needs a call id (see `switchboard calls list`)');
    if (rest.length > 1) throw new UsageError(`calls show takes one call id (got ${rest.length})`);
  } else if (rest.length > 0) {
    throw new UsageError(`calls ${sub} takes no arguments (got "${rest[0]}")`);
  }
  if (v.url !== undefined && v.database !== undefined) throw new UsageError('give either --url or --database, not both');
  if (v.url !== undefined) checkUrl(v.url, '--url');

  const query: CallListQuery = {};
  const range: { since?: string; until?: string } = {};
  checked(() => {
    if (sub === 'list') {
      query.limit = v.limit !== undefined ? parseLimit(v.limit, '--limit') : DEFAULT_PAGE_SIZE;
      if (v.outcome !== undefined) query.outcome = parseOutcome(v.outcome, '--outcome');
      if (v.since !== undefined) query.since = parseIsoTime(v.since, '--since');
      if (v.before !== undefined) query.before = parseIsoTime(v.before, '--before');
      if (v['before-call'] !== undefined) query.beforeCallId = parseCallCursor(v['before-call'], query.before, '--before-call');
      if (v.agent !== undefined) query.agent = parseAgent(v.agent, '--agent');
      if (v.caller !== undefined) query.callerNumber = parseCaller(v.caller, '--caller');
    }
    if (sub === 'stats') {
      if (v.since !== undefined) range.since = parseIsoTime(v.since, '--since');
      if (v.until !== undefined) range.until = parseIsoTime(v.until, '--until');
      if (range.since !== undefined && range.until !== undefined && range.since >= range.until) throw new ApiError(400, '--since must be earlier than --until');
    }
  });
  return {
    sub,
    ...(sub === 'show' ? { id: rest[0] } : {}),
    query,
    range,
    json: v.json === true,
    ...(v.url !== undefined ? { url: v.url } : {}),
    ...(v.config !== undefined ? { config: v.config } : {}),
    ...(v.database !== undefined ? { database: v.database } : {}),
  };
}

function checkUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`${what} must be a URL such as ${DEFAULT_API_URL} (got "${url}")`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} must be an http:// or https:// URL`);
  return url;
}

interface ConfigHttp {
  url?: string;
  /** The token server.http.apiToken gives, expanded from this environment. */
  token?: string;
  file: string;
}

/** server.http of a config file, read without validating the rest (no plugins loaded). */
export async function httpFromConfig(file: string, env: Env): Promise<ConfigHttp> {
  let tree: unknown;
  try {
    tree = parseYaml(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ReadError(`cannot read server.http from ${file}: ${(err as Error).message.split('\n')[0]} (pass --url)`);
  }
  const http = (tree as { server?: { http?: Record<string, unknown> } } | null)?.server?.http ?? {};
  const text = (key: string): string | undefined => {
    const raw = http[key];
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== 'string' && typeof raw !== 'number') throw new ReadError(`server.http.${key} in ${file} is not a value`);
    const r = expandEnv(String(raw), env);
    if (r.missing.length > 0) throw new ReadError(`server.http.${key} in ${file} needs ${r.missing.map((m) => `$${m}`).join(', ')}, which is not set here`);
    return r.value;
  };
  const out: ConfigHttp = { file };
  const portText = text('port');
  const port = portText === undefined ? 9464 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ReadError(`server.http.port in ${file} is not a port number`);
  if (port === 0) throw new ReadError(`${file} turns the HTTP server off (server.http.port: 0): pass --url, or read the database with --database`);
  let host = text('host') ?? '127.0.0.1';
  if (host === '0.0.0.0' || host === '' || host === '::') host = '127.0.0.1';
  out.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const token = text('apiToken');
  if (token !== undefined) out.token = token;
  return out;
}

/** The records reader the arguments ask for, and how to let go of it. */
async function openReader(a: ParsedCallsArgs, env: Env): Promise<{ reader: CallRecordReader; close(): Promise<void> }> {
  if (a.database !== undefined) {
    const { openRecordsDatabase } = await import('./calls-database.js');
    try {
      return await openRecordsDatabase(a.database);
    } catch (err) {
      throw new ReadError((err as Error).message);
    }
  }
  const configFile = a.config ?? env.SWITCHBOARD_CONFIG ?? (existsSync('switchboard.yaml') ? 'switchboard.yaml' : undefined);
  const fromConfig = a.url === undefined && !env.SWITCHBOARD_URL && configFile !== undefined ? await httpFromConfig(configFile, env) : undefined;
  const url = a.url ?? (env.SWITCHBOARD_URL ? checkUrl(env.SWITCHBOARD_URL, 'SWITCHBOARD_URL') : undefined) ?? fromConfig?.url ?? DEFAULT_API_URL;

  let token: string | undefined;
  let tokenSource: string;
  try {
    if (env.SWITCHBOARD_API_TOKEN) {
      token = validateToken(env.SWITCHBOARD_API_TOKEN, 'SWITCHBOARD_API_TOKEN');
      tokenSource = '$SWITCHBOARD_API_TOKEN';
    } else if (fromConfig?.token !== undefined) {
      tokenSource = `server.http.apiToken in ${fromConfig.file}`;
      token = validateToken(fromConfig.token, tokenSource);
    } else {
      const path = apiTokenPath(env.SWITCHBOARD_STATE_DIR ? resolve(env.SWITCHBOARD_STATE_DIR) : undefined);
      token = await readApiToken(path);
      tokenSource = path;
      if (token === undefined) {
        throw new ReadError(`no API token: set SWITCHBOARD_API_TOKEN, or run this where Switchboard generated its token (${path} does not exist)`);
      }
    }
  } catch (err) {
    throw err instanceof ReadError ? err : new ReadError((err as Error).message);
  }
  return { reader: createApiClient({ url, token, tokenSource }), close: async () => undefined };
}

/** Runs a parsed command against a reader; returns the text to print. */
export async function runCalls(a: ParsedCallsArgs, reader: CallRecordReader): Promise<string> {
  const out = (value: unknown, text: () => string): string => (a.json ? JSON.stringify(value, null, 2) : text());
  switch (a.sub) {
    case 'list': {
      const calls = await reader.list(a.query);
      return out(calls, () => formatList(calls, { width: process.stdout.columns || 160 }));
    }
    case 'show': {
      const record = await reader.get(a.id!);
      if (!record) throw new ReadError(`no call with id "${a.id!}" (see \`switchboard calls list\`)`);
      return out(record, () => formatRecord(record));
    }
    case 'stats': {
      const stats = await reader.stats(a.range);
      return out(stats, () => formatStats(stats));
    }
  }
}

export const callsCommand: CliCommand = {
  summary: 'Recorded calls: list them, show one as a transcript, or the business stats.',
  usage: USAGE,
  async run(args) {
    let parsed: ParsedCallsArgs;
    try {
      parsed = parseCallsArgs(args);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`switchboard calls: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    let source: { reader: CallRecordReader; close(): Promise<void> } | undefined;
    try {
      source = await openReader(parsed, process.env);
      console.log(await runCalls(parsed, source.reader));
      return 0;
    } catch (err) {
      if (err instanceof UsageError) {
        console.error(`switchboard calls: ${err.message}\n\n${USAGE}`);
        return 2;
      }
      if (err instanceof ReadError || err instanceof ApiClientError || (err instanceof Error && err.name === 'RecordsDatabaseError')) {
        console.error(`switchboard calls: ${err.message}`);
        return 1;
      }
      throw err;
    } finally {
      await source?.close();
    }
  },
};
