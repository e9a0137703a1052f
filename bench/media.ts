/**
 * Media engine micro-benchmark: CPU per call-second of audio for the inbound path an STT
 * plugin would need — G.711 mu-law decode, 8 -> 16 kHz resampling, Silero VAD at 8 kHz
 * through the shared VadBatcher — on real (espeak-ng) speech with pauses.
 *
 * CPU is process.cpuUsage() (user + system, every thread: onnxruntime's included), each
 * figure the median over repeats. Many virtual calls run in lockstep, one 20 ms packet per
 * call per step, so the VAD batcher forms the batches it would form live (up to 64).
 */
import type { AudioFrame } from '../src/audio/frame.js';
import { ulawDecode, ulawEncode } from '../src/audio/g711.js';
import { createResampler } from '../src/audio/resampler.js';
import { CallVad } from '../src/audio/vad/call-vad.js';
import { SileroVadModel } from '../src/audio/vad/silero-model.js';
import { VadBatcher } from '../src/audio/vad/vad-batcher.js';
import { concurrencyClip } from './lib/clips.js';
import { median, round } from './lib/stats.js';

export interface MediaOptions {
  quick: boolean;
  workDir: string;
  log: (msg: string) => void;
}

export interface StageFigure {
  stage: string;
  /** Virtual calls processed together. */
  calls: number;
  /** Median ms of CPU per call-second of audio. */
  msPerCallSecond: number | null;
  /** The repeats' figures, for spread. */
  repeats: Array<number | null>;
  /** Cores this stage would take at 200 calls (msPerCallSecond x 200 / 1000). */
  coresAt200: number | null;
  notes?: Record<string, number | string | null>;
}

export interface MediaResult {
  audioSeconds: number;
  speechSeconds: number;
  repeats: number;
  stages: StageFigure[];
  /** Sum of the per-stage medians (decode + resample + VAD at the realistic batch). */
  total: { msPerCallSecond: number | null; coresAt200: number | null; vadCalls: number };
  model: string;
}

/** Keeps the decode loop's result observable, so it cannot be optimised away. */
export let sink = 0;

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function figure(stage: string, calls: number, perRepeat: number[], notes?: StageFigure['notes']): StageFigure {
  const ms = median(perRepeat);
  return {
    stage,
    calls,
    msPerCallSecond: round(ms, 3),
    repeats: perRepeat.map((x) => round(x, 3)),
    coresAt200: round((ms * 200) / 1000, 3),
    ...(notes ? { notes } : {}),
  };
}

