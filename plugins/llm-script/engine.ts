/**
 * The dialog engine: runs a validated scenario for one call. It is a pure state machine over a
 * plain-data `DialogState` (so a session can snapshot and restore it): the caller's words or a
 * tool's result go in, a `Turn` comes out (lines to say, tool calls to make).
 *
 * One step of input:
 *  1. escalation phrases ("operator", "complaint"...) jump to their state from anywhere;
 *  2. the state's intents and FAQ entries are scored; the best one over the threshold wins;
 *  3. a collected slot is extracted;
 *  4. a yes/no answer is detected where the state asks for confirmation;
 *  5. global intents ("goodbye", "say that again");
 *  6. otherwise it is a misunderstanding: rephrase, and after maxRetries go to the
 *     escalation target (a human).
 * States that do not wait for the caller run straight on: a `say` + `next`, a tool call
 * (the turn ends until its result arrives), a deciding state (branches on slots, variables or
 * the last result), a transfer or a hang-up. A collected slot may have to be one of the
 * state's `choices` (picked by position, "the second one", or said).
 *
 * The engine never calls a tool the request did not offer: a tool state whose tool is missing
 * goes to its `ifUnavailable` state or to the scenario's fallback (a line, then a transfer or
 * a hang-up, whichever of those is itself allowed).
 */
import type { Logger } from '../../src/log.js';
import type { ToolSpec } from '../../src/plugins/api.js';
import { allowedValue, coerceArgs } from './args.js';
import { calendarDateIn } from './dates.js';
import { buildYesNoLexicon, detectYesNo, findAnyPhrase, IntentMatcher, negatedBefore, type YesNoLexicon } from './match.js';
import { normalize } from './normalize.js';
import { REPEAT_TARGET, stateKind, type Branch, type Condition, type Scenario, type StateSpec } from './scenario.js';
import { compileSlot, extractChoice, extractSlot, type CompiledSlot, type SlotValue } from './slots.js';
import { parseTemplate, renderSpeech, renderValue, resultField, type TemplateContext, type TemplatePart } from './template.js';

/** Tools offered by the current request, by name. */
export type ToolIndex = ReadonlyMap<string, ToolSpec>;

export interface ToolOutcome {
  ok: boolean;
  data?: unknown;
  error?: string;
}

export interface PlannedCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** What one step produces: lines in order, then tool calls in order. */
export interface Turn {
  say: string[];
  calls: PlannedCall[];
}

export type DialogStatus = 'new' | 'listening' | 'awaiting_tool' | 'ended';

export interface PendingCall {
  id: string;
  tool: string;
  /** The state whose step made the call (its branches read the result). */
  state: string;
  kind: 'tool' | 'transfer' | 'end';
  /** For a transfer: where to (so a lost transfer is re-issued to the same place). */
  destination?: string;
}

/** Everything the engine knows about one call: plain data, cloneable. */
export interface DialogState {
  status: DialogStatus;
  current: string;
  /** The last state that waited for the caller (where a lost tool call returns to). */
  inputState?: string;
  slots: Record<string, SlotValue>;
  /** Call variables: the session's, plus those the scenario set. */
  vars: Record<string, string>;
  /** Variables set but not yet sent (they go with the next tool call). */
  pendingVars: Record<string, string>;
  /** Failed attempts per state since it was entered. */
  retries: Record<string, number>;
  pending?: PendingCall;
  result?: unknown;
  error?: string;
  /** The caller's latest utterance. */
  input: string;
  /** The prompt of the state waiting for the caller (for "say that again"). */
  lastPrompt: string;
  /** Caller input that arrived before the dialog reached a state that waits for it. */
  queued?: string;
  seq: number;
  stats: { inputs: number; misunderstandings: number; escalations: number; toolCalls: number };
  outcome?: 'transferred' | 'hung_up' | 'ended';
}

export interface EngineOptions {
  /** The clock for relative dates (tests inject one). */
  now?: () => Date;
  /** Overrides of the scenario's settings (from the plugin config). */
  matchThreshold?: number | undefined;
  maxRetries?: number | undefined;
  log?: Logger | undefined;
}

const MAX_STEPS_PER_TURN = 32;
const SET_VARIABLE = 'set_variable';
const TRANSFER_CALL = 'transfer_call';
const END_CALL = 'end_call';
const SYNTHETIC_ERROR = 'the request could not be made';

