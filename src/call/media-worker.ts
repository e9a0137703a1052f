/**
 * The media thread: every call's RTP endpoint (socket, jitter buffer, codec, pacer) and the
 * shared 20 ms media clock run here, on their own V8 heap and event loop, so that neither
 * the main thread's garbage collections (its heap holds the conversations, plugins, HTTP and
 * ARI) nor its bursts of work (a tool call's JSON, a TTS chunk's resampling) delay outbound
 * packets. Started by MediaWorkerClient (media-worker-client.ts); protocol in
 * media-worker-protocol.ts.
 *
 * Per call it drives an RtpSessionMedia, exactly what the main thread runs when
 * SWITCHBOARD_MEDIA_THREAD=main, and relays: inbound frames (batched per event-loop turn),
 * talkspurt starts, finished utterances and clear results go up; commands come down in the
 * order the main thread issued them.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { RtpEndpoint } from '../rtp/endpoint.js';
import { sharedMediaClock } from '../rtp/media-clock.js';
import { raiseThisThread } from '../threads/thread-priority.js';
import { currentOsThreadId } from '../threads/worker-bootstrap.js';
import {
  FRAME_FIELDS,
  grown,
  isMediaWorkerData,
  monotonicOrigin,
  type ClosedStatsMessage,
  type FromMediaWorker,
  type MediaCommand,
  type MediaWorkerInit,
  type ToMediaWorker,
} from './media-worker-protocol.js';
import { RtpSessionMedia, type ClosedMediaStats } from './rtp-session-media.js';
import type { PlayoutWriter } from './session-ports.js';

interface Entry {
  readonly media: RtpSessionMedia;
  /** The playout item being written (at most one is open at a time). */
  writer: PlayoutWriter | undefined;
  closed: ClosedMediaStats | undefined;
}

/**
 * How long inbound frames of all calls are gathered before they travel to the main thread
 * as one message. Per event-loop turn is too often: under SCHED_RR this thread wakes for
 * almost every datagram, and at 200 calls ~10 000 one-frame messages a second cost the main
 * thread more than the frames' processing (VAD windows then fell behind). 5 ms makes it
 * ~200 messages a second for at most 5 ms more before VAD sees a frame.
 */
export const FRAME_BATCH_MS = 5;

/** Inbound frames of every call, gathered for FRAME_BATCH_MS after the first one. */
class FrameBatch {
  private meta = new Float64Array(FRAME_FIELDS * 256);
  private pcm = new Int16Array(160 * 256);
  private count = 0;
  private used = 0;
  private scheduled = false;

  constructor(private readonly post: (msg: FromMediaWorker, transfer: ArrayBuffer[]) => void) {}

  push(media: number, arrivalMs: number, samples: Int16Array): void {
    if ((this.count + 1) * FRAME_FIELDS > this.meta.length) this.meta = grown(this.meta, (this.count + 1) * FRAME_FIELDS);
    if (this.used + samples.length > this.pcm.length) this.pcm = grown(this.pcm, this.used + samples.length);
    const m = this.count * FRAME_FIELDS;
    this.meta[m] = media;
    this.meta[m + 1] = arrivalMs;
    this.meta[m + 2] = this.used;
    this.meta[m + 3] = samples.length;
    this.pcm.set(samples, this.used);
    this.used += samples.length;
    this.count++;
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(this.flush, FRAME_BATCH_MS);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.count === 0) return;
    // Exact-size copies travel (transferred); the gathering arrays stay here for reuse.
    const meta = this.meta.slice(0, this.count * FRAME_FIELDS);
    const pcm = this.pcm.slice(0, this.used);
    const count = this.count;
    this.count = 0;
    this.used = 0;
    this.post({ type: 'frames', meta, pcm, count }, [meta.buffer, pcm.buffer]);
  };
}

