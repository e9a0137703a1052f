/** What the results were measured on: machine, software, load, command. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { loadAverage } from './procfs.js';
import { REPO_ROOT } from './switchboard.js';

export interface Environment {
  date: string;
  command: string;
  nproc: number;
  cpuModel: string;
  ramGiB: number;
  node: string;
  asterisk: string;
  sipp: string;
  kernel: string;
  git: string;
  /** 1/5/15 min load averages just before the run (the machine is shared). */
  loadAverageBefore: [number, number, number];
}

/** stdout + stderr of a command whatever its exit code ('' if it cannot run). */
function tryRun(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: REPO_ROOT, timeout: 10_000 });
  return r.error ? '' : `${r.stdout}${r.stderr}`.trim();
}

/** The command as typed: `npm run bench -- ...` when run through npm. */
export function commandLine(argv: string[]): string {
  const args = argv.join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `npx tsx bench/run.ts${args ? ` ${args}` : ''}`;
}

export async function captureEnvironment(argv: string[]): Promise<Environment> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const commit = /^[0-9a-f]{7,}$/.exec(tryRun('git', ['rev-parse', '--short', 'HEAD']))?.[0];
  const dirty = tryRun('git', ['status', '--porcelain']).length > 0;
  return {
    date: new Date().toISOString(),
    command: commandLine(argv),
    nproc: availableParallelism(),
    cpuModel: model,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    asterisk: 'not started',
    sipp: /SIPp v[^\s]+/.exec(tryRun('sipp', ['-v']))?.[0] ?? 'unknown',
    kernel: tryRun('uname', ['-r']),
    git: commit ? `${commit}${dirty ? ' (working tree has uncommitted changes)' : ''}` : 'unknown',
    loadAverageBefore: await loadAverage(),
  };
}
