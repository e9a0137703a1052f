/**
 * The LLM-contract face of the dialog engine: one ScriptSession per call.
 *
 * `respond()` reads the end of the conversation the loop sends:
 *  - no messages yet (or the last is the assistant's): the opening, once;
 *  - a user message: the caller spoke, the dialog advances;
 *  - tool messages: the results of the calls the previous response made (matched by id).
 * It then streams the lines as several text deltas (cut between words, not at sentence ends,
 * so the loop's sentence splitter does real work), the tool calls, and `done`.
 *
 * Cancellation: if the turn's signal aborts before anything was emitted, the dialog state is
 * restored as if respond() had never been called, and an AbortError is thrown. Once output
 * has been emitted the step stands (the caller may have heard it); a tool call that never ran
 * is dropped when the caller next speaks, and their words are taken where the dialog last
 * listened.
 */
import { z } from 'zod';
import type { Logger } from '../../src/log.js';
import { PluginError, type ChatMessage, type LlmEvent, type LlmRequest, type LlmSession, type LlmSessionOptions, type ToolSpec } from '../../src/plugins/api.js';
import type { DialogEngine, DialogState, ToolOutcome, Turn } from './engine.js';

const PLUGIN = 'llm-script';
/** Words per text delta. */
const WORDS_PER_DELTA = 3;

export function abortError(): Error {
  return new DOMException('the turn was aborted', 'AbortError');
}

/** Split a line into deltas of a few words each, keeping the whitespace. */
export function chunkText(text: string, wordsPerDelta = WORDS_PER_DELTA): string[] {
  const words = text.match(/\S+\s*/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < words.length; i += wordsPerDelta) out.push(words.slice(i, i + wordsPerDelta).join(''));
  return out;
}

/** A tool message's content, as the loop writes it: {"ok":true,"data":...} or {"ok":false,"error":"..."}. */
export function parseToolContent(content: string): ToolOutcome {
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    return { ok: false, error: 'the tool answered something unreadable' };
  }
  if (v && typeof v === 'object' && typeof (v as { ok?: unknown }).ok === 'boolean') {
    const o = v as { ok: boolean; data?: unknown; error?: unknown };
    return o.ok ? { ok: true, data: o.data } : { ok: false, error: typeof o.error === 'string' ? o.error : 'failed' };
  }
  return { ok: false, error: 'the tool answered something unreadable' };
}

const Count = z.number().int().min(0);
const Strings = z.record(z.string(), z.string());

/**
 * The shape of a DialogState as snapshot() hands it out (and restore() takes it back). Loose:
 * fields this check does not know (added to DialogState later) are kept, not stripped.
 */
const DialogStateSchema = z.looseObject({
  status: z.enum(['new', 'listening', 'awaiting_tool', 'ended']),
  current: z.string(),
  inputState: z.string().optional(),
  slots: z.record(z.string(), z.union([z.string(), z.number()])),
  vars: Strings,
  pendingVars: Strings,
  retries: z.record(z.string(), Count),
  pending: z
    .object({
      id: z.string(),
      tool: z.string(),
      state: z.string(),
      kind: z.enum(['tool', 'transfer', 'end']),
      destination: z.string().optional(),
    })
    .optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  input: z.string(),
  lastPrompt: z.string(),
  queued: z.string().optional(),
  seq: Count,
  stats: z.object({ inputs: Count, misunderstandings: Count, escalations: Count, toolCalls: Count }),
  outcome: z.enum(['transferred', 'hung_up', 'ended']).optional(),
});

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class ScriptSession implements LlmSession {
  private state: DialogState;
  private closed = false;

  constructor(
    private readonly engine: DialogEngine,
    private readonly opts: LlmSessionOptions,
    private readonly log: Logger,
  ) {
    this.state = engine.initialState(opts.variables);
  }

  /**
   * A copy of the dialog state: plain JSON data (the state machine's position, slots, retries,
   * pending tool call). Saved with the call's session; restore() continues from it.
   */
  snapshot(): DialogState {
    return structuredClone(this.state);
  }

  /**
   * Continue from a snapshot (another process's, after a restart). The snapshot is checked
   * against the dialog state's shape and this scenario's states; a bad one throws
   * PluginError('bad_request') and the session keeps its own state.
   */
  restore(snapshot: unknown): void {
    if (this.closed) throw new PluginError(PLUGIN, 'bad_request', 'the session is closed', false);
    const parsed = DialogStateSchema.safeParse(snapshot);
    if (!parsed.success) {
      const where = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(state)'}: ${i.message}`);
      throw new PluginError(PLUGIN, 'bad_request', `cannot restore the dialog: ${where.join('; ')}`, false);
    }
    const st = parsed.data as DialogState;
    const states = this.engine.scenario.states;
    for (const name of [st.current, st.inputState, st.pending?.state]) {
      if (name !== undefined && !Object.hasOwn(states, name)) {
        throw new PluginError(PLUGIN, 'bad_request', `cannot restore the dialog: state "${name}" is not in scenario "${this.engine.scenario.name}"`, false);
      }
    }
    this.state = structuredClone(st);
    this.log.info({ state: st.current, status: st.status }, 'dialog restored from a snapshot');
  }

  respond(req: LlmRequest): AsyncIterable<LlmEvent> {
    return this.run(req);
  }

  private step(messages: readonly ChatMessage[], tools: ReadonlyMap<string, ToolSpec>): Turn {
    const last = messages.at(-1);
    if (!last || last.role === 'assistant') return this.engine.open(this.state, tools);
    if (last.role === 'user') return this.engine.onUser(this.state, last.content, tools);
    const results = new Map<string, ToolOutcome>();
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i]!;
      if (m.role !== 'tool') break;
      results.set(m.toolCallId, parseToolContent(m.content));
    }
    return this.engine.onToolResults(this.state, results, tools);
  }

  private async *run(req: LlmRequest): AsyncGenerator<LlmEvent> {
    if (this.closed) throw new PluginError(PLUGIN, 'bad_request', 'the session is closed', false);
    if (req.signal.aborted) throw abortError();
    const before = structuredClone(this.state);
    const tools = new Map(req.tools.map((t) => [t.name, t]));
    let turn: Turn;
    try {
      turn = this.step(req.messages, tools);
    } catch (err) {
      this.state = before;
      this.log.error({ err }, 'script engine failed');
      throw new PluginError(PLUGIN, 'internal', 'the script engine failed', false, { cause: err });
    }
    let emitted = false;
    try {
      for (const delta of chunkText(turn.say.join(' '))) {
        await yieldToEventLoop();
        if (req.signal.aborted) throw abortError();
        emitted = true;
        yield { type: 'text', delta };
      }
      for (const call of turn.calls) {
        if (req.signal.aborted) throw abortError();
        emitted = true;
        yield { type: 'tool_call', call: { id: call.id, name: call.name, arguments: call.arguments } };
      }
      yield { type: 'done', reason: turn.calls.length > 0 ? 'tool_calls' : 'stop' };
    } catch (err) {
      if (!emitted) this.state = before;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const s = this.state;
    this.log.info(
      {
        scenario: this.engine.scenario.name,
        lastState: s.current,
        outcome: s.outcome ?? (s.status === 'ended' ? 'ended' : 'caller_left'),
        ...s.stats,
      },
      'script session closed',
    );
  }

  get callId(): string {
    return this.opts.callId;
  }
}