/** One engine per scenario, shared by every call; all per-call data is in DialogState. */
export class DialogEngine {
  readonly scenario: Scenario;
  private readonly matcher: IntentMatcher;
  private readonly lexicon: YesNoLexicon;
  private readonly escalations: { phrases: string[][]; goto: string }[];
  private readonly slots = new Map<string, CompiledSlot>();
  private readonly templates = new Map<string, TemplatePart[]>();
  private readonly now: () => Date;
  readonly threshold: number;
  readonly maxRetries: number;
  private readonly log: Logger | undefined;

  constructor(scenario: Scenario, opts: EngineOptions = {}) {
    this.scenario = scenario;
    this.now = opts.now ?? (() => new Date());
    this.threshold = opts.matchThreshold ?? scenario.settings.matchThreshold;
    this.maxRetries = opts.maxRetries ?? scenario.settings.maxRetries;
    this.log = opts.log;
    this.matcher = new IntentMatcher(
      [
        ...Object.entries(scenario.intents).map(([id, i]) => ({ id, examples: i.examples, keywords: i.keywords })),
        ...Object.entries(scenario.faq).map(([id, f]) => ({ id: `faq:${id}`, examples: f.examples, keywords: f.keywords })),
      ],
      { keywordScore: scenario.settings.keywordScore },
    );
    this.lexicon = buildYesNoLexicon(scenario.lexicon.yes, scenario.lexicon.no);
    this.escalations = scenario.escalation.rules.map((r) => ({ phrases: r.phrases.map((p) => normalize(p)).filter((p) => p.length > 0), goto: r.goto }));
    for (const [name, spec] of Object.entries(scenario.slots)) this.slots.set(name, compileSlot(name, spec));
  }

  initialState(variables: Readonly<Record<string, string>> = {}): DialogState {
    return {
      status: 'new',
      current: this.scenario.start,
      slots: {},
      vars: { ...variables },
      pendingVars: {},
      retries: {},
      input: '',
      lastPrompt: '',
      seq: 0,
      stats: { inputs: 0, misunderstandings: 0, escalations: 0, toolCalls: 0 },
    };
  }

  /** The opening: enter the start state (only once; later calls produce nothing). */
  open(st: DialogState, tools: ToolIndex): Turn {
    const run = new Run(this, st, tools);
    if (st.status === 'new') run.enter(this.scenario.start);
    return run.out;
  }

  /** The caller said `text`. */
  onUser(st: DialogState, text: string, tools: ToolIndex): Turn {
    const run = new Run(this, st, tools);
    st.stats.inputs++;
    switch (st.status) {
      case 'new':
        st.queued = text;
        run.enter(this.scenario.start);
        break;
      case 'listening':
        run.input(text);
        break;
      case 'awaiting_tool': {
        // The call we asked for never ran (the turn was cut off): take the words where we last listened.
        const lost = st.pending!;
        delete st.pending;
        this.log?.debug({ tool: lost.tool, state: lost.state }, 'caller spoke before a tool result arrived; the call is dropped');
        if (lost.kind !== 'tool') {
          run.terminal(lost.destination);
        } else if (st.inputState) {
          st.current = st.inputState;
          st.status = 'listening';
          run.input(text);
        } else {
          st.queued = text;
          run.enter(lost.state);
        }
        break;
      }
      case 'ended':
        run.hangup('ended', false);
        break;
    }
    return run.out;
  }

  /** Results of the tool calls the last turn made, by tool call id. */
  onToolResults(st: DialogState, results: ReadonlyMap<string, ToolOutcome>, tools: ToolIndex): Turn {
    const run = new Run(this, st, tools);
    const pending = st.pending;
    if (st.status !== 'awaiting_tool' || !pending) {
      this.log?.debug('tool results with no call pending; nothing to do');
      return run.out;
    }
    const result = results.get(pending.id);
    if (!result) {
      this.log?.warn({ tool: pending.tool }, 'tool results arrived without the one the dialog waits for');
      return run.out;
    }
    delete st.pending;
    for (const [id, r] of results) if (id !== pending.id && !r.ok) this.log?.debug({ error: r.error }, 'a side call (set_variable) failed');
    run.result(pending, result);
    return run.out;
  }

  // --- helpers the Run uses ---

  template(t: string): TemplatePart[] {
    let parts = this.templates.get(t);
    if (!parts) {
      parts = parseTemplate(t);
      this.templates.set(t, parts);
    }
    return parts;
  }

  slot(name: string): CompiledSlot {
    const s = this.slots.get(name);
    if (!s) throw new Error(`slot "${name}" is not declared`); // validation makes this unreachable
    return s;
  }

