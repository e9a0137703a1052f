/**
 * `npm run bench`: the media, concurrency and latency benchmarks.
 *
 *   npm run bench                                   # everything (several minutes)
 *   npm run bench -- --only media|concurrency|latency  (comma-separated for several)
 *   npm run bench -- --steps 10,50,100,200          # concurrency steps
 *   npm run bench -- --quick                        # shorter runs (steps 10,50 unless --steps)
 *   options: --name NAME (results file), --no-pcap, --rate N (calls/s), --rtp-thread-tasks N,
 *            --md (write bench/RESULTS.md even for a partial or quick run)
 *
 * Writes bench/results/<name>.json and, for a full run, bench/RESULTS.md; prints a table.
 * Everything it starts (sandbox PBX "bench", Switchboard, SIPp, tshark, temp dirs) is
 * stopped on exit, on failure and on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runConcurrency } from './concurrency.js';
import { runLatency } from './latency.js';
import { runMedia } from './media.js';
import { installSignalHandlers, onCleanup, runCleanup, signalPid, tempDir } from './lib/cleanup.js';
import { childrenNamed } from './lib/procfs.js';
import { captureEnvironment } from './lib/env.js';
import { renderConsole, renderMarkdown, type BenchResults } from './lib/report.js';
import { startBenchSandbox, type BenchSandbox } from './lib/sandbox.js';
import { REPO_ROOT } from './lib/switchboard.js';

const BENCHES = ['media', 'concurrency', 'latency'] as const;
type Bench = (typeof BENCHES)[number];

function parseOptions(argv: string[]): BenchResults['options'] & { name: string | undefined; md: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      steps: { type: 'string' },
      quick: { type: 'boolean', default: false },
      name: { type: 'string' },
      'no-pcap': { type: 'boolean', default: false },
      rate: { type: 'string' },
      'rtp-thread-tasks': { type: 'string' },
      md: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...BENCHES];
  for (const o of only) if (!(BENCHES as readonly string[]).includes(o)) throw new Error(`--only: unknown benchmark "${o}" (media, concurrency, latency)`);
  const steps = values.steps ? values.steps.split(',').map(Number) : values.quick ? [10, 50] : [10, 50, 100, 200];
  if (steps.some((n) => !Number.isInteger(n) || n < 1 || n > 400)) throw new Error('--steps: comma-separated call counts between 1 and 400');
  const rate = values.rate !== undefined ? Number(values.rate) : undefined;
  if (rate !== undefined && !(rate > 0)) throw new Error('--rate must be a positive number');
  // SIPp streams all calls from one process; 25, 100 and 200 calls per RTP thread cost the same
  // within noise here (7-9% of a core for 150 calls), so 100: two threads at 200 calls.
  const rtpThreadTasks = values['rtp-thread-tasks'] !== undefined ? Number(values['rtp-thread-tasks']) : 100;
  if (!Number.isInteger(rtpThreadTasks) || rtpThreadTasks < 1) throw new Error('--rtp-thread-tasks must be a positive integer');
  if (values.name !== undefined && !/^[A-Za-z0-9._-]+$/.test(values.name)) throw new Error('--name: letters, digits, ".", "_" and "-" only');
  return {
    only,
    steps,
    quick: values.quick,
    pcap: !values['no-pcap'],
    rtpThreadTasks,
    ...(rate !== undefined ? { rate } : {}),
    name: values.name,
    md: values.md,
  };
}

function hasTshark(): boolean {
  return !spawnSync('tshark', ['--version'], { stdio: 'ignore', timeout: 10_000 }).error;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  const started = Date.now();
  const log = (msg: string): void => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  installSignalHandlers();
  const environment = await captureEnvironment(argv);
  const name = opts.name ?? `bench-${environment.date.replace(/[:.]/g, '-')}`;
  const results: BenchResults = {
    name,
    environment,
    options: { only: opts.only, steps: opts.steps, quick: opts.quick, pcap: opts.pcap, rtpThreadTasks: opts.rtpThreadTasks, ...(opts.rate ? { rate: opts.rate } : {}) },
    durationS: 0,
    errors: {},
  };
  log(`load average before the run: ${environment.loadAverageBefore.join(' ')} (nproc ${environment.nproc})`);
  const work = await tempDir('switchboard-bench-');
  // runSipp() owns its SIPp process; an interrupted run must not leave one streaming.
  onCleanup('stop SIPp', async () => {
    for (const pid of await childrenNamed(process.pid, 'sipp')) signalPid(pid, 'SIGKILL');
  });
  const want = (b: Bench): boolean => opts.only.includes(b);

  try {
    if (want('media')) {
      try {
        results.media = await runMedia({ quick: opts.quick, workDir: work, log });
      } catch (err) {
        results.errors.media = err instanceof Error ? err.message : String(err);
      }
    }
    let sandbox: BenchSandbox | undefined;
    if (want('concurrency') || want('latency')) {
      log('starting the sandbox PBX "bench"');
      sandbox = await startBenchSandbox((m) => log(m));
      environment.asterisk = sandbox.asteriskVersion;
      log(`Asterisk pid ${sandbox.asteriskPid}, SIP ${sandbox.sipPort}, RTP ${sandbox.rtp.start}-${sandbox.rtp.end}`);
    }
    if (sandbox && want('latency')) {
      try {
        results.latency = await runLatency({ quick: opts.quick, workDir: work, sandbox, pcap: opts.pcap && hasTshark(), log });
      } catch (err) {
        results.errors.latency = err instanceof Error ? err.message : String(err);
      }
    }
    if (sandbox && want('concurrency')) {
      try {
        results.concurrency = await runConcurrency({
          steps: opts.steps,
          quick: opts.quick,
          workDir: work,
          sandbox,
          rtpThreadTasks: opts.rtpThreadTasks,
          ...(opts.rate ? { rate: opts.rate } : {}),
          log,
        });
      } catch (err) {
        results.errors.concurrency = err instanceof Error ? err.message : String(err);
      }
    }
  } finally {
    log('cleaning up');
    await runCleanup();
  }

  results.durationS = (Date.now() - started) / 1000;
  const resultsDir = join(REPO_ROOT, 'bench/results');
  await mkdir(resultsDir, { recursive: true });
  const jsonPath = join(resultsDir, `${name}.json`);
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  const full = opts.only.length === BENCHES.length && !opts.quick;
  if (full || opts.md) await writeFile(join(REPO_ROOT, 'bench/RESULTS.md'), renderMarkdown(results));
  console.log(renderConsole(results));
  console.log(`\nresults: ${jsonPath}${full || opts.md ? '\nsummary: bench/RESULTS.md' : ' (partial/quick run: bench/RESULTS.md left as is; --md to write it)'}`);
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  await runCleanup();
  process.exitCode = 1;
}