export function runMediaWorker(port: MessagePort, init: MediaWorkerInit): void {
  const clock = sharedMediaClock;
  const entries = new Map<number, Entry>();
  const post = (msg: FromMediaWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);
  const frames = new FrameBatch(post);

  const reportClock = (): void => {
    const s = clock.stats;
    post({ type: 'clock', report: { lateness: s.lateness.snapshot(), ticks: s.ticks, skippedTicks: s.skippedTicks, listeners: clock.listenerCount } });
  };
  const clockTimer = setInterval(() => {
    if (entries.size > 0) reportClock();
  }, init.clockReportMs);
  clockTimer.unref();

  const open = async (msg: Extract<ToMediaWorker, { type: 'open' }>): Promise<void> => {
    let endpoint: RtpEndpoint;
    try {
      endpoint = await RtpEndpoint.open({
        codec: msg.codec,
        host: msg.host,
        ...(msg.advertisedHost ? { advertisedHost: msg.advertisedHost } : {}),
        port: msg.port,
        clock,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      post({ type: 'open-failed', req: msg.req, message: e.message ?? String(err), ...(typeof e.code === 'string' ? { code: e.code } : {}) });
      return;
    }
    const id = msg.media;
    const entry: Entry = {
      media: new RtpSessionMedia(
        endpoint,
        clock,
        (err) => post({ type: 'media-error', media: id, message: err instanceof Error ? err.message : String(err) }),
        (stats) => (entry.closed = stats),
      ),
      writer: undefined,
      closed: undefined,
    };
    entry.media.onFrame((frame, at) => frames.push(id, at, frame.samples));
    entry.media.onTalkspurtStart((at) => post({ type: 'talkspurt', media: id, at }));
    entries.set(id, entry);
    reportClock(); // before the answer, so the main side's listener count is current when open() resolves
    post({ type: 'opened', req: msg.req, externalHost: entry.media.externalHost });
  };

  const run = (c: MediaCommand, pcm: Int16Array): void => {
    const entry = entries.get(c.media);
    if (!entry) {
      // The call's media is already closed (a late command): a clear still gets its answer.
      if (c.op === 'clear') post({ type: 'cleared', media: c.media, req: c.req, droppedMs: 0, lastPacketAt: undefined });
      return;
    }
    const media = entry.media;
    switch (c.op) {
      case 'remote':
        try {
          media.setRemote(c.host, c.port);
        } catch (err) {
          post({ type: 'media-error', media: c.media, message: err instanceof Error ? err.message : String(err) });
        }
        break;
      case 'begin': {
        const writer = media.openPlayout();
        entry.writer = writer;
        const utterance = c.utterance;
        void writer.done.then((r) => post({ type: 'utterance', media: c.media, utterance, ...r }));
        break;
      }
      case 'write':
        entry.writer?.write({ samples: pcm.subarray(c.offset, c.offset + c.length), sampleRate: media.sampleRate });
        break;
      case 'end':
        entry.writer?.end();
        entry.writer = undefined;
        break;
      case 'clear': {
        const r = media.clearNow();
        post({ type: 'cleared', media: c.media, req: c.req, droppedMs: r.droppedMs, lastPacketAt: r.lastPacketAt });
        break;
      }
    }
  };

  const close = async (req: number, id: number): Promise<void> => {
    const entry = entries.get(id);
    let stats: ClosedStatsMessage | undefined;
    if (entry) {
      await entry.media.close();
      entries.delete(id);
      const s = entry.closed;
      if (s) stats = { endpoint: s.endpoint, sendDeviation: s.sendDeviation.snapshot(), intervalJitter: s.intervalJitter.snapshot(), syntheticSilenceFrames: s.syntheticSilenceFrames };
    }
    // Utterances cut by the close have their answers queued (promise callbacks): let them go first.
    await new Promise<void>((r) => setImmediate(r));
    reportClock();
    post({ type: 'closed', req, media: id, stats });
  };

  port.on('message', (msg: ToMediaWorker) => {
    switch (msg.type) {
      case 'open':
        void open(msg);
        break;
      case 'batch':
        for (const c of msg.commands) run(c, msg.pcm);
        break;
      case 'close':
        void close(msg.req, msg.media);
        break;
      case 'ping':
        post({ type: 'pong', req: msg.req });
        break;
      case 'shutdown':
        clearInterval(clockTimer);
        void Promise.all([...entries.values()].map((e) => e.media.close())).then(() => port.close());
        break;
    }
  });
  const osThreadId = currentOsThreadId();
  const priority = raiseThisThread(init.priority, osThreadId);
  post({ type: 'ready', monotonicOrigin: monotonicOrigin(), ...(osThreadId !== undefined ? { osThreadId } : {}), priority });
}

if (!isMainThread && parentPort && isMediaWorkerData(workerData)) {
  runMediaWorker(parentPort, workerData);
}
