/**
 * The conversation loop, as an Agent: caller audio streams into the agent's STT plugin; at
 * each end of turn the final transcript goes to the LLM with the history, the system prompt
 * and the agent's allowed tools; tool calls are validated and run; the reply is cut into
 * sentences and each is synthesised and queued as soon as it is complete, so speech starts
 * before the model has finished. Barge-in aborts the turn (the session does it); what was
 * actually played is what the history keeps.
 *
 * Failures are survived: a provider error makes the agent say the fallback phrase; repeated
 * failures hand the caller to a human (the agent's fallback transfer) or end the call. A
 * silent caller is re-prompted, then politely hung up on.
 */
import type { AudioFrame } from '../audio/frame.js';
import { createResampler, type Resampler } from '../audio/resampler.js';
import type { Agent, AgentCreateOptions, AgentFactory, CallContext, CallInfo, CallerTurn, TurnContext } from '../agents/agent.js';
import type { AgentConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SessionDocument } from '../sessions/document.js';
import type { SessionPort } from '../sessions/session-keeper.js';
import { isAbortError, type ChatMessage, type LlmProvider, type LlmSession, type SttProvider, type SttStream, type ToolCall } from '../plugins/api.js';
import { builtinTools, type CallAction } from './builtin-tools.js';
import { ConversationHistory } from './history.js';
import type { ConversationMetrics } from './metrics.js';
import { SentenceSplitter } from './sentence-splitter.js';
import { runTools, ToolRegistry, type ToolOutcome } from './tool-runner.js';
import { prefetch, type Voice } from './voice.js';

/** What a conversation leaves behind, turn by turn (call records subscribe to this). */
export interface ConversationObserver {
  callerSaid(turn: number, text: string): void;
  /** `played`: the part the caller actually heard (shorter than `text` after a barge-in). */
  agentSaid(turn: number, text: string, played: string, completed: boolean): void;
  toolCalled(turn: number, outcome: ToolOutcome): void;
  failed(turn: number, stage: 'stt' | 'llm' | 'tts' | 'tools', error: string): void;
}

export interface ConversationAgentDeps {
  name: string;
  config: AgentConfig;
  stt: SttProvider;
  llm: LlmProvider;
  voice: Voice;
  /** Tools from the enabled tools plugins (the allowlist picks among them and the built-ins). */
  pluginTools: ToolRegistry;
  metrics: ConversationMetrics;
  log: Logger;
  observerFor?: (call: CallInfo) => ConversationObserver | undefined;
  /** Said to a caller whose call a restarted Switchboard took back (sessions.resumePhrase). */
  resumePhrase?: string;
}

export const DEFAULT_RESUME_PHRASE = "Sorry about that, I'm back. Where were we?";

const STT_FLUSH_TIMEOUT_MS = 5000;
/** Caller audio kept before a VAD onset (the decision comes ~100-150 ms after the voice starts). */
const STT_PRE_ROLL_MS = 400;

export function createConversationAgentFactory(deps: ConversationAgentDeps): AgentFactory {
  return { name: deps.name, create: (call, opts) => new ConversationAgent(deps, call, opts) };
}

class ConversationAgent implements Agent {
  private readonly cfg: AgentConfig;
  private readonly history: ConversationHistory;
  private readonly registry = new ToolRegistry();
  private readonly allowed: ReadonlySet<string>;
  private stt: SttStream | undefined;
  private sttResampler: Resampler | undefined;
  private llm: LlmSession | undefined;
  private ready: Promise<void> | undefined;
  private pendingAction: CallAction | undefined;
  private consecutiveErrors = 0;
  private reprompts = 0;
  private silenceTimer: NodeJS.Timeout | undefined;
  private callCtx: CallContext | undefined;
  private readonly observer: ConversationObserver | undefined;
  private readonly log: Logger;
  private closed = false;
  /** Whether caller audio is flowing to the recogniser (between VAD onset and end of turn). */
  private sttOpen = false;
  private preRoll: AudioFrame[] = [];
  private preRollMs = 0;
  /** Where the conversation's state is saved after each turn (absent: not saved). */
  private readonly session: SessionPort | undefined;
  /** The saved session of a call taken over after a restart. */
  private readonly resume: SessionDocument | undefined;