  state(name: string): StateSpec {
    const s = this.scenario.states[name];
    if (!s) throw new Error(`state "${name}" is not declared`);
    return s;
  }

  matchIntent(tokens: readonly string[], allowed: ReadonlySet<string>): { id: string; score: number } | undefined {
    if (allowed.size === 0) return undefined;
    return this.matcher.best(tokens, this.threshold, allowed);
  }

  escalation(tokens: readonly string[], current: string): string | undefined {
    for (const rule of this.escalations) {
      if (rule.goto === current) continue;
      const m = findAnyPhrase(tokens, rule.phrases);
      if (m && m.score >= 0.85 && !negatedBefore(tokens, m.start)) return rule.goto;
    }
    return undefined;
  }

  yesNo(tokens: readonly string[]): 'yes' | 'no' | undefined {
    return detectYesNo(tokens, this.lexicon);
  }

  today(): ReturnType<typeof calendarDateIn> {
    return calendarDateIn(this.now(), this.scenario.settings.timeZone);
  }

  get logger(): Logger | undefined {
    return this.log;
  }
}

/** One step of the dialog: mutates the state, collects the output. */
class Run {
  readonly out: Turn = { say: [], calls: [] };
  private steps = 0;

  constructor(
    private readonly engine: DialogEngine,
    private readonly st: DialogState,
    private readonly tools: ToolIndex,
  ) {}

  private get scenario(): Scenario {
    return this.engine.scenario;
  }

  private ctx(): TemplateContext {
    return { slots: this.st.slots, vars: this.st.vars, result: this.st.result, error: this.st.error, input: this.st.input };
  }

  private render(t: string): string {
    return renderSpeech(this.engine.template(t), this.ctx());
  }

  private say(t: string | undefined): void {
    if (!t) return;
    const line = this.render(t);
    if (line) this.out.say.push(line);
  }

  private setVars(set: Readonly<Record<string, string>> | undefined): void {
    for (const [k, t] of Object.entries(set ?? {})) {
      const v = this.render(t);
      // A value the dialog does not have (a result field the tool did not return) is not sent.
      if (!v) continue;
      this.st.vars[k] = v;
      this.st.pendingVars[k] = v;
    }
  }

  /** Fill slots from templates (a value the dialog does not have leaves the slot empty). */
  private fill(fill: Readonly<Record<string, string>> | undefined): void {
    for (const [slot, t] of Object.entries(fill ?? {})) {
      const v = renderValue(this.engine.template(t), this.ctx());
      if (typeof v === 'number' && Number.isFinite(v)) this.st.slots[slot] = v;
      else if (typeof v === 'string' && v.trim() !== '') this.st.slots[slot] = v.trim();
      else if (typeof v === 'boolean') this.st.slots[slot] = String(v);
      else {
        if (v !== undefined && v !== '') this.engine.logger?.warn({ slot }, 'fill: the value is a list or an object, not a slot value; the slot stays empty');
        delete this.st.slots[slot];
      }
    }
  }

