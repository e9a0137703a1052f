/**
 * The main thread's side of the media worker (media-worker.ts): starts it, hands out one
 * RemoteSessionMedia per call (the SessionMedia port, like RtpSessionMedia in-thread), and
 * carries their traffic.
 *
 * Commands of one main-thread turn travel as one message (gathered until the microtask queue
 * drains), in issue order. `clear()` sends at once, with whatever was queued before it, so
 * the worker stops output as soon as it reads the message (sub-millisecond when idle; its
 * event loop does nothing heavier than one 20 ms tick of packets).
 *
 * Times: the worker stamps arrivals and sends with its own performance.now(); they are moved
 * onto this thread's timeline through the monotonic clock both threads share (see
 * monotonicOrigin), so turn latency and barge-in reaction subtract correctly from the main
 * thread's VAD times.
 *
 * Failure: if the worker dies — or stops answering: a ping every WATCHDOG_PERIOD_MS while
 * calls are up, and every request, must be answered within `replyTimeoutMs`, else the worker
 * is terminated — every open call's media is lost (its sockets went with it): outstanding
 * requests settle (opens reject, clears and closes resolve), each live media's `onLost`
 * handler runs (the controller hands the caller to the overflow queue) and the next call
 * starts a new worker.
 */
import type { Worker } from 'node:worker_threads';
import type { AudioFrame, SampleRate } from '../audio/frame.js';
import { getCodec } from '../audio/g711.js';
import type { ExternalMediaFormat } from '../ari/types.js';
import type { Logger } from '../log.js';
import { LatencyHistogram } from '../rtp/histogram.js';
import type { PortRange } from '../rtp/udp-bind.js';
import type { PriorityOutcome, ThreadPriority } from '../threads/thread-priority.js';
import { siblingEntry, startWorker, waitForReady } from '../threads/worker-bootstrap.js';
import type { OpenedMedia } from './call-controller.js';
import { FRAME_FIELDS, grown, monotonicOrigin, type ClosedStatsMessage, type FromMediaWorker, type MediaCommand, type MediaWorkerInit, type ToMediaWorker } from './media-worker-protocol.js';
import type { ClosedMediaStats } from './rtp-session-media.js';
import type { ClearOutcome, PlayoutWriter } from './session-ports.js';

export class MediaWorkerError extends Error {
  override readonly name = 'MediaWorkerError';
}

export interface MediaWorkerClientOptions {
  log: Logger;
  /** Worker entry module (default ./media-worker.ts or .js beside this file). */
  entry?: URL;
  startTimeoutMs?: number;
  clockReportMs?: number;
  /** A worker that leaves a request (or a watchdog ping) unanswered this long is hung. Default 5 s. */
  replyTimeoutMs?: number;
  /** Scheduling priority of the media thread (default 'normal'; Switchboard asks for 'realtime'). */
  priority?: ThreadPriority;
}

export interface OpenRemoteMedia {
  format: ExternalMediaFormat;
  host: string;
  advertisedHost?: string;
  port: number | PortRange;
  log: Logger;
  onClose: (stats: ClosedMediaStats) => void;
}

interface Running {
  worker: Worker;
  /** Worker performance.now() + offset = this thread's performance.now(). */
  offset: number;
  osThreadId: number | undefined;
}

type Pending = { resolve(v: FromMediaWorker): void; reject(err: Error): void; timer: NodeJS.Timeout };

const WATCHDOG_PERIOD_MS = 2_000;

export class MediaWorkerClient {
  /** The worker's media clock: lateness of its ticks (refreshed every clockReportMs). */
  readonly clockLateness = new LatencyHistogram();
  clockTicks = 0;
  clockSkippedTicks = 0;
  /** Listeners on the worker's media clock, as last reported (after every close). */
  clockListeners = 0;
  /** Times the worker died with calls on it. */
  crashes = 0;
  /** What the media thread's priority request got (once started). */
  priority: PriorityOutcome | undefined;

