/**
 * Instance options: name and ports, from (highest first) explicit options / CLI flags, the
 * environment, the instance's credentials file (the ports of its last `up`), then defaults.
 */
import { DEFAULT_INSTANCE, cacheRoot, stateDirectory, validateInstanceName } from './paths.js';

export interface PbxPorts {
  /** SIP over UDP. */
  sip: number;
  /** Asterisk HTTP server (ARI). */
  http: number;
  /** AMI (manager). */
  ami: number;
  /** First RTP port (even). */
  rtpStart: number;
  /** Last RTP port. */
  rtpEnd: number;
}

export const DEFAULT_PORTS: Readonly<PbxPorts> = Object.freeze({
  sip: 5060,
  http: 8088,
  ami: 5038,
  rtpStart: 10000,
  rtpEnd: 14999,
});

/** Environment variables that set ports (CLI flags win over them). */
export const PORT_ENV: Readonly<Record<keyof PbxPorts, string>> = Object.freeze({
  sip: 'SWITCHBOARD_PBX_SIP_PORT',
  http: 'SWITCHBOARD_PBX_HTTP_PORT',
  ami: 'SWITCHBOARD_PBX_AMI_PORT',
  rtpStart: 'SWITCHBOARD_PBX_RTP_START',
  rtpEnd: 'SWITCHBOARD_PBX_RTP_END',
});

export const INSTANCE_ENV = 'SWITCHBOARD_PBX_INSTANCE';

/** Loopback only: the sandbox is never reachable from another machine. */
export const SANDBOX_BIND_ADDRESS = '127.0.0.1';

export interface PbxCommonOptions {
  /** Instance name (default: $SWITCHBOARD_PBX_INSTANCE or "default"). */
  instance?: string;
  /** Cache directory holding the rootfs (default: see paths.ts cacheRoot). */
  cacheDir?: string;
  /** Directory of the credentials files (default: <repo>/.switchboard). */
  stateDir?: string;
  /** Environment to read defaults from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
}

export interface PbxPortOptions {
  sipPort?: number;
  httpPort?: number;
  amiPort?: number;
  rtpStart?: number;
  rtpEnd?: number;
}

export interface ResolvedCommon {
  instance: string;
  cacheDir: string;
  stateDir: string;
  env: Record<string, string | undefined>;
  log: (message: string) => void;
}

export function resolveCommon(opts: PbxCommonOptions = {}): ResolvedCommon {
  const env = opts.env ?? process.env;
  const instance = validateInstanceName(opts.instance ?? env[INSTANCE_ENV] ?? DEFAULT_INSTANCE);
  return {
    instance,
    cacheDir: opts.cacheDir ?? cacheRoot(env),
    stateDir: opts.stateDir ?? stateDirectory(env),
    env,
    log: opts.log ?? (() => undefined),
  };
}

function envPort(env: Record<string, string | undefined>, key: keyof PbxPorts): number | undefined {
  const raw = env[PORT_ENV[key]];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${PORT_ENV[key]}="${raw}" is not a port number`);
  return n;
}

/**
 * Merge port sources and validate the result: ports in 1024-65535, distinct, the RTP range even-
 * aligned, at least 20 ports wide and not containing the SIP/HTTP/AMI ports.
 */
export function resolvePorts(
  explicit: PbxPortOptions,
  env: Record<string, string | undefined>,
  stored?: Partial<PbxPorts>,
): PbxPorts {
  const pick = (key: keyof PbxPorts, flag: number | undefined): number =>
    flag ?? envPort(env, key) ?? stored?.[key] ?? DEFAULT_PORTS[key];
  const ports: PbxPorts = {
    sip: pick('sip', explicit.sipPort),
    http: pick('http', explicit.httpPort),
    ami: pick('ami', explicit.amiPort),
    rtpStart: pick('rtpStart', explicit.rtpStart),
    rtpEnd: pick('rtpEnd', explicit.rtpEnd),
  };
  validatePorts(ports);
  return ports;
}

export function validatePorts(ports: PbxPorts): void {
  const errors: string[] = [];
  for (const [key, value] of Object.entries(ports) as [keyof PbxPorts, number][]) {
    if (!Number.isInteger(value) || value < 1024 || value > 65535) {
      errors.push(`${key} port ${value} is not an unprivileged port (1024-65535)`);
    }
  }
  if (ports.rtpStart % 2 !== 0) errors.push(`RTP start ${ports.rtpStart} must be even (RTP even, RTCP odd)`);
  if (ports.rtpEnd - ports.rtpStart < 19) {
    errors.push(`RTP range ${ports.rtpStart}-${ports.rtpEnd} is too small (at least 20 ports)`);
  }
  const singles: [string, number][] = [['sip', ports.sip], ['http', ports.http], ['ami', ports.ami]];
  for (let i = 0; i < singles.length; i++) {
    const [name, port] = singles[i]!;
    if (port >= ports.rtpStart && port <= ports.rtpEnd) errors.push(`${name} port ${port} is inside the RTP range`);
    for (let j = i + 1; j < singles.length; j++) {
      const [other, otherPort] = singles[j]!;
      // SIP is UDP, HTTP and AMI are TCP: only HTTP and AMI truly clash, but keep all distinct.
      if (port === otherPort) errors.push(`${name} and ${other} ports are both ${port}`);
    }
  }
  if (errors.length > 0) throw new Error(`invalid PBX ports:\n  ${errors.join('\n  ')}`);
}
