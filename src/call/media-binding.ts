/**
 * Binds the RTP endpoint and the Silero VAD pipeline to the session's ports. One VAD model
 * (and batcher) is shared by every call; each call gets its own endpoint and VAD stream.
 * The endpoints run in this thread (RtpSessionMedia) or on the media worker
 * (RemoteSessionMedia, see media-worker-client.ts); VAD always runs from this thread.
 */
import { CallVad } from '../audio/vad/call-vad.js';
import type { VadSampleRate } from '../audio/vad/silero-layout.js';
import type { VadStreamSource } from '../audio/vad/silero-stream.js';
import type { TurnDetectorConfig } from '../audio/vad/turn-detector.js';
import type { ExternalMediaFormat } from '../ari/types.js';
import { silentLogger, type Logger } from '../log.js';
import { RtpEndpoint } from '../rtp/endpoint.js';
import type { ThreadPriority } from '../threads/thread-priority.js';
import { LatencyHistogram } from '../rtp/histogram.js';
import { sharedMediaClock, type MediaClock } from '../rtp/media-clock.js';
import type { PortRange } from '../rtp/udp-bind.js';
import type { MediaFactory, OpenedMedia } from './call-controller.js';
import type { EngineMetrics } from './engine-metrics.js';
import { MediaWorkerClient } from './media-worker-client.js';
import { RtpSessionMedia, type ClosedMediaStats } from './rtp-session-media.js';
import type { SessionVad } from './session-ports.js';

export interface RtpMediaFactoryOptions {
  vadSource: VadStreamSource;
  metrics: EngineMetrics;
  /** Address the RTP endpoints bind to and advertise to Asterisk. */
  rtpHost?: string;
  advertisedHost?: string;
  rtpPorts?: PortRange;
  clock?: MediaClock;
  /** VAD / turn-taking settings per agent name (falls back to `defaultTurn`). */
  turnFor?: (agentName: string) => Partial<TurnDetectorConfig> | undefined;
  /**
   * Silero window: 32 ms (default) or 64 / 96 ms. Inference costs the same per window, so 64 ms
   * halves VAD CPU, at the price of coarser speech decisions (barge-in waits a window longer).
   */
  vadWindowMs?: 32 | 64 | 96;
  /** VAD windows quieter than this (dBFS RMS) skip the model as unvoiced; null: never (see CallVad). Default -60. */
  vadSilenceFloorDbfs?: number | null;
  defaultTurn?: Partial<TurnDetectorConfig>;
  /**
   * 'worker': the RTP endpoints and the media clock run on a media worker thread (what
   * Switchboard runs; see media-worker.ts). 'main' (default here): in the calling thread.
   */
  mediaThread?: MediaThread;
  /** Where the media worker's own failures are logged. */
  log?: Logger;
  /** Scheduling priority of the media worker thread (default 'normal'). */
  mediaThreadPriority?: ThreadPriority;
  /** Media worker entry module (default: media-worker.ts/.js); tests start one they can crash on purpose. */
  mediaWorkerEntry?: URL;
}

export type MediaThread = 'main' | 'worker';

export interface RtpMediaFactory extends MediaFactory {
  readonly openEndpoints: number;
  /** Where the RTP endpoints and the media clock run. */
  readonly mediaThread: MediaThread;
  /** Lateness of the media clock's ticks (the worker's, reported every few seconds). */
  readonly clockLateness: LatencyHistogram;
  /** Listeners on the media clock (0 when no call is up: nothing leaked). */
  readonly clockListeners: number;
  /** The media worker's Linux thread id once started (for renice / chrt). */
  readonly mediaThreadId: number | undefined;
  /** The media worker's client ('worker' mode; undefined in-thread): its crash count, and a way in for tests. */
  readonly mediaWorker: MediaWorkerClient | undefined;
  /** Start the media worker now rather than with the first call (no-op in-thread). */
  start(): Promise<void>;
  /** Close every call's media and stop the media worker. */
  close(): Promise<void>;
  /** Outbound pacing of every ended call, merged: |send - schedule| and interval jitter. */
  readonly pacing: { sendDeviation: LatencyHistogram; intervalJitter: LatencyHistogram };
}

