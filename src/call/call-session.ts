/**
 * One call: coordinates media, VAD, the agent and the call's state. It owns the call's
 * AbortController; each agent turn runs under a child controller that barge-in aborts.
 * It delegates: audio I/O to SessionMedia, speech detection to SessionVad, timing to
 * CallTimings, what to say to the Agent.
 */
import type { AudioFrame } from '../audio/frame.js';
import { createResampler } from '../audio/resampler.js';
import type { Agent, CallContext, CallInfo, PlayResult, TransferTarget, TurnContext } from '../agents/agent.js';
import type { Logger } from '../log.js';
import { CallStateMachine, type CallState } from './call-state.js';
import type { EngineMetrics } from './engine-metrics.js';
import type { SessionMedia, SessionVad, VadEvent } from './session-ports.js';
import { CallTimings, type BargeInRecord, type TurnLatency } from './turn-timing.js';
import { UtteranceBuffer } from './utterance-buffer.js';

export type CallOutcome = 'completed' | 'caller_hangup' | 'agent_hangup' | 'transferred' | 'failed' | 'shutdown';

export interface CallSessionDeps {
  info: CallInfo;
  media: SessionMedia;
  vad: SessionVad;
  agent: Agent;
  log: Logger;
  metrics: EngineMetrics;
  /** Ask Asterisk to hang the caller up (the controller tears down on StasisEnd). */
  hangupChannel: (reason: string) => Promise<void>;
  /** Send the caller to a dialplan target with the call's variables (the controller does it). */
  transferChannel: (target: TransferTarget, reason: string, variables: ReadonlyMap<string, string>) => Promise<void>;
  /** Mirror a call variable to the channel (best effort). */
  setChannelVariable?: (name: string, value: string) => Promise<void>;
  /** How long teardown waits for uninterruptible work (bookings in flight). */
  uninterruptibleGraceMs?: number;
  bargeIn?: { enabled: boolean };
  /** Turns already taken (a call continued after a restart): numbering goes on from there. */
  firstTurn?: number;
}

export interface CallSummary {
  info: CallInfo;
  outcome: CallOutcome;
  durationMs: number;
  turns: TurnLatency[];
  bargeIns: BargeInRecord[];
  timeInStates: Record<CallState, number>;
  dtmf: string[];
  /** The call's variables at its end (set_variable; they travel with a transferred caller). */
  variables: Record<string, string>;
}

function isAsyncIterable(x: unknown): x is AsyncIterable<AudioFrame> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

export class CallSession {
  readonly info: CallInfo;
  readonly state: CallStateMachine;
  readonly timings = new CallTimings();
  private readonly callCtl = new AbortController();
  private turnCtl: AbortController | undefined;
  private turnNo = 0;
  private readonly utterance: UtteranceBuffer;
  private readonly pendingUninterruptible = new Set<Promise<unknown>>();
  private readonly pendingBargeIns = new Set<Promise<void>>();
  private activePlays = 0;
  /** Resolves when the previous play() has written all its audio (plays are serialised). */
  private playQueue: Promise<void> = Promise.resolve();
  private activePlayMs = 0;
  private readonly startedAt = performance.now();
  private ended: Promise<CallSummary> | undefined;
  private readonly dtmfDigits: string[] = [];
  readonly variables = new Map<string, string>();
  private readonly log: Logger;

  constructor(private readonly deps: CallSessionDeps) {
    this.info = deps.info;
    this.log = deps.log;
    this.turnNo = deps.firstTurn ?? 0;
    this.state = new CallStateMachine(undefined, (from, to) => this.log.debug({ from, to }, 'call state'));
    this.utterance = new UtteranceBuffer(deps.media.sampleRate);
    deps.media.onFrame((frame, at) => this.onCallerFrame(frame, at));
    deps.media.onTalkspurtStart((at) => this.onAgentAudioStarted(at));
    deps.vad.onEvent((e) => this.onVad(e));
  }

  get signal(): AbortSignal {
    return this.callCtl.signal;
  }

  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  /** Media is bridged: start listening and let the agent greet. */
  start(): void {
    this.state.to('listening');
    const agent = this.deps.agent;
    if (agent.onCallStart) {
      const ctx = this.beginTurn();
      this.runTurn(ctx, () => agent.onCallStart!(ctx));
    }
  }

  dtmf(digit: string): void {
    if (this.isEnded) return;
    this.dtmfDigits.push(digit);
    this.deps.metrics.dtmf.inc();
    this.log.info({ dtmf: digit }, 'DTMF'); // digits may be PINs: `dtmf` is a redacted key
    try {
      this.deps.agent.onDtmf?.(digit, this.callContext());
    } catch (err) {
      this.log.error({ err }, 'agent DTMF handler threw');
    }
  }

