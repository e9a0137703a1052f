/**
 * The contract between the call engine and whatever converses with the caller.
 * A factory makes one Agent per call; the session calls it at the call's moments and gives
 * it a context for acting on the call. Cancellation is one mechanism: `CallContext.signal`
 * aborts when the call ends, `TurnContext.signal` (a child of it) when the caller barges in.
 */
import type { AudioFrame } from '../audio/frame.js';
import type { Logger } from '../log.js';
import type { SessionDocument } from '../sessions/document.js';
import type { SessionPort } from '../sessions/session-keeper.js';

export interface PlayResult {
  /** True when every queued sample went out; false when barge-in or hang-up cut it. */
  completed: boolean;
  playedMs: number;
  droppedMs: number;
}

export interface CallInfo {
  callId: string;
  channelId: string;
  caller: { number: string; name: string };
  /** Extension dialled, when known. */
  dialed?: string | undefined;
  agentName: string;
}

/** A dialplan destination (an allowlisted transfer target). */
export interface TransferTarget {
  context: string;
  extension: string;
}

export interface CallContext {
  readonly call: CallInfo;
  /** Aborts when the call ends. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** The call's variables (set_variable / get_variable); mirrored to the channel as SB_<NAME>. */
  readonly variables: Map<string, string>;
  /** Queue audio for the caller; resolves when it has been played out or cut. */
  play(audio: AudioFrame | AsyncIterable<AudioFrame>, signal: AbortSignal): Promise<PlayResult>;
  hangup(reason?: string): Promise<void>;
  /**
   * Hand the caller to `target` (the caller of this must have checked it against the agent's
   * allowlist). The call's variables travel with it as SB_* channel variables.
   */
  transfer(target: TransferTarget, reason: string): Promise<void>;
  /** Start a turn the agent initiates (a re-prompt after silence); aborts the current one. */
  beginAgentTurn(work: (ctx: TurnContext) => Promise<void>): void;
}

export interface TurnContext extends CallContext {
  readonly turn: number;
  /** Aborts on barge-in or call end. */
  readonly signal: AbortSignal;
  /**
   * Run a side effect that must complete even if the caller interrupts (a booking in
   * progress). It sees only the call's signal; the session waits for it before tearing down.
   */
  uninterruptible<T>(work: (callSignal: AbortSignal) => Promise<T>): Promise<T>;
}

export interface CallerTurn {
  turn: number;
  /** The caller's utterance, PCM16 at the engine's rate, including a short pre-roll. */
  audio: AudioFrame;
}

export interface Agent {
  /** Media is up: greet the caller, if the agent does. */
  onCallStart?(ctx: TurnContext): Promise<void>;
  /** Every inbound frame, for streaming recognisers. Must not block. */
  onCallerAudio?(frame: AudioFrame): void;
  /** VAD heard the caller start speaking (before any barge-in is applied). */
  onSpeechStart?(): void;
  /** The caller finished speaking (end of turn by VAD). */
  onTurn(input: CallerTurn, ctx: TurnContext): Promise<void>;
  onDtmf?(digit: string, ctx: CallContext): void;
  /** The call is over; release per-call resources. */
  onCallEnd?(): Promise<void>;
}

/** Per-agent engine settings (from the agent's config). */
export interface AgentSettings {
  bargeIn?: boolean;
  /** VAD / turn-taking overrides for this agent's calls. */
  turn?: { threshold?: number; minSpeechMs?: number; endOfTurnSilenceMs?: number; minUtteranceMs?: number };
}

/** What the engine hands an agent besides the call (agents may ignore all of it). */
export interface AgentCreateOptions {
  /** The call's session: the agent records its conversation state there after each turn. */
  session?: SessionPort;
  /** The call was taken over after a restart: its saved session. Continue it instead of greeting. */
  resume?: SessionDocument;
}

export interface AgentFactory {
  readonly name: string;
  readonly settings?: AgentSettings;
  create(call: CallInfo, opts?: AgentCreateOptions): Agent;
}
