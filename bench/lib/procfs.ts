/**
 * Process and machine accounting from /proc: CPU time of a process (all its threads), its
 * resident memory, the machine's CPU use, and the children of a process by name.
 */
import { readFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second for /proc/<pid>/stat (almost always 100 on Linux). */
export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

interface StatFields {
  comm: string;
  ppid: number;
  /** utime + stime in ms (every thread of the process). */
  cpuMs: number;
}

function parseStat(text: string): StatFields | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (![ppid, utime, stime].every(Number.isFinite)) return undefined;
  return { comm: text.slice(open + 1, close), ppid, cpuMs: ((utime + stime) * 1000) / CLK_TCK };
}

/** CPU time (user + system, all threads) of a process in ms; undefined once it is gone. */
export async function processCpuMs(pid: number): Promise<number | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'))?.cpuMs;
  } catch {
    return undefined;
  }
}

/** Resident set size in MiB (VmRSS); undefined once the process is gone. */
export async function processRssMiB(pid: number): Promise<number | undefined> {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Live children of `parent` whose command name is `comm`. */
export async function childrenNamed(parent: number, comm: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = parseStat(await readFile(`/proc/${e}/stat`, 'utf8'));
      if (s && s.ppid === parent && s.comm === comm) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Machine-wide CPU counters from /proc/stat, in ms summed over cores. */
export interface MachineCpu {
  busyMs: number;
  totalMs: number;
}

export async function machineCpu(): Promise<MachineCpu> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest fields are already in user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  const total = busy + idle + iowait;
  return { busyMs: (busy * 1000) / CLK_TCK, totalMs: (total * 1000) / CLK_TCK };
}

/** The 1, 5 and 15 minute load averages. */
export async function loadAverage(): Promise<[number, number, number]> {
  const f = (await readFile('/proc/loadavg', 'utf8')).trim().split(/\s+/).map(Number);
  return [f[0] ?? Number.NaN, f[1] ?? Number.NaN, f[2] ?? Number.NaN];
}

export interface ThreadSched {
  tid: number;
  /** Nice value (per thread on Linux: the media worker raises its own). */
  nice: number;
  runMs: number;
  waitMs: number;
}

/** Scheduler figures of every thread of `pid` (see threadSchedMs). */
export async function allThreadsSched(pid: number): Promise<ThreadSched[]> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: ThreadSched[] = [];
  for (const t of tids) {
    const tid = Number(t);
    const sched = await threadSchedMs(pid, tid);
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    // Fields after "(comm) ": state is field 3, nice field 19.
    const nice = stat === undefined ? Number.NaN : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    if (sched) out.push({ tid, nice, ...sched });
  }
  return out;
}

/**
 * Scheduler figures of one thread (/proc/<pid>/task/<tid>/schedstat): time on a CPU and time
 * spent runnable but waiting for one (CPU contention), in ms.
 */
export async function threadSchedMs(pid: number, tid = pid): Promise<{ runMs: number; waitMs: number } | undefined> {
  try {
    const [run, wait] = (await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).trim().split(/\s+/).map(Number);
    if (run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
    return { runMs: run / 1e6, waitMs: wait / 1e6 };
  } catch {
    return undefined;
  }
}
