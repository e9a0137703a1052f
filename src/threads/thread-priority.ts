/**
 * Scheduling priority for a latency-critical thread (the media worker): what Asterisk's `-p`
 * or an audio server's realtime thread does. On Linux both the policy and the nice value
 * belong to a thread, so this changes the calling thread only.
 *
 * - 'realtime': SCHED_RR at REALTIME_PRIORITY (sched_setscheduler through koffi). The
 *   kernel's realtime throttling (sched_rt_runtime_us, 95% by default) still leaves the rest
 *   of the machine some CPU if the thread ever ran away.
 * - 'high': nice -20.
 * - 'normal': left as it is.
 * Both raises need CAP_SYS_NICE (root, or the capability granted to node or the container).
 * A refused 'realtime' falls back to 'high', a refused 'high' to 'normal'; the result says
 * what was applied and why not more.
 */
import { setPriority } from 'node:os';
import koffi from 'koffi';

export type ThreadPriority = 'realtime' | 'high' | 'normal';
export const THREAD_PRIORITIES: readonly ThreadPriority[] = ['realtime', 'high', 'normal'];

export const REALTIME_PRIORITY = 10;
const SCHED_RR = 2;

export interface PriorityOutcome {
  requested: ThreadPriority;
  applied: ThreadPriority;
  /** Why a higher level was refused (empty when `applied` is what was requested). */
  refused: string[];
}

export function isThreadPriority(x: unknown): x is ThreadPriority {
  return typeof x === 'string' && (THREAD_PRIORITIES as readonly string[]).includes(x);
}

type SchedSetscheduler = (pid: number, policy: number, param: { sched_priority: number }) => number;
let schedSetscheduler: SchedSetscheduler | undefined;

function setRealtime(): string | undefined {
  if (process.platform !== 'linux') return `SCHED_RR is only set on Linux (this is ${process.platform})`;
  try {
    if (!schedSetscheduler) {
      const libc = koffi.load('libc.so.6');
      koffi.struct('switchboard_sched_param', { sched_priority: 'int' });
      schedSetscheduler = libc.func('int sched_setscheduler(int pid, int policy, const switchboard_sched_param *param)');
    }
    // pid 0: the calling thread.
    const rc = schedSetscheduler(0, SCHED_RR, { sched_priority: REALTIME_PRIORITY });
    if (rc === 0) return undefined;
    const errno = koffi.errno();
    return `sched_setscheduler(SCHED_RR, ${REALTIME_PRIORITY}) failed: errno ${errno}${errno === 1 ? ' (EPERM: needs CAP_SYS_NICE or an RLIMIT_RTPRIO)' : ''}`;
  } catch (err) {
    return `sched_setscheduler unavailable: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function setHigh(tid: number | undefined): string | undefined {
  // Without a thread id (not Linux) setpriority(0) would renice the whole process.
  if (tid === undefined) return 'nice is set per thread only on Linux (no thread id here)';
  try {
    setPriority(tid, -20);
    return undefined;
  } catch (err) {
    return `nice -20 refused: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Raise the calling thread (whose Linux thread id is `tid`) to `requested`, or as near as allowed. */
export function raiseThisThread(requested: ThreadPriority, tid: number | undefined): PriorityOutcome {
  const refused: string[] = [];
  if (requested === 'realtime') {
    const why = setRealtime();
    if (why === undefined) return { requested, applied: 'realtime', refused };
    refused.push(why);
  }
  if (requested === 'realtime' || requested === 'high') {
    const why = setHigh(tid);
    if (why === undefined) return { requested, applied: 'high', refused };
    refused.push(why);
  }
  return { requested, applied: 'normal', refused };
}