  private running: Promise<Running> | undefined;
  private current: Running | undefined;
  private readonly medias = new Map<number, RemoteSessionMedia>();
  private readonly pending = new Map<number, Pending>();
  private nextReq = 0;
  private nextMedia = 0;
  private commands: MediaCommand[] = [];
  private pcm = new Int16Array(4096);
  private pcmUsed = 0;
  private flushQueued = false;
  private stopped = false;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly opts: MediaWorkerClientOptions) {}

  /** Start the worker now (otherwise the first call starts it). */
  async start(): Promise<void> {
    await this.ensure();
  }

  /** The worker's Linux thread id, for renice / chrt (undefined until started). */
  get osThreadId(): number | undefined {
    return this.current?.osThreadId;
  }

  get openMedia(): number {
    return this.medias.size;
  }

  async open(o: OpenRemoteMedia): Promise<RemoteSessionMedia> {
    if (this.stopped) throw new MediaWorkerError('media worker is stopped');
    const run = await this.ensure();
    const id = ++this.nextMedia;
    const msg: ToMediaWorker = {
      type: 'open',
      req: 0,
      media: id,
      codec: o.format,
      host: o.host,
      ...(o.advertisedHost ? { advertisedHost: o.advertisedHost } : {}),
      port: o.port,
    };
    const reply = await this.request(run, msg);
    if (reply.type === 'open-failed') {
      const err = new MediaWorkerError(`RTP endpoint: ${reply.message}`);
      if (reply.code) Object.assign(err, { code: reply.code });
      throw err;
    }
    if (reply.type !== 'opened') throw new MediaWorkerError(`media worker: unexpected reply ${reply.type} to open`);
    const media = new RemoteSessionMedia(this, id, getCodec(o.format).sampleRate, reply.externalHost, o.log, o.onClose);
    if (this.current !== run) {
      // The worker died between its answer and now: the endpoint is gone already.
      media.workerLost(new MediaWorkerError('media worker died while the call was being set up'));
    } else {
      this.medias.set(id, media);
    }
    return media;
  }

  /** Close every call's media and stop the worker. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    // A worker still starting is stopped too, once it is up.
    const run = this.current ?? (await this.running?.catch(() => undefined));
    if (!run || this.current !== run) return;
    const exited = new Promise<void>((r) => run.worker.once('exit', () => r()));
    await Promise.allSettled([...this.medias.values()].map((m) => m.close()));
    if (this.current === run) {
      this.flush();
      run.worker.postMessage({ type: 'shutdown' } satisfies ToMediaWorker);
    }
    const timer = setTimeout(() => void run.worker.terminate(), 2_000);
    await exited;
    clearTimeout(timer);
  }

  // --- used by RemoteSessionMedia ---

  toWorkerTime(mainMs: number): number {
    return mainMs - (this.current?.offset ?? 0);
  }

  queue(c: MediaCommand): void {
    this.commands.push(c);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  queueWrite(media: number, samples: Int16Array): void {
    if (this.pcmUsed + samples.length > this.pcm.length) this.pcm = grown(this.pcm, this.pcmUsed + samples.length);
    this.pcm.set(samples, this.pcmUsed);
    this.queue({ op: 'write', media, offset: this.pcmUsed, length: samples.length });
    this.pcmUsed += samples.length;
  }

  readonly flush = (): void => {
    this.flushQueued = false;
    if (this.commands.length === 0) return;
    const commands = this.commands;
    const pcm = this.pcm.slice(0, this.pcmUsed);
    this.commands = [];
    this.pcmUsed = 0;
    const worker = this.current?.worker;
    if (!worker) return; // lost: RemoteSessionMedia has already settled everything
    worker.postMessage({ type: 'batch', commands, pcm } satisfies ToMediaWorker, [pcm.buffer]);
  };

  /**
   * A request number whose answer resolves the promise (see `settle`). A worker that does not
   * answer within replyTimeoutMs is hung: it is terminated, which settles every request.
   */
  awaitReply(): { req: number; reply: Promise<FromMediaWorker> } {
    const req = ++this.nextReq;
    const run = this.current;
    const timeoutMs = this.opts.replyTimeoutMs ?? 5_000;
    const reply = new Promise<FromMediaWorker>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (run) this.hung(run, `no answer to a request within ${timeoutMs} ms`);
        else this.settle(req, new MediaWorkerError('media worker is not running'));
      }, timeoutMs);
      timer.unref();
      this.pending.set(req, { resolve, reject, timer });
    });
    return { req, reply };
  }

  post(msg: ToMediaWorker): void {
    this.current?.worker.postMessage(msg);
  }

  forget(media: number): void {
    this.medias.delete(media);
  }

  get alive(): boolean {
    return this.current !== undefined;
  }

  // --- internals ---

  private request(run: Running, msg: ToMediaWorker & { req: number }): Promise<FromMediaWorker> {
    const { req, reply } = this.awaitReply();
    this.flush(); // commands issued before this request go first
    run.worker.postMessage({ ...msg, req });
    return reply;
  }

  private ensure(): Promise<Running> {
    this.running ??= this.spawn().catch((err: unknown) => {
      this.running = undefined;
      throw err;
    });
    return this.running;
  }

  private async spawn(): Promise<Running> {
    const init: MediaWorkerInit = { switchboardMediaWorker: 1, clockReportMs: this.opts.clockReportMs ?? 5_000, priority: this.opts.priority ?? 'normal' };
    const worker = startWorker(this.opts.entry ?? siblingEntry(import.meta.url, 'media-worker'), { workerData: init });
    worker.unref(); // never the reason the process stays up
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    type Ready = Extract<FromMediaWorker, { type: 'ready' }>;
    const ready = await waitForReady(worker, (m: FromMediaWorker): m is Ready => m.type === 'ready', timeoutMs).catch(async (err: unknown) => {
      await worker.terminate();
      throw new MediaWorkerError(`media worker failed to start: ${(err as Error).message}`, { cause: err });
    });
    const run: Running = { worker, offset: ready.monotonicOrigin - monotonicOrigin(), osThreadId: ready.osThreadId };
    this.priority = ready.priority;
    const p = ready.priority;
    if (p.applied !== p.requested) {
      this.opts.log.warn(
        { requested: p.requested, applied: p.applied, refused: p.refused },
        'media thread: scheduling priority not raised as asked (grant CAP_SYS_NICE); outbound pacing may suffer on a busy machine',
      );
    } else if (p.applied !== 'normal') {
      this.opts.log.info({ priority: p.applied, tid: ready.osThreadId }, 'media thread priority set');
    }
    worker.on('message', (m: FromMediaWorker) => this.onMessage(run, m));
    worker.on('error', (err) => this.lost(run, err));
    worker.on('exit', (code) => this.lost(run, new MediaWorkerError(`media worker exited with code ${code}`)));
    this.current = run;
    this.armWatchdog();
    return run;
  }

  private onMessage(run: Running, m: FromMediaWorker): void {
    switch (m.type) {
      case 'frames': {
        const { meta, pcm } = m;
        for (let i = 0; i < m.count; i++) {
          const f = i * FRAME_FIELDS;
          const media = this.medias.get(meta[f]!);
          if (!media) continue;
          const offset = meta[f + 2]!;
          media.deliverFrame(pcm.subarray(offset, offset + meta[f + 3]!), meta[f + 1]! + run.offset);
        }
        break;
      }
      case 'talkspurt':
        this.medias.get(m.media)?.talkspurtStarted(m.at + run.offset);
        break;
      case 'utterance':
        this.medias.get(m.media)?.utteranceDone(m.utterance, { completed: m.completed, playedMs: m.playedMs, droppedMs: m.droppedMs });
        break;
      case 'media-error':
        this.medias.get(m.media)?.endpointError(m.message);
        break;
      case 'clock':
        this.clockLateness.restore(m.report.lateness);
        this.clockTicks = m.report.ticks;
        this.clockSkippedTicks = m.report.skippedTicks;
        this.clockListeners = m.report.listeners;
        break;
      case 'cleared':
        this.settle(m.req, { ...m, lastPacketAt: m.lastPacketAt === undefined ? undefined : m.lastPacketAt + run.offset });
        break;
      case 'opened':
      case 'open-failed':
      case 'closed':
      case 'pong':
        this.settle(m.req, m);
        break;
      case 'ready':
        break;
    }
  }

  /** Answer request `req` with the worker's reply, or fail it with an error. */
  private settle(req: number, outcome: FromMediaWorker | Error): void {
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    clearTimeout(p.timer);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
  }

  /** The worker's event loop is stuck (it still holds its sockets): end it as a crash. */
  private hung(run: Running, why: string): void {
    if (this.current !== run) return;
    this.lost(run, new MediaWorkerError(`media worker hung: ${why}`));
    void run.worker.terminate();
  }

  /** While calls are up, ping the worker; an unanswered ping (awaitReply's timeout) is a hang. */
  private armWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      const run = this.current;
      if (!run || this.medias.size === 0) return;
      const { req, reply } = this.awaitReply();
      reply.catch(() => undefined); // a hang is handled by hung(); nothing else to do here
      run.worker.postMessage({ type: 'ping', req } satisfies ToMediaWorker);
    }, WATCHDOG_PERIOD_MS);
    this.watchdog.unref();
  }

  private lost(run: Running, err: Error): void {
    if (this.current !== run) return;
    this.current = undefined;
    this.running = undefined;
    this.commands = [];
    this.pcmUsed = 0;
    this.clockListeners = 0; // its clock went with it (the last report would otherwise stand until a new worker reports)
    const calls = this.medias.size;
    if (calls > 0) this.crashes++;
    if (!this.stopped) this.opts.log.error({ err, calls }, 'media worker died: the calls on it have lost their audio');
    for (const req of [...this.pending.keys()]) this.settle(req, err);
    const medias = [...this.medias.values()];
    this.medias.clear();
    for (const m of medias) m.workerLost(err);
  }
}