export async function runMedia(opts: MediaOptions): Promise<MediaResult> {
  const repeats = opts.quick ? 3 : 5;
  const clip = await concurrencyClip(`${opts.workDir}/media-speech.wav`);
  // Whole 20 ms packets only; the quick run uses the first half of the clip.
  const totalPackets = Math.floor(clip.frame.samples.length / 160);
  const packets = opts.quick ? Math.floor(totalPackets / 2) : totalPackets;
  const seconds = (packets * 20) / 1000;
  const speechSeconds = clip.speech.reduce((a, s) => a + Math.max(0, Math.min(s.endMs, seconds * 1000) - s.startMs), 0) / 1000;
  const payloads = Array.from({ length: packets }, (_, i) => ulawEncode(clip.frame.samples.subarray(i * 160, (i + 1) * 160)));
  const decoded: AudioFrame[] = payloads.map((p) => ({ samples: ulawDecode(p), sampleRate: 8000 }));
  opts.log(`media: ${seconds.toFixed(1)} s of audio (${speechSeconds.toFixed(1)} s speech), ${repeats} repeats`);
  const stages: StageFigure[] = [];

  // 1. mu-law decode into a reused buffer (the endpoint decodes into a slab view the same way).
  {
    const calls = 200;
    const out = new Int16Array(160);
    const pass = (): void => {
      for (let c = 0; c < calls; c++) {
        for (const p of payloads) sink ^= ulawDecode(p, out)[0] as number;
      }
    };
    pass(); // warm-up (JIT)
    const per: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t = process.cpuUsage();
      pass();
      per.push(cpuMs(t) / (calls * seconds));
    }
    stages.push(figure('decode G.711 mu-law', calls, per));
  }

  // 2. 8 -> 16 kHz, one resampler per call, 20 ms chunks.
  {
    const calls = 50;
    const resamplers = Array.from({ length: calls }, () => createResampler(8000, 16000));
    const pass = (): void => {
      for (const rs of resamplers) {
        for (const f of decoded) rs.process(f);
        rs.flush();
      }
    };
    pass();
    const per: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t = process.cpuUsage();
      pass();
      per.push(cpuMs(t) / (calls * seconds));
    }
    stages.push(figure('resample 8k -> 16k', calls, per));
  }

  // 3. Silero VAD at 8 kHz, CallVad per call through one VadBatcher (app defaults), on the
  //    first 7.8 s (two utterances and their pauses) to keep 200 calls x repeats short.
  const vadPackets = Math.min(packets, 390);
  const vadSeconds = (vadPackets * 20) / 1000;
  const model = await SileroVadModel.load();
  const vadFigures = new Map<number, StageFigure>();
  try {
    for (const calls of [10, 50, 200]) {
      const per: number[] = [];
      let meanBatch = 0;
      let dropped = 0;
      let starts = 0;
      for (let r = -1; r < repeats; r++) {
        // r = -1 is a warm-up pass (session and JIT), not recorded.
        const batcher = new VadBatcher(model);
        const vads = Array.from({ length: calls }, () => new CallVad(batcher, { sampleRate: 8000 }));
        const t = process.cpuUsage();
        for (let p = 0; p < vadPackets; p++) {
          const frame = decoded[p] as AudioFrame;
          for (const v of vads) v.push(frame, p * 20);
          // A window completes every 1.6 packets; wait for the batch like the live engine does.
          await Promise.all(vads.map((v) => v.whenIdle()));
        }
        const ms = cpuMs(t);
        if (r >= 0) {
          per.push(ms / (calls * vadSeconds));
          meanBatch = batcher.stats.windows / Math.max(1, batcher.stats.runs);
          dropped = vads.reduce((a, v) => a + v.stats.windowsDropped, 0);
          starts = vads.reduce((a, v) => a + v.stats.speechStarts, 0) / calls;
        }
        for (const v of vads) v.close();
        batcher.close();
      }
      const f = figure(`VAD Silero 8k, batcher`, calls, per, {
        meanBatch: round(meanBatch, 1),
        windowsDropped: dropped,
        speechStartsPerCall: round(starts, 1),
        audioSeconds: vadSeconds,
        utterancesInAudio: clip.speech.filter((s) => s.startMs < vadSeconds * 1000).length,
      });
      vadFigures.set(calls, f);
      stages.push(f);
      opts.log(`media: VAD ${calls} calls: ${f.msPerCallSecond} ms CPU per call-second (mean batch ${round(meanBatch, 1)})`);
    }
  } finally {
    await model.close();
  }

  // Total at a realistic batch: live at 200 calls the batcher's mean batch is about 50.
  const vadCalls = 50;
  const parts = [stages[0]?.msPerCallSecond, stages[1]?.msPerCallSecond, vadFigures.get(vadCalls)?.msPerCallSecond];
  const total = parts.every((x) => typeof x === 'number') ? (parts).reduce((a, b) => a + b, 0) : Number.NaN;
  return {
    audioSeconds: round(seconds, 2) ?? 0,
    speechSeconds: round(speechSeconds, 2) ?? 0,
    repeats,
    stages,
    total: { msPerCallSecond: round(total, 3), coresAt200: round((total * 200) / 1000, 3), vadCalls },
    model: `Silero ${model.version}`,
  };
}