  private onCallerFrame(frame: AudioFrame, at: number): void {
    if (this.isEnded) return;
    this.utterance.push(frame, at);
    this.deps.vad.push(frame, at);
    this.deps.agent.onCallerAudio?.(frame);
  }

  private onVad(e: VadEvent): void {
    if (this.isEnded) return;
    if (e.type === 'speech_start') {
      this.deps.metrics.vadSpeechStarts.inc();
      try {
        this.deps.agent.onSpeechStart?.();
      } catch (err) {
        this.log.error({ err }, 'agent onSpeechStart threw');
      }
      this.utterance.start(e.onsetAt);
      this.timings.callerResumed();
      // The agent is speaking while a play() is in progress, even if a streamed reply has
      // momentarily run dry, or while audio is still queued.
      const agentSpeaking = this.activePlays > 0 || this.deps.media.busy;
      if (agentSpeaking && (this.deps.bargeIn?.enabled ?? true)) {
        this.bargeIn(e.onsetAt, e.decidedAt);
      } else if (this.turnCtl && this.state.state === 'thinking') {
        // The caller went on talking before the agent replied: that reply is stale.
        this.turnCtl.abort(new Error('caller resumed speaking'));
      }
      if (this.state.can('listening')) this.state.to('listening');
    } else {
      this.deps.metrics.vadSpeechEnds.inc();
      const audio = this.utterance.finish(e.lastSpeechAt);
      if (e.tooShort) {
        // A cough or a click: not a turn. (A barge-in it caused has already happened.)
        this.log.debug('utterance too short; ignored');
        return;
      }
      const ctx = this.beginTurn();
      this.timings.callerTurnEnded(ctx.turn, e.lastSpeechAt, e.decidedAt);
      this.state.to('thinking');
      this.runTurn(ctx, () => this.deps.agent.onTurn({ turn: ctx.turn, audio }, ctx));
    }
  }

  private bargeIn(onsetAt: number, decidedAt: number): void {
    // The cut first: with the media worker it is a message, posted here before anything else.
    const cleared = this.deps.media.clear();
    const turn = this.turnNo;
    const playedBefore = this.activePlayMs;
    this.turnCtl?.abort(new Error('barge-in'));
    this.deps.metrics.bargeIns.inc();
    const recorded = cleared.then(({ droppedMs, lastPacketAt }) => {
      const rec = this.timings.bargeIn({
        turn,
        speechOnsetAt: onsetAt,
        decidedAt,
        agentLastAudioAt: lastPacketAt ?? decidedAt,
        playedMs: Math.max(0, playedBefore - droppedMs),
        droppedMs,
      });
      this.deps.metrics.bargeInReaction.observe(rec.reactionMs);
      this.log.info({ turn: rec.turn, reactionMs: round(rec.reactionMs), playedMs: round(rec.playedMs) }, 'barge-in');
    }).catch((err: unknown) => this.log.error({ err }, 'barge-in: recording it failed'));
    // The call summary waits for it (a caller may hang up right after barging in).
    this.pendingBargeIns.add(recorded);
    void recorded.finally(() => this.pendingBargeIns.delete(recorded));
  }

  private onAgentAudioStarted(at: number): void {
    const rec = this.timings.agentAudioStarted(at);
    if (rec) {
      this.deps.metrics.turnLatency.observe(rec.latencyMs);
      this.log.info(
        {
          turn: rec.turn,
          latencyMs: round(rec.latencyMs),
          endOfTurnMs: round(rec.endOfTurnDecidedAt - rec.callerLastSpeechAt),
          engineMs: round(rec.agentFirstAudioAt - rec.endOfTurnDecidedAt),
        },
        'turn latency',
      );
    }
  }

  private beginTurn(): TurnContext {
    this.turnCtl?.abort(new Error('superseded by a new turn'));
    const ctl = new AbortController();
    const callSignal = this.callCtl.signal;
    const link = (): void => ctl.abort(callSignal.reason);
    callSignal.addEventListener('abort', link, { once: true });
    ctl.signal.addEventListener('abort', () => callSignal.removeEventListener('abort', link), { once: true });
    this.turnCtl = ctl;
    const turn = ++this.turnNo;
    return {
      ...this.callContext(),
      turn,
      signal: ctl.signal,
      uninterruptible: <T>(work: (s: AbortSignal) => Promise<T>): Promise<T> => {
        const p = work(callSignal);
        this.pendingUninterruptible.add(p);
        const forget = (): void => void this.pendingUninterruptible.delete(p);
        p.then(forget, forget);
        return p;
      },
    };
  }

