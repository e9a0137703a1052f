/**
 * The instance's credentials file, `.switchboard/pbx-<instance>.json` (git-ignored, mode 0600).
 *
 * Secrets are generated with crypto.randomBytes on the first `up` of an instance and kept on
 * later ups (so phones configured once keep working); ports and URLs are refreshed every `up`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { PbxPorts } from './options.js';

export const ARI_USERNAME = 'switchboard';
export const AMI_USERNAME = 'switchboard';
export const ARI_APP = 'switchboard';

/** SIP accounts defined in asterisk-config/pjsip.conf whose passwords are generated. */
export const SIP_ACCOUNTS: readonly { username: string; role: 'phone' | 'operator' }[] = [
  { username: '6001', role: 'phone' },
  { username: '6002', role: 'phone' },
  { username: '7000', role: 'operator' },
];

const sipAccountSchema = z.object({
  username: z.string().min(1),
  password: z.string().min(16),
  role: z.enum(['phone', 'operator']),
  /** The auth object in pjsip.conf that carries this password. */
  auth: z.string().min(1),
});

export const credentialsSchema = z.object({
  version: z.literal(1),
  instance: z.string(),
  ari_url: z.string().url(),
  ari_ws_url: z.string(),
  ari_username: z.string().min(1),
  ari_password: z.string().min(16),
  ari_app: z.string().min(1),
  ami: z.object({
    host: z.string(),
    port: z.number().int(),
    username: z.string().min(1),
    secret: z.string().min(16),
  }),
  sip: z.object({
    host: z.string(),
    port: z.number().int(),
    transport: z.literal('udp'),
    accounts: z.array(sipAccountSchema),
  }),
  rtp: z.object({ start: z.number().int(), end: z.number().int() }),
  created_at: z.string(),
  updated_at: z.string(),
});

export type PbxCredentials = z.infer<typeof credentialsSchema>;
export type SipAccount = z.infer<typeof sipAccountSchema>;

/** A random secret: `bytes` random bytes as base64url (safe in every Asterisk config file). */
export function generateSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export function parseCredentials(text: string, source: string): PbxCredentials {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = credentialsSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${source}: invalid PBX credentials file:\n  ${issues.join('\n  ')}`);
  }
  return parsed.data;
}

export async function readCredentials(path: string): Promise<PbxCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseCredentials(text, path);
}

export function readCredentialsSync(path: string): PbxCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseCredentials(text, path);
}

/** Ports a previous `up` stored in the credentials file. */
export function storedPorts(creds: PbxCredentials | undefined): Partial<PbxPorts> | undefined {
  if (!creds) return undefined;
  const http = Number(new URL(creds.ari_url).port);
  return { sip: creds.sip.port, http, ami: creds.ami.port, rtpStart: creds.rtp.start, rtpEnd: creds.rtp.end };
}

/**
 * Build the credentials for an instance: keep every secret of `previous` (if any), fill in the
 * missing ones with fresh random secrets, and set host/ports.
 */
export function buildCredentials(
  instance: string,
  host: string,
  ports: PbxPorts,
  previous: PbxCredentials | undefined,
  now = new Date(),
): PbxCredentials {
  const accounts = SIP_ACCOUNTS.map((acct) => {
    const old = previous?.sip.accounts.find((a) => a.username === acct.username);
    return { ...acct, auth: `auth-${acct.username}`, password: old?.password ?? generateSecret() };
  });
  return {
    version: 1,
    instance,
    ari_url: `http://${host}:${ports.http}`,
    ari_ws_url: `ws://${host}:${ports.http}/ari/events`,
    ari_username: previous?.ari_username ?? ARI_USERNAME,
    ari_password: previous?.ari_password ?? generateSecret(),
    ari_app: previous?.ari_app ?? ARI_APP,
    ami: {
      host,
      port: ports.ami,
      username: previous?.ami.username ?? AMI_USERNAME,
      secret: previous?.ami.secret ?? generateSecret(),
    },
    sip: { host, port: ports.sip, transport: 'udp', accounts },
    rtp: { start: ports.rtpStart, end: ports.rtpEnd },
    created_at: previous?.created_at ?? now.toISOString(),
    updated_at: now.toISOString(),
  };
}

/** Write atomically (temp file + rename) with mode 0600 in a 0700 directory. */
export async function writeCredentials(path: string, creds: PbxCredentials): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Read, complete and write the credentials of an instance. */
export async function ensureCredentials(
  path: string,
  instance: string,
  host: string,
  ports: PbxPorts,
): Promise<PbxCredentials> {
  const previous = await readCredentials(path);
  const creds = buildCredentials(instance, host, ports, previous);
  await writeCredentials(path, creds);
  return creds;
}
