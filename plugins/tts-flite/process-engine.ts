/**
 * flite as a child process: one `flite` run per chunk, for deployments that want no native
 * code inside the Switchboard process (a crash in flite then costs one chunk, not every
 * call). Dearer than the FFI engine: each run execs flite and re-initialises its lexicon
 * (~15-20 ms for kal, ~60 ms more for a clustergen voice's model), and Node forks the whole
 * server process to spawn it (measured ~2 ms with a small heap, ~15 ms of event-loop stall
 * with a 200 MB one).
 *
 * flite cannot write the WAV to Node's stdout pipe: Node's stdio pipes are socketpairs and
 * flite opens its output by name, and opening /dev/stdout on a socket fails (ENXIO). flite
 * only writes once the whole utterance is synthesised anyway, so each run writes a file in
 * a private temporary directory that is read back and removed: nothing streaming is lost.
 *
 * Abort kills the child with SIGKILL and waits for it to be reaped (no zombie), then
 * removes its file. Concurrency is capped (default: the number of CPUs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSampleRate } from '../../src/audio/frame.js';
import { abortError, fliteError, type SynthEngine, type SynthJob, type VoiceInfo, type Wave } from './engine.js';
import { availableVoices, isKnownVoice } from './voices.js';
import { parseWav } from '../../src/audio/wav.js';

export interface ProcessEngineOptions {
  binary: string;
  /** Most flite processes at once (default: available CPUs). */
  maxProcesses?: number | undefined;
}

export class ProcessEngine implements SynthEngine {
  readonly mode = 'process' as const;
  private readonly binary: string;
  private readonly maxProcesses: number;
  private dir: Promise<string> | undefined;
  private seq = 0;
  private running = 0;
  private readonly waiting: { start(): void; signal: AbortSignal; onAbort(): void }[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly voices = new Map<string, Promise<VoiceInfo>>();
  private closed = false;

  constructor(opts: ProcessEngineOptions) {
    this.binary = opts.binary;
    this.maxProcesses = opts.maxProcesses ?? Math.max(1, availableParallelism());
  }

  /** flite processes alive right now. */
  get liveProcesses(): number {
    return this.children.size;
  }

  loadVoice(name: string, signal: AbortSignal): Promise<VoiceInfo> {
    let p = this.voices.get(name);
    if (!p) {
      // flite silently falls back to its default voice for a name it does not know.
      const listing = availableVoices('process', this.binary);
      if (!listing.ok) return Promise.reject(fliteError('unavailable', `${listing.problem} (${listing.hint})`, false));
      if (!listing.voices.includes(name)) {
        return Promise.reject(fliteError('bad_request', `unknown flite voice "${name}" (this flite has: ${listing.voices.join(', ')})`, false));
      }
      // The rate is a property of the voice: learn it from a tiny synthesis.
      p = this.run({ voice: name, text: 'a' }, new AbortController().signal).then((w) => ({ name, sampleRate: w.sampleRate }));
      this.voices.set(name, p);
      p.catch(() => this.voices.delete(name));
    }
    if (signal.aborted) return Promise.reject(abortError());
    return p;
  }

  async synth(job: SynthJob, signal: AbortSignal): Promise<Wave> {
    return this.run(job, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.onAbort();
    await Promise.all([...this.children].map((c) => killAndReap(c)));
    if (this.dir) {
      const dir = await this.dir.catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  private async run(job: SynthJob, signal: AbortSignal): Promise<Wave> {
    if (this.closed) throw fliteError('unavailable', 'the provider is closed', false);
    if (signal.aborted) throw abortError();
    // Only plain voice names reach the command line: flite's -voice also takes file paths
    // and URLs, which a per-call voice string must never be able to make it fetch.
    if (!isKnownVoice(job.voice)) throw fliteError('bad_request', `unknown flite voice "${job.voice}"`, false);
    await this.acquire(signal);
    try {
      return await this.spawnOnce(job, signal);
    } finally {
      this.release();
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.running < this.maxProcesses) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        signal,
        start: () => {
          signal.removeEventListener('abort', entry.onAbort);
          this.running++;
          resolve();
        },
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(this.closed ? fliteError('unavailable', 'the provider is closed', false) : abortError());
        },
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.start();
  }

  private async spawnOnce(job: SynthJob, signal: AbortSignal): Promise<Wave> {
    this.dir ??= mkdtemp(join(tmpdir(), 'switchboard-flite-'));
    const file = join(await this.dir, `${process.pid}-${++this.seq}.wav`);
    const args = ['-voice', job.voice];
    if (job.durationStretch !== undefined) args.push('--setf', `duration_stretch=${job.durationStretch}`);
    args.push('-o', file, '-t', job.text);
    try {
      if (signal.aborted) throw abortError();
      const child = spawn(this.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.children.add(child);
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => {
        if (stderr.length < 2000) stderr += d;
      });
      const exit = new Promise<{ code: number | null; sig: NodeJS.Signals | null; err?: Error }>((resolve) => {
        child.once('error', (err) => resolve({ code: null, sig: null, err }));
        child.once('close', (code, sig) => resolve({ code, sig }));
      });
      const onAbort = (): void => void child.kill('SIGKILL');
      signal.addEventListener('abort', onAbort, { once: true });
      let result: Awaited<typeof exit>;
      try {
        result = await exit;
      } finally {
        signal.removeEventListener('abort', onAbort);
        this.children.delete(child);
      }
      if (signal.aborted) throw abortError();
      if (result.err) {
        const missing = (result.err as { code?: unknown }).code === 'ENOENT';
        throw fliteError('unavailable', missing ? `the flite binary "${this.binary}" was not found` : `could not run flite: ${result.err.message}`, !missing, result.err);
      }
      if (result.code !== 0) {
        const why = result.sig ? `was killed by ${result.sig}` : `exited with code ${result.code}`;
        throw fliteError('internal', `flite ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`, true);
      }
      let pcm;
      try {
        pcm = parseWav(await readFile(file));
      } catch (err) {
        throw fliteError('bad_response', `flite wrote an unreadable WAV: ${(err as Error).message}`, true, err);
      }
      if (!isSampleRate(pcm.sampleRate)) throw fliteError('bad_response', `flite produced an unsupported rate of ${pcm.sampleRate} Hz`, false);
      return { samples: pcm.samples, sampleRate: pcm.sampleRate };
    } finally {
      await rm(file, { force: true });
    }
  }
}

async function killAndReap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.kill('SIGKILL');
  await closed;
}