type PlayResult = { completed: boolean; playedMs: number; droppedMs: number };

/** One call's media on the worker, seen from the main thread. */
export class RemoteSessionMedia implements OpenedMedia {
  private frameHandler: ((frame: AudioFrame, arrivalMs: number) => void) | undefined;
  private talkspurtHandler: ((at: number) => void) | undefined;
  private lostHandler: ((err: Error) => void) | undefined;
  private readonly waiting = new Map<number, (r: PlayResult) => void>();
  /** Utterances not yet finished nor cut: writes to them still count. */
  private readonly live = new Set<number>();
  private nextUtterance = 0;
  private closing: Promise<void> | undefined;
  private isLost = false;
  private lostWith: Error | undefined;
  private lostReported = false;

  constructor(
    private readonly client: MediaWorkerClient,
    readonly id: number,
    readonly sampleRate: SampleRate,
    readonly externalHost: string,
    private readonly log: Logger,
    private readonly onClose: (stats: ClosedMediaStats) => void,
  ) {}

  get busy(): boolean {
    return this.live.size > 0;
  }

  setRemote(host: string, port: number): void {
    this.client.queue({ op: 'remote', media: this.id, host, port });
  }

  onFrame(handler: (frame: AudioFrame, arrivalMs: number) => void): void {
    this.frameHandler = handler;
  }

