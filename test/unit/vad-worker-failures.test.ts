/**
 * WorkerVadSource when things go wrong: a worker that throws, exits or hangs (a wrapper
 * entry around the real worker injects each on a marker sample value), restarts with
 * backoff, giving up, a model that fails to load, and a process that can exit afterwards.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallVad } from '../../src/audio/vad/call-vad.js';
import { SileroVadModel } from '../../src/audio/vad/silero-model.js';
import { VadWorkerError, WorkerVadSource, type WorkerVadSourceOptions } from '../../src/audio/vad/worker-vad-source.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';

const run = promisify(execFile);
const repoRoot = new URL('../../', import.meta.url);
const workerUrl = new URL('../../src/audio/vad/vad-worker.ts', import.meta.url);
const protocolUrl = new URL('../../src/audio/vad/vad-worker-protocol.ts', import.meta.url);

/** Marker first samples: the wrapper throws, exits, or hangs on an INFER whose window starts with one. */
const CRASH = -1; // exactly representable as PCM16 (-32768 / 32768), so CallVad can carry it
const EXIT = 5;
const HANG = 9;

let dir: string;
let faultyEntry: URL;
let model: SileroVadModel;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vad-worker-test-'));
  const wrapper = join(dir, 'faulty-vad-worker.mts');
  await writeFile(
    wrapper,
    `import { parentPort } from 'node:worker_threads';
import { Op, OP_SIZE } from ${JSON.stringify(protocolUrl.href)};
await import(${JSON.stringify(workerUrl.href)});
parentPort!.on('message', (m: { type: string; ops: Float64Array; audio: Float32Array }) => {
  if (m.type !== 'ops') return;
  for (let i = 0; i + OP_SIZE <= m.ops.length; i += OP_SIZE) {
    if (m.ops[i] !== Op.Infer) continue;
    const first = m.audio[m.ops[i + 3] as number];
    if (first === ${CRASH}) throw new Error('injected crash');
    if (first === ${EXIT}) process.exit(3);
    if (first === ${HANG}) for (const end = Date.now() + 120_000; Date.now() < end; );
  }
});
`,
  );
  faultyEntry = pathToFileURL(wrapper);
  model = await SileroVadModel.load();
});

