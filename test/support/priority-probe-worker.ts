/** Worker entry for thread-priority tests: raise this thread, then report what the kernel says. */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { raiseThisThread, type ThreadPriority } from '../../src/threads/thread-priority.js';
import { currentOsThreadId } from '../../src/threads/worker-bootstrap.js';

const tid = currentOsThreadId();
const outcome = raiseThisThread((workerData as { priority: ThreadPriority }).priority, tid);
// /proc/thread-self/stat: after "(comm) ", field 19 is nice, field 40 rt_priority, 41 policy.
const stat = readFileSync('/proc/thread-self/stat', 'utf8');
const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
parentPort?.postMessage({ outcome, tid, nice: Number(f[16]), rtPriority: Number(f[37]), policy: Number(f[38]) });