  private runTurn(ctx: TurnContext, work: () => Promise<void>): void {
    let running: Promise<void>;
    try {
      running = work();
    } catch (err) {
      running = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    running
      .catch((err: unknown) => {
        if (ctx.signal.aborted) return; // barge-in or hang-up: expected
        this.deps.metrics.agentErrors.inc({ agent: this.info.agentName });
        this.log.error({ err, turn: ctx.turn }, 'agent turn failed');
      })
      .finally(() => {
        if (this.turnCtl?.signal === ctx.signal) {
          this.turnCtl = undefined;
          if (!this.isEnded && this.state.state === 'thinking') this.state.to('listening');
        }
      });
  }

  private callContext(): CallContext {
    return {
      call: this.info,
      signal: this.callCtl.signal,
      log: this.log,
      play: (audio, signal) => this.play(audio, signal),
      variables: this.variables,
      hangup: (reason) => this.deps.hangupChannel(reason ?? 'agent'),
      transfer: async (target, reason) => {
        if (this.isEnded) return;
        if (this.state.can('transferring')) this.state.to('transferring');
        await this.deps.transferChannel(target, reason, this.variables);
      },
      beginAgentTurn: (work) => {
        if (this.isEnded) return;
        const ctx = this.beginTurn();
        this.runTurn(ctx, () => work(ctx));
      },
    };
  }

  /**
   * Queue audio for the caller, resampled to the media rate, until done or `signal` aborts.
   * One call is one playout item however many chunks a stream yields; concurrent calls are
   * played one after another, in call order.
   */
  async play(audio: AudioFrame | AsyncIterable<AudioFrame>, signal: AbortSignal): Promise<PlayResult> {
    const cut = { completed: false, playedMs: 0, droppedMs: 0 };
    if (signal.aborted || this.isEnded) return cut;
    const media = this.deps.media;
    const rate = media.sampleRate;
    const previous = this.playQueue;
    let release!: () => void;
    this.playQueue = new Promise<void>((r) => (release = r));
    const onAbort = (): void => void media.clear();
    this.activePlays++;
    if (this.state.can('speaking')) this.state.to('speaking');
    try {
      await previous;
      if (signal.aborted || this.isEnded) return cut;
      signal.addEventListener('abort', onAbort, { once: true });
      const writer = media.openPlayout();
      let resampler: ReturnType<typeof createResampler> | undefined;
      const write = (frame: AudioFrame): void => {
        let pcm = frame;
        if (frame.sampleRate !== rate) {
          resampler ??= createResampler(frame.sampleRate, rate);
          pcm = resampler.process(frame);
        }
        if (pcm.samples.length === 0) return;
        this.activePlayMs += (pcm.samples.length * 1000) / rate;
        writer.write(pcm);
      };
      try {
        if (isAsyncIterable(audio)) {
          for await (const frame of audio) {
            if (signal.aborted) break;
            write(frame);
          }
        } else {
          write(audio);
        }
        if (resampler && !signal.aborted) {
          const tail = resampler.flush();
          if (tail.samples.length > 0) writer.write(tail);
        }
      } finally {
        writer.end();
        release();
      }
      const result = await writer.done;
      return { ...result, completed: result.completed && !signal.aborted };
    } finally {
      release();
      signal.removeEventListener('abort', onAbort);
      this.activePlays--;
      if (this.activePlays === 0) {
        this.activePlayMs = 0;
        if (!this.isEnded && this.state.state === 'speaking') this.state.to(this.turnCtl ? 'thinking' : 'listening');
      }
    }
  }

  /** Tear the call down once; later calls return the same summary. */
  end(outcome: CallOutcome): Promise<CallSummary> {
    this.ended ??= this.teardown(outcome);
    return this.ended;
  }

  private async teardown(outcome: CallOutcome): Promise<CallSummary> {
    const cleared = this.deps.media.clear();
    this.callCtl.abort(new Error(`call ended: ${outcome}`));
    if (this.pendingUninterruptible.size > 0) {
      const grace = this.deps.uninterruptibleGraceMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.pendingUninterruptible]),
        new Promise((r) => (timer = setTimeout(r, grace))),
      ]);
      clearTimeout(timer);
    }
    const timeInStates = this.state.timeInStates();
    if (this.state.can('ended')) this.state.to('ended');
    try {
      await this.deps.agent.onCallEnd?.();
    } catch (err) {
      this.log.error({ err }, 'agent onCallEnd threw');
    }
    this.deps.vad.close();
    await cleared;
    await Promise.all(this.pendingBargeIns);
    await this.deps.media.close();
    return {
      info: this.info,
      outcome,
      durationMs: performance.now() - this.startedAt,
      turns: this.timings.turns,
      bargeIns: this.timings.bargeIns,
      timeInStates,
      dtmf: this.dtmfDigits,
      variables: Object.fromEntries(this.variables),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
