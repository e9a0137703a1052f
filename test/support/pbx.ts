/**
 * The sandbox PBX for tests: `ensureSandbox(instance)` starts an instance on non-default ports
 * (so it never clashes with a developer's "default" instance; a slot of free ports is picked
 * when the preferred one is taken) and returns its connection;
 * `stop()` takes it down again, but only if this call started it: an instance that was already
 * running (a developer's, or a previous test file's with SWITCHBOARD_TEST_KEEP_PBX=1) is left
 * alone. `useSandbox()` wires that into vitest's beforeAll/afterAll.
 */
import { afterAll, beforeAll } from 'vitest';
import { pbxDown, pbxStatus, pbxUp, type PbxUpResult, type PbxStatus } from '../../src/pbx/instance.js';
import { busyPorts } from '../../src/pbx/net.js';
import type { PbxConnection } from '../../src/pbx/connection.js';
import type { PbxPorts } from '../../src/pbx/options.js';

export const TEST_INSTANCE = 'test';

/** Number of port slots test instances are spread over. */
export const TEST_SLOTS = 100;

function slotOf(instance: string): number {
  if (instance === TEST_INSTANCE) return 0;
  let h = 2166136261;
  for (const ch of instance) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return 1 + (h % (TEST_SLOTS - 1));
}

/**
 * Ports of test slot `slot` (0-99): SIP 25100+slot, AMI 25200+slot, HTTP 28100+slot, and a
 * 2000-port RTP range. RTP ranges of different slots may overlap: Asterisk skips ports it
 * cannot bind, so only the SIP/HTTP/AMI ports must be unique.
 */
export function slotPorts(slot: number): PbxPorts {
  const rtpStart = 30000 + (slot % 15) * 2000;
  return { sip: 25100 + slot, ami: 25200 + slot, http: 28100 + slot, rtpStart, rtpEnd: rtpStart + 1999 };
}

/** The preferred ports of a test instance: a slot picked by a hash of its name ("test" is slot 0). */
export function testPorts(instance: string): PbxPorts {
  return slotPorts(slotOf(instance));
}

/**
 * Ports for a test instance that nothing holds right now: its preferred slot if free, else the
 * next free one (other developers' and benchmarks' instances share this machine).
 */
export async function freeTestPorts(instance: string): Promise<PbxPorts> {
  const first = slotOf(instance);
  for (let i = 0; i < TEST_SLOTS; i++) {
    const ports = slotPorts((first + i) % TEST_SLOTS);
    if ((await busyPorts(ports)).length === 0) return ports;
  }
  throw new Error('no free test port slot (SIP 25100-25199, AMI 25200-25299, HTTP 28100-28199 all taken)');
}

function portOf(hostPort: string): number {
  return Number(/:(\d+)\/?$/.exec(hostPort)?.[1]);
}

export interface SandboxOptions {
  ports?: Partial<PbxPorts>;
  cacheDir?: string;
  stateDir?: string;
  /** Leave the instance running after stop() (also: SWITCHBOARD_TEST_KEEP_PBX=1). */
  keep?: boolean;
  log?: (message: string) => void;
}

export interface SandboxHandle {
  instance: string;
  ports: PbxPorts;
  connection: PbxConnection;
  status: PbxStatus;
  up: PbxUpResult;
  /** This call started the instance (stop() will take it down). */
  startedHere: boolean;
  stop(): Promise<void>;
}

export async function ensureSandbox(instance: string = TEST_INSTANCE, opts: SandboxOptions = {}): Promise<SandboxHandle> {
  const common = {
    instance,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  };
  // Already running (a developer's, or a previous file's): reuse it on its own ports.
  const current = await pbxStatus(common);
  const base: PbxPorts = current.running
    ? { sip: portOf(current.sip), http: portOf(current.ari_url), ami: portOf(current.ami), rtpStart: current.rtp.start, rtpEnd: current.rtp.end }
    : await freeTestPorts(instance);
  const ports = { ...base, ...opts.ports };
  const up = await pbxUp({
    ...common,
    sipPort: ports.sip,
    httpPort: ports.http,
    amiPort: ports.ami,
    rtpStart: ports.rtpStart,
    rtpEnd: ports.rtpEnd,
  });
  const keep = opts.keep ?? process.env.SWITCHBOARD_TEST_KEEP_PBX === '1';
  const startedHere = !up.alreadyRunning;
  let stopped = false;
  return {
    instance,
    ports,
    connection: up.connection,
    status: up.status,
    up,
    startedHere,
    async stop(): Promise<void> {
      if (stopped || !startedHere || keep) return;
      stopped = true;
      await pbxDown(common);
    },
  };
}

/**
 * In a vitest file: start the sandbox before the file's tests, stop it after them.
 * Returns a getter (the handle exists only once beforeAll has run).
 */
export function useSandbox(instance: string = TEST_INSTANCE, opts: SandboxOptions = {}): () => SandboxHandle {
  let handle: SandboxHandle | undefined;
  beforeAll(async () => {
    handle = await ensureSandbox(instance, opts);
  }, 600_000);
  afterAll(async () => {
    await handle?.stop();
  }, 60_000);
  return () => {
    if (!handle) throw new Error('the sandbox is not up yet (use the getter inside tests or hooks)');
    return handle;
  };
}
