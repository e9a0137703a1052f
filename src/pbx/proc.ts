/**
 * /proc inspection: which processes belong to a sandbox instance (by root directory and
 * command line), whether a pid is alive (zombies count as dead), and which sockets a process
 * has bound (to check the sandbox listens on loopback only).
 */
import { readFileSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** R, S, D, Z, T, ... */
  state: string;
  comm: string;
  cmdline: string[];
  /** The process's root directory as seen from here (a chrooted process shows its rootfs). */
  root: string | undefined;
  /** Start time in clock ticks since boot (with the pid, identifies a process uniquely). */
  startTicks: number;
}

interface Stat {
  state: string;
  ppid: number;
  comm: string;
  startTicks: number;
}

export function parseStat(text: string): Stat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const state = rest[0];
  const ppid = Number(rest[1]);
  const startTicks = Number(rest[19]);
  if (!state || !Number.isFinite(ppid) || !Number.isFinite(startTicks)) return undefined;
  return { state, ppid, comm: text.slice(open + 1, close), startTicks };
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but is not ours to signal.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
  } catch {
    return false;
  }
}

export async function readProc(pid: number): Promise<ProcInfo | undefined> {
  try {
    const stat = parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
    if (!stat) return undefined;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((s) => s.length > 0);
    let root: string | undefined;
    try {
      root = await readlink(`/proc/${pid}/root`);
    } catch {
      root = undefined;
    }
    return { pid, ppid: stat.ppid, state: stat.state, comm: stat.comm, cmdline, root, startTicks: stat.startTicks };
  } catch {
    return undefined; // gone meanwhile
  }
}

export async function listProcesses(): Promise<ProcInfo[]> {
  const entries = await readdir('/proc');
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const infos = await Promise.all(pids.map((pid) => readProc(pid)));
  return infos.filter((p): p is ProcInfo => p !== undefined);
}

/** Live (non-zombie) processes whose root directory is `rootfs`. */
export async function processesInRoot(rootfs: string): Promise<ProcInfo[]> {
  const all = await listProcesses();
  return all.filter((p) => p.root === rootfs && p.state !== 'Z');
}

/**
 * Live processes of one sandbox instance: rooted in `rootfs` and either naming the instance's
 * asterisk.conf on their command line (the daemon, `asterisk -rx` clients) or descending from
 * such a process.
 */
export async function instanceProcesses(rootfs: string, chrootAsteriskConf: string): Promise<ProcInfo[]> {
  const inRoot = await processesInRoot(rootfs);
  const mine = new Set(inRoot.filter((p) => p.cmdline.includes(chrootAsteriskConf)).map((p) => p.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of inRoot) {
      if (!mine.has(p.pid) && mine.has(p.ppid)) {
        mine.add(p.pid);
        grew = true;
      }
    }
  }
  return inRoot.filter((p) => mine.has(p.pid));
}

export interface SocketInfo {
  protocol: 'tcp' | 'udp' | 'tcp6' | 'udp6';
  address: string;
  port: number;
  /** TCP state (0A = LISTEN, 01 = ESTABLISHED); UDP: 07 unconnected, 01 connected. */
  state: string;
}

function hexToIPv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

function hexToIPv6(hex: string): string {
  const groups: string[] = [];
  for (let i = 0; i < 4; i++) {
    const word = hex.slice(i * 8, i * 8 + 8);
    // Each 32-bit word is in host (little-endian) order.
    const bytes = word.match(/../g)!.reverse().join('');
    groups.push(bytes.slice(0, 4), bytes.slice(4, 8));
  }
  return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':').toLowerCase();
}

export function parseProcNet(text: string, protocol: SocketInfo['protocol']): Map<string, SocketInfo> {
  const byInode = new Map<string, SocketInfo>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [addrHex, portHex] = f[1]!.split(':') as [string, string];
    const address = protocol.endsWith('6') ? hexToIPv6(addrHex) : hexToIPv4(addrHex);
    byInode.set(f[9]!, { protocol, address, port: parseInt(portHex, 16), state: f[3]! });
  }
  return byInode;
}

/** Sockets (TCP/UDP, v4/v6) the process holds open. */
export async function socketsOf(pid: number): Promise<SocketInfo[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: SocketInfo[] = [];
  for (const protocol of ['tcp', 'udp', 'tcp6', 'udp6'] as const) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${protocol}`, 'utf8');
    } catch {
      continue;
    }
    for (const [inode, info] of parseProcNet(text, protocol)) if (inodes.has(inode)) out.push(info);
  }
  return out;
}
