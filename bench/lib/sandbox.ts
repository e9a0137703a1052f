/**
 * The benchmark's own sandbox PBX (instance "bench"), with an RTP range wide enough for 200+
 * concurrent calls: each call holds RTP+RTCP for its SIP leg and for its ExternalMedia leg
 * (4 ports), and Asterisk picks ports at random, so the range is kept at several times
 * 4 x calls. The range sits below Linux's ephemeral ports (32768+), where Switchboard's and
 * SIPp's own sockets live.
 */
import { pbxDown, pbxStatus } from '../../src/pbx/index.js';
import { ensureSandbox, type SandboxHandle } from '../../test/support/pbx.js';
import { onCleanup } from './cleanup.js';

export const BENCH_INSTANCE = 'bench';
export const BENCH_RTP = { start: 20000, end: 23999 };

export interface BenchSandbox {
  handle: SandboxHandle;
  sipPort: number;
  asteriskPid: number;
  asteriskVersion: string;
  rtp: { start: number; end: number };
}

export async function startBenchSandbox(log: (msg: string) => void): Promise<BenchSandbox> {
  // A "bench" instance still up is a leftover of an interrupted run: start from a clean one.
  const before = await pbxStatus({ instance: BENCH_INSTANCE }).catch(() => undefined);
  if (before?.running) {
    log(`sandbox "${BENCH_INSTANCE}" was left running (pid ${before.pid}); stopping it first`);
    await pbxDown({ instance: BENCH_INSTANCE });
  }
  // Registered before starting, so an interrupt during start-up still takes it down.
  const unregister = onCleanup(`stop sandbox PBX "${BENCH_INSTANCE}"`, async () => void (await pbxDown({ instance: BENCH_INSTANCE })), 60_000);
  // SIP/HTTP/AMI: the first free test slot (ensureSandbox); RTP: the bench's own wide range.
  const handle = await ensureSandbox(BENCH_INSTANCE, { ports: { rtpStart: BENCH_RTP.start, rtpEnd: BENCH_RTP.end }, keep: false, log });
  const pid = handle.status.pid;
  if (pid === null) {
    await pbxDown({ instance: BENCH_INSTANCE });
    unregister();
    throw new Error('sandbox started but reports no Asterisk pid');
  }
  return {
    handle,
    sipPort: handle.ports.sip,
    asteriskPid: pid,
    asteriskVersion: handle.status.asterisk_version ?? 'unknown',
    rtp: { start: handle.ports.rtpStart, end: handle.ports.rtpEnd },
  };
}