  constructor(
    private readonly deps: ConversationAgentDeps,
    private readonly call: CallInfo,
    opts: AgentCreateOptions = {},
  ) {
    this.session = opts.session;
    this.resume = opts.resume;
    this.cfg = deps.config;
    this.log = deps.log.child({ callId: call.callId, agent: deps.name });
    this.history = new ConversationHistory(this.cfg.historyTokenBudget);
    for (const name of deps.pluginTools.names()) this.registry.add(deps.pluginTools.get(name)!, 'plugins');
    for (const t of builtinTools(this.cfg.transfer, (a) => (this.pendingAction = a))) this.registry.add(t, 'built-ins');
    this.allowed = new Set(this.cfg.tools);
    this.observer = deps.observerFor?.(call);
  }

  // --- lifecycle ---------------------------------------------------------------------------

  async onCallStart(ctx: TurnContext): Promise<void> {
    this.callCtx = ctx;
    this.ready = this.open(ctx);
    await this.ready;
    if (this.resume) {
      // Taken back after a restart: no greeting; say we are back and listen where we left off.
      const phrase = this.deps.resumePhrase ?? DEFAULT_RESUME_PHRASE;
      this.history.add({ role: 'assistant', content: phrase });
      await this.sayFixed(phrase, ctx);
      this.log.info({ turn: this.resume.turn, messages: this.resume.history.length }, 'conversation resumed after a restart');
    } else if (this.cfg.greeting) {
      this.history.add({ role: 'assistant', content: this.cfg.greeting });
      const r = await this.sayFixed(this.cfg.greeting, ctx);
      this.observer?.agentSaid(ctx.turn, this.cfg.greeting, r.completed ? this.cfg.greeting : '', r.completed);
    }
    this.saveSession(ctx.turn);
    this.armSilence();
  }

  private async open(ctx: CallContext): Promise<void> {
    const variables: Record<string, string> = { caller_number: this.call.caller.number, dialed: this.call.dialed ?? '' };
    const [stt, llm] = await Promise.all([
      this.deps.stt.stream({
        language: this.cfg.language,
        // The agent's own hints, plus what a scripted model knows callers will say.
        phrases: [...new Set([...this.cfg.phrases, ...(this.deps.llm.expectedPhrases?.() ?? [])])],
        signal: ctx.signal,
      }),
      this.deps.llm.session({ callId: this.call.callId, agent: this.deps.name, language: this.cfg.language, model: this.cfg.model, variables }),
    ]);
    this.stt = stt;
    this.llm = llm;
    if (this.resume) this.restoreConversation(this.resume, llm);
    stt.onInterim((r) => this.log.trace({ text: r.text }, 'interim transcript'));
  }