  /** A state's `choices`, rendered: a list of values (undefined when there is none). */
  private choiceList(t: string): string[] | undefined {
    const v = renderValue(this.engine.template(t), this.ctx());
    const items = (Array.isArray(v) ? v : [v])
      .filter((x): x is string | number | boolean => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean')
      .map((x) => String(x).trim())
      .filter((x) => x !== '');
    return items.length > 0 ? items : undefined;
  }

  private nextId(): string {
    this.st.seq += 1;
    return `script_${this.st.seq}`;
  }

  /** Queue the variables set so far as set_variable calls (before the call they accompany). */
  private flushVars(): void {
    const entries = Object.entries(this.st.pendingVars);
    this.st.pendingVars = {};
    if (entries.length === 0) return;
    const tool = this.tools.get(SET_VARIABLE);
    if (!tool) {
      this.engine.logger?.debug({ count: entries.length }, 'set_variable is not offered: variables stay local to the script');
      return;
    }
    for (const [name, value] of entries) {
      const args = coerceArgs({ name, value }, tool.parameters, { dropUnknown: true });
      if (!args.ok) {
        this.engine.logger?.warn({ variable: name, error: args.error }, 'set_variable arguments refused by its schema');
        continue;
      }
      this.out.calls.push({ id: this.nextId(), name: SET_VARIABLE, arguments: args.value });
    }
  }

  enter(name: string): void {
    if (++this.steps > MAX_STEPS_PER_TURN) {
      this.engine.logger?.error({ state: name }, 'the scenario ran too many states without waiting; falling back');
      this.fallback('step limit');
      return;
    }
    const spec = this.engine.state(name);
    this.st.current = name;
    for (const c of spec.clear ?? []) delete this.st.slots[c];
    this.fill(spec.fill);
    this.setVars(spec.set);
    const kind = stateKind(spec);
    this.engine.logger?.debug({ state: name, kind }, 'dialog state');
    switch (kind) {
      case 'pass':
        this.say(spec.say);
        this.enter(spec.next!);
        return;
      case 'input': {
        if (spec.collect && spec.skipIfFilled && this.st.slots[spec.collect] !== undefined) {
          this.enter(spec.next!);
          return;
        }
        this.st.retries[name] = 0;
        this.st.status = 'listening';
        this.st.inputState = name;
        this.st.lastPrompt = spec.say ? this.render(spec.say) : '';
        if (this.st.queued !== undefined) {
          // The caller already spoke (their first words, before this state was reached): answer them.
          const q = this.st.queued;
          delete this.st.queued;
          this.input(q);
        } else if (this.st.lastPrompt) {
          this.out.say.push(this.st.lastPrompt);
        }
        return;
      }
      case 'tool':
        this.callTool(name, spec);
        return;
      case 'decide': {
        this.say(spec.say);
        // Branches test slots and variables, or the last tool result.
        const last: ToolOutcome = this.st.error !== undefined ? { ok: false, error: this.st.error } : { ok: true, data: this.st.result };
        const branch = (spec.branches ?? []).find((b) => conditionHolds(b.when, last, this.st));
        if (!branch) {
          this.fallback(`no branch of ${name} matches`);
          return;
        }
        this.takeBranch(branch);
        return;
      }
      case 'transfer':
        this.say(spec.say);
        this.transfer(spec.transfer!, false);
        return;
      case 'end':
        this.say(spec.say);
        this.hangup(spec.end === true ? 'completed' : String(spec.end), true);
        return;
    }
  }

  private go(target: string): void {
    if (target === REPEAT_TARGET) {
      const spec = this.engine.state(this.st.current);
      const again = this.st.lastPrompt || (spec.say ? this.render(spec.say) : '');
      if (again) this.out.say.push(again);
      return;
    }
    this.enter(target);
  }

  /** The caller's words, in the state that waits for them. */
  input(text: string): void {
    const name = this.st.current;
    const spec = this.engine.state(name);
    this.st.input = text.trim();
    const tokens = normalize(text);
    if (tokens.length === 0) {
      this.fail(name, spec);
      return;
    }
    if (spec.escalate) {
      const to = this.engine.escalation(tokens, name);
      if (to) {
        this.st.stats.escalations++;
        this.engine.logger?.info({ state: name, to }, 'escalation phrase heard');
        this.enter(to);
        return;
      }
    }
    const allowed = new Set(Object.keys(spec.intents ?? {}));
    if (spec.faq !== undefined) for (const id of Object.keys(this.scenario.faq)) allowed.add(`faq:${id}`);
    const best = this.engine.matchIntent(tokens, allowed);
    if (best) {
      this.engine.logger?.debug({ state: name, intent: best.id, score: Number(best.score.toFixed(3)) }, 'intent');
      if (best.id.startsWith('faq:')) {
        this.say(this.scenario.faq[best.id.slice(4)]!.answer);
        this.enter(spec.faq!);
      } else {
        this.fillIntentSlots(best.id, text, tokens);
        this.go(spec.intents![best.id]!);
      }
      return;
    }
    if (spec.collect) {
      const choices = spec.choices !== undefined ? this.choiceList(spec.choices) : undefined;
      const r = extractChoice(this.engine.slot(spec.collect), text, tokens, { today: this.engine.today() }, choices);
      if (r.value !== undefined) {
        this.st.slots[spec.collect] = r.value;
        this.engine.logger?.debug({ state: name, slot: spec.collect, picked: r.picked }, 'slot filled');
        this.enter(spec.next!);
        return;
      }
      if ('rejected' in r && r.rejected !== undefined) this.engine.logger?.debug({ state: name, slot: spec.collect }, 'the answer is not among the choices');
    }
    if (spec.confirm) {
      const yn = this.engine.yesNo(tokens);
      if (yn) {
        this.go(spec.confirm[yn]);
        return;
      }
    }
    const globals = new Set(Object.keys(this.scenario.globalIntents).filter((g) => !(spec.intents && g in spec.intents)));
    const global = this.engine.matchIntent(tokens, globals);
    if (global) {
      this.engine.logger?.debug({ state: name, intent: global.id, score: Number(global.score.toFixed(3)) }, 'global intent');
      this.fillIntentSlots(global.id, text, tokens);
      this.go(this.scenario.globalIntents[global.id]!);
      return;
    }
    this.fail(name, spec);
  }

  private fillIntentSlots(intent: string, raw: string, tokens: readonly string[]): void {
    for (const slotName of this.scenario.intents[intent]?.slots ?? []) {
      delete this.st.slots[slotName];
      const slot = this.engine.slot(slotName);
      // Free text would swallow the request itself: it is only ever filled where it is asked for.
      if (slot.spec.type === 'text') continue;
      const v = extractSlot(slot, raw, tokens, { today: this.engine.today() });
      if (v !== undefined) this.st.slots[slotName] = v;
    }
  }

  private fail(name: string, spec: StateSpec): void {
    const n = (this.st.retries[name] ?? 0) + 1;
    this.st.retries[name] = n;
    this.st.stats.misunderstandings++;
    const max = spec.maxRetries ?? this.engine.maxRetries;
    this.engine.logger?.debug({ state: name, attempt: n, max }, 'not understood');
    if (n >= max) {
      const to = spec.onFail ?? this.scenario.escalation.onMaxRetries;
      if (to) this.enter(to);
      else this.fallback('retries exhausted');
      return;
    }
    const reprompts = spec.reprompt === undefined ? [] : Array.isArray(spec.reprompt) ? spec.reprompt : [spec.reprompt];
    if (reprompts.length > 0) {
      this.say(reprompts[Math.min(n, reprompts.length) - 1]);
    } else {
      this.say(this.scenario.didNotUnderstand);
      if (this.st.lastPrompt) this.out.say.push(this.st.lastPrompt);
    }
  }

  private callTool(name: string, spec: StateSpec): void {
    const step = spec.tool!;
    const tool = this.tools.get(step.name);
    if (!tool) {
      if (step.ifUnavailable) {
        this.engine.logger?.info({ tool: step.name, state: name }, 'tool not offered to this agent; taking ifUnavailable');
        this.enter(step.ifUnavailable);
      } else {
        this.fallback(`tool ${step.name} is not offered to this agent`);
      }
      return;
    }
    // The state's line ("Let me check") is said only when the tool can actually run.
    this.say(spec.say);
    const rendered: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(step.args)) rendered[k] = this.renderJson(v);
    const args = coerceArgs(rendered, tool.parameters);
    if (!args.ok) {
      // A missing order number or a value the tool refuses: the tool's error path, without the call.
      this.engine.logger?.warn({ tool: step.name, state: name, error: args.error }, 'tool arguments do not fit the tool schema');
      this.result({ id: '', tool: step.name, state: name, kind: 'tool' }, { ok: false, error: SYNTHETIC_ERROR });
      return;
    }
    this.flushVars();
    const id = this.nextId();
    this.out.calls.push({ id, name: step.name, arguments: args.value });
    this.st.pending = { id, tool: step.name, state: name, kind: 'tool' };
    this.st.status = 'awaiting_tool';
    this.st.stats.toolCalls++;
  }

