/**
 * The media thread's priority: raised in a worker thread, as the media worker does, and read
 * back from the kernel (/proc/thread-self/stat). Only that thread changes; the test's own
 * thread keeps its policy and nice value.
 */
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { isThreadPriority, REALTIME_PRIORITY, type PriorityOutcome, type ThreadPriority } from '../../src/threads/thread-priority.js';
import { startWorker } from '../../src/threads/worker-bootstrap.js';

interface Probe {
  outcome: PriorityOutcome;
  tid: number;
  nice: number;
  rtPriority: number;
  policy: number;
}

const SCHED_OTHER = 0;
const SCHED_RR = 2;

async function probe(priority: ThreadPriority): Promise<Probe> {
  const worker = startWorker(new URL('../support/priority-probe-worker.ts', import.meta.url), { workerData: { priority } });
  const [msg] = (await once(worker, 'message')) as [Probe];
  await worker.terminate();
  return msg;
}

function ownStat(): { nice: number; policy: number } {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { nice: Number(f[16]), policy: Number(f[38]) };
}

/** CAP_SYS_NICE: bit 23 of the effective capability set. */
function hasSysNice(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  return line !== undefined && (BigInt(`0x${line.split(/\s+/)[1]}`) & (1n << 23n)) !== 0n;
}

/** A soft resource limit from /proc/self/limits ("unlimited" as Infinity). */
function softLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const v = line?.slice(name.length).trim().split(/\s+/)[0];
  return v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v ?? 0);
}

/** Whether SCHED_RR at REALTIME_PRIORITY is allowed: the capability, or RLIMIT_RTPRIO (as docker-compose sets). */
const mayRealtime = (): boolean => hasSysNice() || softLimit('Max realtime priority') >= REALTIME_PRIORITY;
/** Whether nice -20 is allowed: the capability, or RLIMIT_NICE of 40. */
const mayNice20 = (): boolean => hasSysNice() || softLimit('Max nice priority') >= 40;

describe.runIf(process.platform === 'linux')('thread priority', () => {
  const before = ownStat();

  it('realtime: the worker thread runs SCHED_RR at REALTIME_PRIORITY, or says why not and falls back', { timeout: 20_000 }, async () => {
    const p = await probe('realtime');
    if (mayRealtime()) {
      expect(p.outcome).toEqual({ requested: 'realtime', applied: 'realtime', refused: [] });
      expect(p.policy).toBe(SCHED_RR);
      expect(p.rtPriority).toBe(REALTIME_PRIORITY);
    } else {
      expect(p.outcome.applied).not.toBe('realtime');
      expect(p.outcome.refused[0]).toMatch(/sched_setscheduler.*EPERM/);
      expect(p.policy).toBe(SCHED_OTHER);
    }
    expect(ownStat()).toEqual(before); // the caller's thread is untouched
  });

  it('high: nice -20 on the worker thread only', { timeout: 20_000 }, async () => {
    const p = await probe('high');
    if (mayNice20()) {
      expect(p.outcome).toEqual({ requested: 'high', applied: 'high', refused: [] });
      expect(p.nice).toBe(-20);
    } else {
      expect(p.outcome.applied).toBe('normal');
      expect(p.outcome.refused).toHaveLength(1);
    }
    expect(p.policy).toBe(SCHED_OTHER);
    expect(ownStat()).toEqual(before);
  });

  it('normal: leaves the thread alone', { timeout: 20_000 }, async () => {
    const p = await probe('normal');
    expect(p.outcome).toEqual({ requested: 'normal', applied: 'normal', refused: [] });
    expect(p.policy).toBe(SCHED_OTHER);
    expect(p.nice).toBe(before.nice);
  });

  it('recognises the three levels only', () => {
    expect(['realtime', 'high', 'normal'].every(isThreadPriority)).toBe(true);
    expect(isThreadPriority('fifo')).toBe(false);
    expect(isThreadPriority(-20)).toBe(false);
  });
});