  /** The saved history and the model's own state, from the session of a call taken over. */
  private restoreConversation(saved: SessionDocument, llm: LlmSession): void {
    this.history.restore(saved.history);
    if (saved.llm === undefined) return;
    if (!llm.restore) {
      this.log.warn({ llm: this.cfg.llm }, "the session holds the model's state but this model cannot restore it; it starts afresh");
      return;
    }
    try {
      llm.restore(saved.llm);
    } catch (err) {
      // The history is back; the model's own state (a scripted dialog's position) starts afresh.
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "the model's saved state could not be restored; it starts afresh");
    }
  }

  /**
   * Record the conversation in the call's session (history, variables, the model's state), after
   * a completed turn or when a transfer is decided. Saved in the background: never waits, never throws.
   */
  private saveSession(turn: number, phase: 'active' | 'transferring' = 'active'): void {
    const session = this.session;
    if (!session || this.closed) return;
    let llm: unknown;
    try {
      llm = this.llm?.snapshot?.();
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "the model's state could not be snapshot; saved without it");
    }
    session.update({
      turn,
      phase,
      history: this.history.snapshot(),
      variables: Object.fromEntries(this.callCtx?.variables ?? []),
      ...(llm !== undefined ? { llm } : {}),
    });
  }

  /**
   * The recogniser hears the caller's speech only: from VAD onset (with a pre-roll of the
   * audio just before it) to the end of the turn. Feeding it seconds of silence (while the
   * agent talks) wastes CPU on every call and skews recognisers that adapt to their input
   * (PocketSphinx's live cepstral mean: the first utterance after a long silence was misheard).
   */
  onCallerAudio(frame: AudioFrame): void {
    if (!this.stt) return;
    if (this.sttOpen) {
      this.pushToStt(frame);
      return;
    }
    this.preRoll.push(frame);
    this.preRollMs += (frame.samples.length * 1000) / frame.sampleRate;
    while (this.preRollMs > STT_PRE_ROLL_MS && this.preRoll.length > 1) {
      const old = this.preRoll.shift()!;
      this.preRollMs -= (old.samples.length * 1000) / old.sampleRate;
    }
  }

  onSpeechStart(): void {
    this.disarmSilence();
    if (this.sttOpen) return;
    this.sttOpen = true;
    for (const f of this.preRoll) this.pushToStt(f);
    this.preRoll = [];
    this.preRollMs = 0;
  }

  private pushToStt(frame: AudioFrame): void {
    let pcm = frame;
    if (frame.sampleRate !== this.deps.stt.sampleRate) {
      this.sttResampler ??= createResampler(frame.sampleRate, this.deps.stt.sampleRate);
      pcm = this.sttResampler.process(frame);
    }
    if (pcm.samples.length > 0) this.stt?.push(pcm);
  }

  onDtmf(digit: string, ctx: CallContext): void {
    // Digits reach the model as text, like speech ("#" ends an entry on most IVRs).
    ctx.variables.set('last_dtmf', digit);
  }

  async onCallEnd(): Promise<void> {
    this.closed = true;
    this.disarmSilence();
    await Promise.allSettled([this.stt?.close(), this.llm?.close()]);
  }

  // --- turns -------------------------------------------------------------------------------

  async onTurn(input: CallerTurn, ctx: TurnContext): Promise<void> {
    this.callCtx = ctx;
    this.disarmSilence();
    await this.ready;
    let text: string;
    const t0 = performance.now();
    try {
      const flushSignal = AbortSignal.any([ctx.signal, AbortSignal.timeout(STT_FLUSH_TIMEOUT_MS)]);
      this.sttOpen = false; // audio from here on waits in the pre-roll for the next onset
      text = (await this.stt!.flush(flushSignal)).text.trim();
      this.deps.metrics.sttFinalMs.observe(performance.now() - t0);
    } catch (err) {
      if (ctx.signal.aborted) return;
      await this.fail('stt', err, ctx);
      return;
    }
    if (!text) {
      this.log.debug({ turn: input.turn }, 'nothing recognised');
      await this.sayFixed("Sorry, I didn't catch that. Could you say it again?", ctx);
      this.armSilence();
      return;
    }
    this.reprompts = 0;
    this.observer?.callerSaid(ctx.turn, text);
    this.log.info({ turn: ctx.turn, text }, 'caller said'); // `text` is a redacted log key
    this.history.add({ role: 'user', content: text });
    await this.respond(ctx);
  }

  /** Model round trips for one caller turn: speak its text, run its tools, until it answers. */
  private async respond(ctx: TurnContext): Promise<void> {
    const specs = this.registry.specs(this.cfg.tools);
    const plays: Promise<void>[] = [];
    const records: Promise<void>[] = [];
    try {
      for (let round = 0; round < this.cfg.maxToolRounds; round++) {
        const splitter = new SentenceSplitter();
        const calls: ToolCall[] = [];
        let full = '';
        const assistant: ChatMessage & { role: 'assistant' } = { role: 'assistant', content: '' };
        const spoken: { text: string; result?: { completed: boolean; playedMs: number; droppedMs: number } }[] = [];
        const speak = (sentence: string): void => {
          const entry: (typeof spoken)[number] = { text: sentence };
          spoken.push(entry);
          plays.push(this.sayLive(sentence, ctx).then((r) => void (entry.result = r)));
        };
        const t0 = performance.now();
        let first = true;
        for await (const ev of this.llm!.respond({ system: this.cfg.systemPrompt, messages: this.history.trimmed(), tools: specs, signal: ctx.signal })) {
          if (first) {
            this.deps.metrics.llmFirstEventMs.observe(performance.now() - t0);
            first = false;
          }
          if (ev.type === 'text') {
            full += ev.delta;
            for (const s of splitter.push(ev.delta)) speak(s);
          } else if (ev.type === 'tool_call') {
            calls.push(ev.call);
          }
          if (ctx.signal.aborted) break;
        }
        for (const s of splitter.flush()) speak(s);
        assistant.content = full;
        if (calls.length > 0) assistant.toolCalls = calls;
        this.history.add(assistant);
        if (ctx.signal.aborted) break;

        if (calls.length === 0) {
          await Promise.all(plays);
          this.recordSpoken(ctx, assistant, spoken);
          this.consecutiveErrors = 0;
          await this.afterReply(ctx);
          return;
        }
        const outcomes = await runTools(calls, {
          registry: this.registry,
          allowed: this.allowed,
          ctx,
          callerNumber: this.call.caller.number,
          log: this.log,
          filler: (phrase) => {
            const text = phrase ?? pick(this.cfg.fillers);
            if (text) void this.sayFixed(text, ctx);
          },
        });
        for (const o of outcomes) {
          this.history.add({ role: 'tool', toolCallId: o.call.id, name: o.call.name, content: JSON.stringify(o.result) });
          this.deps.metrics.toolCalls.inc({ tool: o.call.name, outcome: o.failure ?? (o.result.ok ? 'ok' : 'tool_error') });
          this.observer?.toolCalled(ctx.turn, o);
        }
        // What was heard is known once this round's sentences have played; the next model
        // round does not wait for that.
        const roundPlays = [...plays];
        records.push(Promise.all(roundPlays).then(() => this.recordSpoken(ctx, assistant, spoken)));
        if (this.pendingAction || ctx.signal.aborted) break;
      }
      await Promise.all(plays);
      await Promise.all(records);
      if (!ctx.signal.aborted && !this.pendingAction) {
        // The model kept calling tools without answering: do not leave the caller hanging.
        await this.fail('llm', new Error(`no answer after ${this.cfg.maxToolRounds} tool rounds`), ctx);
        return;
      }
      this.consecutiveErrors = 0;
      await this.afterReply(ctx);
    } catch (err) {
      await Promise.allSettled([...plays, ...records]);
      if (ctx.signal.aborted || isAbortError(err)) return;
      await this.fail('llm', err, ctx);
    }
  }

  /** Replace the assistant's words in the history by what the caller actually heard. */
  private recordSpoken(
    ctx: TurnContext,
    assistant: ChatMessage & { role: 'assistant' },
    spoken: { text: string; result?: { completed: boolean; playedMs: number; droppedMs: number } }[],
  ): void {
    if (spoken.length === 0) return;
    const heard: string[] = [];
    let completed = true;
    for (const s of spoken) {
      const r = s.result;
      if (r?.completed) {
        heard.push(s.text);
        continue;
      }
      completed = false;
      if (r && r.playedMs > 0) {
        const fraction = r.playedMs / Math.max(1, r.playedMs + r.droppedMs);
        const words = s.text.split(/\s+/);
        heard.push(`${words.slice(0, Math.max(1, Math.floor(words.length * fraction))).join(' ')}…`);
      }
      break;
    }
    const played = heard.join(' ');
    if (!completed) assistant.content = played ? `${played} [interrupted by the caller]` : '[interrupted by the caller before speaking]';
    this.observer?.agentSaid(ctx.turn, spoken.map((s) => s.text).join(' '), played, completed);
  }

  /** After the reply: carry out a requested transfer/hang-up, or wait for the caller. */
  private async afterReply(ctx: TurnContext): Promise<void> {
    const action = this.pendingAction;
    this.pendingAction = undefined;
    if (action?.kind === 'transfer') {
      // Decided (and announced): carried out even if the caller talked over the announcement.
      this.saveSession(ctx.turn, 'transferring');
      await ctx.transfer(action.target, action.reason);
      return;
    }
    if (action?.kind === 'hangup') {
      if (ctx.signal.aborted) return; // "wait, one more thing": the caller cut the goodbye
      await ctx.hangup(action.reason);
      return;
    }
    this.saveSession(ctx.turn);
    this.armSilence();
  }

  private async fail(stage: 'stt' | 'llm' | 'tts' | 'tools', err: unknown, ctx: TurnContext): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    this.consecutiveErrors++;
    this.deps.metrics.failures.inc({ stage });
    this.observer?.failed(ctx.turn, stage, message);
    this.log.error({ stage, err: message, consecutive: this.consecutiveErrors }, 'turn failed');
    const fb = this.cfg.fallback;
    await this.sayFixed(fb.phrase, ctx);
    if (this.consecutiveErrors < fb.maxConsecutiveErrors) {
      this.saveSession(ctx.turn);
      this.armSilence();
      return;
    }
    const target = fb.transferTo ? this.cfg.transfer[fb.transferTo] : undefined;
    if (target) this.saveSession(ctx.turn, 'transferring');
    if (target) await ctx.transfer(target, `${stage}_failure`);
    else await ctx.hangup(`${stage}_failure`);
  }

  // --- speaking ----------------------------------------------------------------------------

  private sayLive(text: string, ctx: TurnContext): Promise<{ completed: boolean; playedMs: number; droppedMs: number }> {
    const audio = prefetch(this.deps.voice.live(text, ctx.signal));
    return ctx.play(audio, ctx.signal).catch((err: unknown) => {
      this.deps.metrics.failures.inc({ stage: 'tts' });
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'speaking failed');
      return { completed: false, playedMs: 0, droppedMs: 0 };
    });
  }

  /** A fixed phrase from the cache. Its place in the playout queue is taken at once. */
  private sayFixed(text: string, ctx: TurnContext | CallContext): Promise<{ completed: boolean; playedMs: number; droppedMs: number }> {
    const voice = this.deps.voice;
    const signal = ctx.signal;
    async function* audio(): AsyncIterable<AudioFrame> {
      yield await voice.fixed(text, signal);
    }
    const turn = 'turn' in ctx ? ctx.turn : 0;
    return ctx
      .play(audio(), signal)
      .catch((err: unknown) => {
        this.deps.metrics.failures.inc({ stage: 'tts' });
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'speaking a fixed phrase failed');
        return { completed: false, playedMs: 0, droppedMs: 0 };
      })
      .then((r) => {
        if (text !== this.cfg.greeting) this.observer?.agentSaid(turn, text, r.completed ? text : '', r.completed);
        return r;
      });
  }

  // --- silence -----------------------------------------------------------------------------

  private armSilence(): void {
    this.disarmSilence();
    const ctx = this.callCtx;
    if (!ctx || this.closed || ctx.signal.aborted) return;
    const s = this.cfg.silence;
    this.silenceTimer = setTimeout(() => {
      this.silenceTimer = undefined;
      ctx.beginAgentTurn(async (tctx) => {
        this.reprompts++;
        this.deps.metrics.reprompts.inc();
        if (this.reprompts > s.maxReprompts) {
          await this.sayFixed(s.goodbye, tctx);
          if (!tctx.signal.aborted) await tctx.hangup('caller_silent');
          return;
        }
        await this.sayFixed(s.reprompt, tctx);
        this.armSilence();
      });
    }, s.repromptAfterMs);
  }

  private disarmSilence(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = undefined;
  }
}

function pick<T>(items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(Math.random() * items.length)];
}