  onTalkspurtStart(handler: (at: number) => void): void {
    this.talkspurtHandler = handler;
  }

  /**
   * Called if the media worker dies while this call is up (its audio is gone); at once (on a
   * microtask) if it already has, e.g. during the rest of call setup.
   */
  onLost(handler: (err: Error) => void): void {
    this.lostHandler = handler;
    const err = this.lostWith;
    if (err && !this.closing) queueMicrotask(() => this.reportLost(err));
  }

  openPlayout(): PlayoutWriter {
    const id = ++this.nextUtterance;
    const done = new Promise<PlayResult>((resolve) => this.waiting.set(id, resolve));
    let ended = false;
    if (this.closing || this.isLost) {
      this.utteranceDone(id, { completed: false, playedMs: 0, droppedMs: 0 });
      ended = true;
    } else {
      this.live.add(id);
      this.client.queue({ op: 'begin', media: this.id, utterance: id });
    }
    return {
      write: (frame) => {
        if (ended || !this.live.has(id) || frame.samples.length === 0) return;
        if (frame.sampleRate !== this.sampleRate) throw new RangeError(`playout takes ${this.sampleRate} Hz PCM, got ${frame.sampleRate} Hz`);
        this.client.queueWrite(this.id, frame.samples);
      },
      end: () => {
        if (ended) return;
        ended = true;
        if (this.live.has(id)) this.client.queue({ op: 'end', media: this.id });
      },
      done,
    };
  }