afterAll(async () => {
  await model?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function marked(value: number): Float32Array {
  const w = new Float32Array(256);
  w[0] = value;
  return w;
}

function tone(t: number): Float32Array {
  return Float32Array.from({ length: 256 }, (_, k) => Math.sin((k + t * 256) * 0.07) * 0.3);
}

function capture(): { logger: Logger; messages: () => string[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: createLogger({ level: 'info', destination }),
    messages: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
  };
}

async function waitFor(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function faulty(opts: WorkerVadSourceOptions = {}): Promise<WorkerVadSource> {
  return WorkerVadSource.start({ entry: faultyEntry, restartBackoffMs: 20, ...opts });
}

describe('WorkerVadSource failures', () => {
  it('a worker crash rejects the windows in flight, rejects while down, then restarts and recovers', async () => {
    const log = capture();
    const source = await faulty({ logger: log.logger, maxRestarts: 2, healthyAfterMs: 600_000 });
    try {
      const a = source.createStream(8000);
      const b = source.createStream(8000);
      await Promise.all([a.infer(tone(0)), b.infer(tone(1))]);

      // a's window kills the worker; b's window, in the same message, goes down with it.
      const [ra, rb] = await Promise.allSettled([a.infer(marked(CRASH)), b.infer(tone(2))]);
      expect(ra.status).toBe('rejected');
      expect(String((ra as PromiseRejectedResult).reason)).toMatch(/VAD worker crashed: injected crash/);
      expect(rb.status).toBe('rejected');
      expect((rb as PromiseRejectedResult).reason).toBeInstanceOf(VadWorkerError);
      expect(source.stats.crashes).toBe(1);
      expect(source.inFlight).toBe(0);

      // While it restarts, windows fail fast instead of piling up.
      if (!source.available) await expect(a.infer(tone(3))).rejects.toThrow(/restarting/);
      await waitFor(() => source.available);
      expect(source.stats.restarts).toBe(1);

      // Both streams work again, from fresh recurrent state, and a stream opened meanwhile too.
      const c = source.createStream(8000);
      const fresh = model.createStream(8000);
      const expected = [];
      for (let t = 0; t < 5; t++) expected.push(await fresh.infer(tone(10 + t)));
      for (const s of [a, b, c]) {
        for (let t = 0; t < 5; t++) expect(Math.abs((await s.infer(tone(10 + t))) - (expected[t] as number))).toBeLessThan(1e-4);
      }

      // An exit (not a throw) is a crash too; the second restart is still allowed.
      await expect(a.infer(marked(EXIT))).rejects.toThrow(/crashed: exited with code 3/);
      await waitFor(() => source.available);
      await expect(b.infer(tone(0))).resolves.toBeGreaterThanOrEqual(0);
      expect(source.stats).toMatchObject({ crashes: 2, restarts: 2 });
      expect(log.messages()).toEqual([
        'VAD worker crashed; restarting it',
        'VAD worker restarted (streams continue with fresh recurrent state)',
        'VAD worker crashed; restarting it',
        'VAD worker restarted (streams continue with fresh recurrent state)',
      ]);
    } finally {
      await source.close();
    }
  });

  it('gives up after maxRestarts consecutive crashes', async () => {
    const log = capture();
    const source = await faulty({ logger: log.logger, maxRestarts: 1, healthyAfterMs: 600_000 });
    try {
      const s = source.createStream(8000);
      await expect(s.infer(marked(CRASH))).rejects.toThrow(/crashed/);
      await waitFor(() => source.available);
      await expect(s.infer(marked(CRASH))).rejects.toThrow(/crashed/);
      await new Promise((r) => setTimeout(r, 200)); // longer than any backoff here
      expect(source.available).toBe(false);
      await expect(s.infer(tone(0))).rejects.toThrow(/too many crashes/);
      await expect(source.createStream(8000).infer(tone(0))).rejects.toThrow(/too many crashes/);
      expect(log.messages().at(-1)).toMatch(/giving up after 1 restarts/);
    } finally {
      await source.close();
    }
  });

  it('terminates and restarts a worker that stops answering', async () => {
    const source = await faulty({ logger: silentLogger, stallTimeoutMs: 250 });
    try {
      const s = source.createStream(8000);
      const t0 = performance.now();
      await expect(s.infer(marked(HANG))).rejects.toThrow(/crashed: no answer for 250 ms/);
      const took = performance.now() - t0;
      expect(took).toBeGreaterThanOrEqual(240);
      expect(took).toBeLessThan(5_000);
      await waitFor(() => source.available);
      await expect(s.infer(tone(0))).resolves.toBeGreaterThanOrEqual(0);
    } finally {
      await source.close();
    }
  });

  it('CallVad counts the failed windows as inference errors and carries on after the restart', async () => {
    const source = await faulty({ logger: silentLogger });
    try {
      const vad = new CallVad(source, { sampleRate: 8000, maxQueuedWindows: 1_000 });
      const frame = (value: number) => ({ samples: Int16Array.from({ length: 256 }, () => value), sampleRate: 8000 as const });
      vad.push(frame(100), 0);
      await vad.whenIdle();
      vad.push(frame(CRASH * 32768), 32); // CallVad divides by 32768: the window starts with CRASH
      await vad.whenIdle();
      expect(vad.stats.inferenceErrors).toBe(1);
      await waitFor(() => source.available);
      for (let i = 0; i < 5; i++) vad.push(frame(100), 64 + i * 32);
      await vad.whenIdle();
      expect(vad.stats).toMatchObject({ windowsProcessed: 6, inferenceErrors: 1 });
      vad.close();
    } finally {
      await source.close();
    }
  });

  it('start() rejects when the worker cannot load the model', async () => {
    await expect(WorkerVadSource.start({ logger: silentLogger, modelPath: join(dir, 'missing.onnx') })).rejects.toThrow(
      /VAD worker failed to start: .*missing\.onnx/,
    );
  });

  it('close() rejects windows in flight and is idempotent; later windows are rejected', async () => {
    const source = await WorkerVadSource.start({ logger: silentLogger, maxWaitMs: 1_000 });
    const s = source.createStream(8000);
    const pending = s.infer(tone(0));
    const closing = source.close();
    await expect(pending).rejects.toThrow(/closed/);
    await Promise.all([closing, source.close()]);
    await expect(s.infer(tone(0))).rejects.toThrow(/closed/);
    await expect(source.workerStats()).rejects.toThrow(/closed/);
  });

  it('leaves nothing running: the process exits after close(), and even without it once idle', async () => {
    const script = (close: boolean): string => `
      import { WorkerVadSource } from ${JSON.stringify(new URL('../../src/audio/vad/worker-vad-source.ts', import.meta.url).href)};
      import { silentLogger } from ${JSON.stringify(new URL('../../src/log.ts', import.meta.url).href)};
      await WorkerVadSource.start({ logger: silentLogger, modelPath: '/nonexistent.onnx' }).catch(() => console.log('bad model rejected'));
      const source = await WorkerVadSource.start({ logger: silentLogger });
      const p = await source.createStream(8000).infer(new Float32Array(256));
      console.log('inferred', p >= 0);
      ${close ? "await source.close(); console.log('closed');" : ''}
    `;
    for (const close of [true, false]) {
      const t0 = performance.now();
      const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(close)], {
        cwd: repoRoot,
        timeout: 25_000,
        killSignal: 'SIGKILL',
      });
      expect(stdout.trim().split('\n')).toEqual(['bad model rejected', 'inferred true', ...(close ? ['closed'] : [])]);
      expect(performance.now() - t0).toBeLessThan(25_000);
    }
  });
});
