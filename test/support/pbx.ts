/**
 * The sandbox PBX for tests: `ensureSandbox(instance)` starts an instance on non-default ports
 * (so it never clashes with a developer's "default" instance) and returns its connection;
 * `stop()` takes it down again, but only if this call started it: an instance that was already
 * running (a developer's, or a previous test file's with SWITCHBOARD_TEST_KEEP_PBX=1) is left
 * alone. `useSandbox()` wires that into vitest's beforeAll/afterAll.
 */
import { afterAll, beforeAll } from 'vitest';
import { pbxDown, pbxUp, type PbxUpResult, type PbxStatus } from '../../src/pbx/instance.js';
import type { PbxConnection } from '../../src/pbx/connection.js';
import type { PbxPorts } from '../../src/pbx/options.js';

export const TEST_INSTANCE = 'test';

/** Ports of a test instance: one of 15 slots picked by a hash of its name ("test" is slot 0). */
export function testPorts(instance: string): PbxPorts {
  let slot = 0;
  if (instance !== TEST_INSTANCE) {
    let h = 2166136261;
    for (const ch of instance) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    slot = 1 + (h % 14);
  }
  return {
    sip: 25100 + slot,
    ami: 25200 + slot,
    http: 28100 + slot,
    rtpStart: 30000 + slot * 2000,
    rtpEnd: 30000 + slot * 2000 + 1999,
  };
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
  const ports = { ...testPorts(instance), ...opts.ports };
  const common = {
    instance,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  };
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
