/**
 * What a CallSession needs from the media edge and from VAD. The RTP endpoint and the
 * Silero pipeline are bound to these in media-binding.ts; the session knows nothing else.
 * All times are performance.now() milliseconds.
 */
import type { AudioFrame, SampleRate } from '../audio/frame.js';

/** One playout item (an utterance): written in pieces, sent as one contiguous stream. */
export interface PlayoutWriter {
  /** Append PCM at the media rate. Ignored once the item was cut by clear(). */
  write(frame: AudioFrame): void;
  /** No more audio: the last partial frame is padded and the item finishes when sent. */
  end(): void;
  /** Resolves when this item has been fully sent or was cut by clear(). */
  readonly done: Promise<{ completed: boolean; playedMs: number; droppedMs: number }>;
}

export interface ClearOutcome {
  droppedMs: number;
  /** Send time of the last packet before the cut; undefined if nothing was ever sent. */
  lastPacketAt: number | undefined;
}

export interface SessionMedia {
  /** Rate of PCM the media edge accepts and emits (the codec's rate). */
  readonly sampleRate: SampleRate;
  /** Inbound decoded audio, in arrival order, with the arrival time of its packet. */
  onFrame(handler: (frame: AudioFrame, arrivalMs: number) => void): void;
  /** Start a playout item for paced output; at most one is open at a time. */
  openPlayout(): PlayoutWriter;
  /**
   * Drop everything queued; nothing written before this call is sent after the media thread
   * has run it (at once in-thread; with the media worker, as soon as it reads the message).
   * Resolves with what was dropped and when the last packet before the cut was sent.
   */
  clear(): Promise<ClearOutcome>;
  /** Called with the send time of the first packet of each talkspurt. */
  onTalkspurtStart(handler: (at: number) => void): void;
  /** True while audio is queued or being sent. */
  readonly busy: boolean;
  close(): Promise<void>;
}

export type VadEvent =
  | { type: 'speech_start'; onsetAt: number; decidedAt: number }
  /** `tooShort`: less voiced time than the agent's minimum utterance (a cough, a click). */
  | { type: 'speech_end'; lastSpeechAt: number; decidedAt: number; tooShort?: boolean };

export interface SessionVad {
  push(frame: AudioFrame, arrivalMs: number): void;
  onEvent(handler: (e: VadEvent) => void): void;
  readonly endOfTurnSilenceMs: number;
  close(): void;
}