  private renderJson(v: unknown): unknown {
    if (typeof v === 'string') return renderValue(this.engine.template(v), this.ctx());
    if (Array.isArray(v)) return v.map((x) => this.renderJson(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.renderJson(x)]));
    return v;
  }

  /** A tool's result: the state's first matching branch. */
  result(pending: PendingCall, r: ToolOutcome): void {
    if (pending.kind === 'transfer') {
      if (r.ok) {
        this.st.status = 'ended';
        this.st.outcome = 'transferred';
      } else {
        this.engine.logger?.warn({ error: r.error }, 'transfer failed');
        this.say(this.scenario.fallback.transferFailed);
        this.hangup('transfer failed', false);
      }
      return;
    }
    if (pending.kind === 'end') {
      this.st.status = 'ended';
      this.st.outcome = 'hung_up';
      return;
    }
    this.st.result = r.ok ? r.data : undefined;
    this.st.error = r.ok ? undefined : (r.error ?? 'failed');
    this.st.status = 'listening';
    const spec = this.engine.state(pending.state);
    const branch = (spec.branches ?? []).find((b) => conditionHolds(b.when, r, this.st));
    if (!branch) {
      this.fallback(`no branch of ${pending.state} matches the ${r.ok ? 'result' : 'error'}`);
      return;
    }
    this.takeBranch(branch);
  }

  /** A branch: fill slots, set variables, say its line (which may name them), forget `clear`, go on. */
  private takeBranch(b: Branch): void {
    this.fill(b.fill);
    this.setVars(b.set);
    this.say(b.say);
    for (const c of b.clear ?? []) delete this.st.slots[c];
    this.enter(b.goto);
  }

  /** Re-issue a terminal action whose call was lost (a transfer stays a transfer, without repeating lines). */
  terminal(destination: string | undefined): void {
    if (destination) this.transfer(destination, true);
    else this.hangup('completed', false);
  }

  private transfer(destination: string, isFallback: boolean): void {
    const tool = this.tools.get(TRANSFER_CALL);
    if (!tool || !allowedValue(tool.parameters, 'destination', destination)) {
      const why = !tool ? 'transfer_call is not offered to this agent' : `transfer destination "${destination}" is not allowed for this agent`;
      if (isFallback) {
        this.engine.logger?.warn({ destination }, `${why}; hanging up instead`);
        this.hangup('fallback', false);
      } else {
        this.fallback(why);
      }
      return;
    }
    const args = coerceArgs({ destination, reason: `scenario state ${this.st.current}` }, tool.parameters, { dropUnknown: true });
    if (!args.ok) {
      this.engine.logger?.warn({ error: args.error }, 'transfer_call arguments refused by its schema; hanging up');
      this.hangup('fallback', false);
      return;
    }
    this.flushVars();
    const id = this.nextId();
    this.out.calls.push({ id, name: TRANSFER_CALL, arguments: args.value });
    this.st.pending = { id, tool: TRANSFER_CALL, state: this.st.current, kind: 'transfer', destination };
    this.st.status = 'awaiting_tool';
  }

  hangup(reason: string, flush: boolean): void {
    const tool = this.tools.get(END_CALL);
    if (!tool) {
      this.engine.logger?.warn('end_call is not offered to this agent: the script stops talking but cannot hang up');
      this.st.status = 'ended';
      this.st.outcome = 'ended';
      return;
    }
    const args = coerceArgs({ reason }, tool.parameters, { dropUnknown: true });
    if (flush) this.flushVars();
    const id = this.nextId();
    this.out.calls.push({ id, name: END_CALL, arguments: args.ok ? args.value : {} });
    this.st.pending = { id, tool: END_CALL, state: this.st.current, kind: 'end' };
    this.st.status = 'awaiting_tool';
  }

  private fallback(why: string): void {
    this.engine.logger?.warn({ state: this.st.current, why }, 'scenario fallback');
    const fb = this.scenario.fallback;
    this.say(fb.say);
    if (fb.action === 'transfer' && fb.destination) this.transfer(fb.destination, true);
    else this.hangup('fallback', true);
  }
}

