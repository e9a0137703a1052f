/**
 * How Switchboard finds its PBX: the sandbox instance's credentials file
 * (`.switchboard/pbx-<instance>.json`, written by `switchboard pbx up`), overridden field by
 * field by the environment (ARI_URL, ARI_USERNAME, ARI_PASSWORD, ARI_APP, AMI_HOST, AMI_PORT,
 * AMI_USERNAME, AMI_SECRET). With ARI_URL, ARI_USERNAME and ARI_PASSWORD all set (docker
 * compose, a production PBX) no file is needed.
 */
import { credentialsPath, stateDirectory, validateInstanceName, DEFAULT_INSTANCE } from './paths.js';
import { INSTANCE_ENV } from './options.js';
import { readCredentials, readCredentialsSync, type PbxCredentials, type SipAccount } from './secrets.js';

export interface PbxConnection {
  instance: string;
  /** e.g. http://127.0.0.1:8088 (no trailing slash, no /ari). */
  ariUrl: string;
  /** e.g. ws://127.0.0.1:8088/ari/events */
  ariWsUrl: string;
  ariUsername: string;
  ariPassword: string;
  /** Stasis application name the dialplan sends calls to. */
  ariApp: string;
  ami?: { host: string; port: number; username: string; secret: string };
  sip?: { host: string; port: number; transport: 'udp'; accounts: SipAccount[] };
  rtp?: { start: number; end: number };
  /** Where the values came from. */
  source: 'file' | 'env' | 'file+env';
  credentialsFile?: string;
}

export interface LoadPbxConnectionOptions {
  stateDir?: string;
  env?: Record<string, string | undefined>;
}

function wsUrlFor(ariUrl: string): string {
  const u = new URL(ariUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/ari/events`;
  return u.toString();
}

function normaliseAriUrl(raw: string): string {
  // Accept ".../ari" too: ari-client wants the base URL.
  return raw.replace(/\/+$/, '').replace(/\/ari$/, '');
}

/** Combine a credentials file (or none) with environment overrides. Pure; exported for tests. */
export function combineConnection(
  instance: string,
  file: PbxCredentials | undefined,
  filePath: string,
  env: Record<string, string | undefined>,
): PbxConnection {
  const e = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : v;
  };
  const envUsed = ['ARI_URL', 'ARI_USERNAME', 'ARI_PASSWORD', 'ARI_APP', 'AMI_HOST', 'AMI_PORT', 'AMI_USERNAME', 'AMI_SECRET'].some(
    (k) => e(k) !== undefined,
  );
  const ariUrlRaw = e('ARI_URL') ?? file?.ari_url;
  const ariUsername = e('ARI_USERNAME') ?? file?.ari_username;
  const ariPassword = e('ARI_PASSWORD') ?? file?.ari_password;
  if (!ariUrlRaw || !ariUsername || !ariPassword) {
    const missing = [!ariUrlRaw && 'ARI_URL', !ariUsername && 'ARI_USERNAME', !ariPassword && 'ARI_PASSWORD'].filter(Boolean);
    throw new Error(
      `no PBX connection for instance "${instance}": ${filePath} does not exist and ${missing.join(', ')} ` +
        `${missing.length > 1 ? 'are' : 'is'} not set. Run \`switchboard pbx up${instance === DEFAULT_INSTANCE ? '' : ` --instance ${instance}`}\` ` +
        'for the local sandbox, or set ARI_URL, ARI_USERNAME and ARI_PASSWORD.',
    );
  }
  const ariUrl = normaliseAriUrl(ariUrlRaw);
  const amiPortRaw = e('AMI_PORT');
  const amiPort = amiPortRaw !== undefined ? Number(amiPortRaw) : file?.ami.port;
  if (amiPortRaw !== undefined && !Number.isInteger(amiPort)) throw new Error(`AMI_PORT="${amiPortRaw}" is not a port number`);
  const amiHost = e('AMI_HOST') ?? file?.ami.host;
  const amiUser = e('AMI_USERNAME') ?? file?.ami.username;
  const amiSecret = e('AMI_SECRET') ?? file?.ami.secret;
  const ami =
    amiHost && amiPort !== undefined && amiUser && amiSecret
      ? { host: amiHost, port: amiPort, username: amiUser, secret: amiSecret }
      : undefined;
  const ariWsUrl = e('ARI_URL') || !file ? wsUrlFor(ariUrl) : file.ari_ws_url;
  return {
    instance,
    ariUrl,
    ariWsUrl,
    ariUsername,
    ariPassword,
    ariApp: e('ARI_APP') ?? file?.ari_app ?? 'switchboard',
    ...(ami ? { ami } : {}),
    ...(file ? { sip: file.sip, rtp: file.rtp, credentialsFile: filePath } : {}),
    source: file ? (envUsed ? 'file+env' : 'file') : 'env',
  };
}

function resolveInstance(instance: string | undefined, env: Record<string, string | undefined>): string {
  return validateInstanceName(instance ?? env[INSTANCE_ENV] ?? DEFAULT_INSTANCE);
}

/** Read the connection of a sandbox instance (default: $SWITCHBOARD_PBX_INSTANCE or "default"). */
export async function loadPbxConnection(instance?: string, opts: LoadPbxConnectionOptions = {}): Promise<PbxConnection> {
  const env = opts.env ?? process.env;
  const name = resolveInstance(instance, env);
  const path = credentialsPath(opts.stateDir ?? stateDirectory(env), name);
  return combineConnection(name, await readCredentials(path), path, env);
}

/** Synchronous variant, for configuration loaders that cannot await. */
export function loadPbxConnectionSync(instance?: string, opts: LoadPbxConnectionOptions = {}): PbxConnection {
  const env = opts.env ?? process.env;
  const name = resolveInstance(instance, env);
  const path = credentialsPath(opts.stateDir ?? stateDirectory(env), name);
  return combineConnection(name, readCredentialsSync(path), path, env);
}

/** The connection described by freshly written credentials (no environment). */
export function connectionFromCredentials(creds: PbxCredentials, path: string): PbxConnection {
  return combineConnection(creds.instance, creds, path, {});
}