export function createRtpMediaFactory(opts: RtpMediaFactoryOptions): RtpMediaFactory {
  let localOpen = 0;
  const clock = opts.clock ?? sharedMediaClock;
  const pacing = { sendDeviation: new LatencyHistogram(), intervalJitter: new LatencyHistogram() };
  const thread = opts.mediaThread ?? 'main';
  const worker =
    thread === 'worker'
      ? new MediaWorkerClient({
          log: opts.log ?? silentLogger,
          ...(opts.mediaThreadPriority ? { priority: opts.mediaThreadPriority } : {}),
          ...(opts.mediaWorkerEntry ? { entry: opts.mediaWorkerEntry } : {}),
        })
      : undefined;
  const recordStats = (s: ClosedMediaStats): void => {
    pacing.sendDeviation.merge(s.sendDeviation);
    pacing.intervalJitter.merge(s.intervalJitter);
    const stats = s.endpoint;
    opts.metrics.rtpPacketsIn.inc(undefined, stats.packetsIn);
    opts.metrics.rtpPacketsOut.inc(undefined, stats.packetsOut);
    if (s.syntheticSilenceFrames > 0) opts.metrics.syntheticSilence.inc(undefined, s.syntheticSilenceFrames);
    for (const [reason, n] of Object.entries(stats.dropped)) if (n > 0) opts.metrics.rtpDropped.inc({ reason }, n);
    if (stats.jitter.concealed > 0) opts.metrics.rtpConcealed.inc(undefined, stats.jitter.concealed);
  };
  const host = opts.rtpHost ?? '127.0.0.1';
  const port = opts.rtpPorts ?? 0;
  return {
    get openEndpoints() {
      return worker ? worker.openMedia : localOpen;
    },
    pacing,
    mediaThread: thread,
    clockLateness: worker ? worker.clockLateness : clock.stats.lateness,
    get clockListeners() {
      return worker ? worker.clockListeners : clock.listenerCount;
    },
    get mediaThreadId() {
      return worker?.osThreadId;
    },
    mediaWorker: worker,
    start: async () => {
      await worker?.start();
    },
    close: async () => {
      await worker?.stop();
    },
    async openMedia(format: ExternalMediaFormat, log: Logger): Promise<OpenedMedia> {
      if (worker) {
        return worker.open({ format, host, ...(opts.advertisedHost ? { advertisedHost: opts.advertisedHost } : {}), port, log, onClose: recordStats });
      }
      const endpoint = await RtpEndpoint.open({ codec: format, host, ...(opts.advertisedHost ? { advertisedHost: opts.advertisedHost } : {}), port, clock });
      localOpen++;
      return new RtpSessionMedia(
        endpoint,
        clock,
        (err) => log.warn({ err }, 'RTP endpoint error'),
        (stats) => {
          localOpen--;
          recordStats(stats);
        },
      );
    },
    createVad(media: OpenedMedia, agentName: string, turn?: Partial<TurnDetectorConfig>): SessionVad {
      const sampleRate = media.sampleRate as VadSampleRate;
      const windowSamples = opts.vadWindowMs ? Math.round((sampleRate * opts.vadWindowMs) / 1000) : undefined;
      const vad = new CallVad(opts.vadSource, {
        sampleRate,
        ...(windowSamples ? { windowSamples } : {}),
        ...(opts.vadSilenceFloorDbfs !== undefined ? { silenceFloorDbfs: opts.vadSilenceFloorDbfs } : {}),
        turn: { ...opts.defaultTurn, ...opts.turnFor?.(agentName), ...turn },
      });
      return {
        push: (frame, at) => vad.push(frame, at),
        onEvent: (handler) => void vad.onEvent(handler),
        get endOfTurnSilenceMs() {
          return vad.endOfTurnSilenceMs;
        },
        close: () => {
          opts.metrics.vadWindows.inc(undefined, vad.stats.windowsProcessed);
          if (vad.stats.windowsQuiet > 0) opts.metrics.vadWindowsQuiet.inc(undefined, vad.stats.windowsQuiet);
          if (vad.stats.windowsDropped > 0) opts.metrics.vadWindowsDropped.inc(undefined, vad.stats.windowsDropped);
          vad.close();
        },
      };
    },
  };
}