function looseEqual(a: unknown, b: string | number | boolean): boolean {
  if (a === b) return true;
  if (typeof a !== 'string' && typeof a !== 'number' && typeof a !== 'boolean') return false;
  return String(a).toLowerCase() === String(b).toLowerCase();
}

/**
 * Does a branch condition hold for a tool outcome (and, for `slot` / `var` conditions, the
 * dialog's slots and variables)?
 */
export function conditionHolds(c: Condition | undefined, r: ToolOutcome, dialog?: Pick<DialogState, 'slots' | 'vars'>): boolean {
  if (c === undefined) return true;
  if (c === 'ok') return r.ok;
  if (c === 'error') return !r.ok;
  if (c.ok !== undefined && c.ok !== r.ok) return false;
  if (c.error !== undefined && (r.ok || !(r.error ?? '').toLowerCase().includes(c.error.toLowerCase()))) return false;
  let subject: { v: unknown } | undefined;
  if (c.field !== undefined) {
    if (!r.ok) return false;
    subject = { v: resultField(r.data, c.field) };
  } else if (c.slot !== undefined) {
    subject = { v: dialog?.slots[c.slot] };
  } else if (c.var !== undefined) {
    const v = dialog?.vars[c.var];
    subject = { v: v === '' ? undefined : v };
  }
  if (subject) {
    const v = subject.v;
    if (c.exists !== undefined && (v !== undefined && v !== null) !== c.exists) return false;
    if (c.equals !== undefined && !looseEqual(v, c.equals)) return false;
    if (c.in !== undefined && !c.in.some((x) => looseEqual(v, x))) return false;
  }
  return true;
}