  clear(): Promise<ClearOutcome> {
    this.live.clear();
    if (this.closing || this.isLost || !this.client.alive) return Promise.resolve({ droppedMs: 0, lastPacketAt: undefined });
    const { req, reply } = this.client.awaitReply();
    this.client.queue({ op: 'clear', media: this.id, req });
    this.client.flush();
    return reply.then(
      (m) => (m.type === 'cleared' ? { droppedMs: m.droppedMs, lastPacketAt: m.lastPacketAt } : { droppedMs: 0, lastPacketAt: undefined }),
      () => ({ droppedMs: 0, lastPacketAt: undefined }),
    );
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.live.clear();
    if (this.isLost || !this.client.alive) {
      this.settleAll();
      return;
    }
    const { req, reply } = this.client.awaitReply();
    this.client.flush();
    this.client.post({ type: 'close', req, media: this.id });
    let stats: ClosedStatsMessage | undefined;
    try {
      const m = await reply;
      if (m.type === 'closed') stats = m.stats;
    } catch {
      // the worker died meanwhile: workerLost() has settled everything
    }
    this.client.forget(this.id);
    this.settleAll();
    if (stats) {
      this.onClose({
        endpoint: stats.endpoint,
        sendDeviation: LatencyHistogram.fromSnapshot(stats.sendDeviation),
        intervalJitter: LatencyHistogram.fromSnapshot(stats.intervalJitter),
        syntheticSilenceFrames: stats.syntheticSilenceFrames,
      });
    }
  }

  // --- from the client ---

  deliverFrame(samples: Int16Array, arrivalMs: number): void {
    if (this.closing) return;
    try {
      this.frameHandler?.({ samples, sampleRate: this.sampleRate }, arrivalMs);
    } catch (err) {
      this.log.error({ err }, 'inbound frame handler threw');
    }
  }

  talkspurtStarted(at: number): void {
    try {
      this.talkspurtHandler?.(at);
    } catch (err) {
      this.log.error({ err }, 'talkspurt handler threw');
    }
  }

  utteranceDone(id: number, r: PlayResult): void {
    this.live.delete(id);
    const resolve = this.waiting.get(id);
    if (!resolve) return;
    this.waiting.delete(id);
    resolve(r);
  }

  endpointError(message: string): void {
    this.log.warn({ err: { message } }, 'RTP endpoint error');
  }

  workerLost(err: Error): void {
    if (this.isLost) return;
    this.isLost = true;
    this.lostWith = err;
    this.live.clear();
    this.settleAll();
    // A call already being torn down has nothing left to rescue.
    if (!this.closing) this.reportLost(err);
  }

  private reportLost(err: Error): void {
    if (this.lostReported || !this.lostHandler) return;
    this.lostReported = true;
    try {
      this.lostHandler(err);
    } catch (e) {
      this.log.error({ err: e }, 'media-lost handler threw');
    }
  }

  private settleAll(): void {
    for (const id of [...this.waiting.keys()]) this.utteranceDone(id, { completed: false, playedMs: 0, droppedMs: 0 });
  }
}
