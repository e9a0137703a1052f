/**
 * The scenario file: a YAML state machine the script engine runs instead of a language model.
 * Validated in two passes, and every problem is reported at once with its path in the file
 * (and its line): the shape with zod, then the cross-references (every `goto` names a state,
 * every collected slot is declared, every template names a known slot, no state loops back
 * to itself without waiting for the caller...).
 *
 * See README.md in this folder for the format.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { isValidTimeZone } from './dates.js';
import { parseTemplate, TemplateSyntaxError, type TemplateExpr } from './template.js';

const Ident = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'letters, digits and "_", starting with a letter');
const Phrase = z.string().trim().min(1);
const Template = z.string().trim().min(1);
/** A state name, or "$repeat" (say the current prompt again) where a caller input leads. */
const Target = z.string().min(1);
const ToolName = z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only');
const Scalar = z.union([z.string(), z.number(), z.boolean()]);

export const SlotSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('number'),
    min: z.number().optional(),
    max: z.number().optional(),
  }),
  z.strictObject({
    type: z.literal('digits'),
    minLength: z.int().min(1).max(64).default(1),
    maxLength: z.int().min(1).max(64).default(32),
  }),
  z.strictObject({
    type: z.literal('date'),
    /** How a date said without a year or week resolves: the next one, the last one, or this one. */
    prefer: z.enum(['future', 'past', 'any']).default('future'),
  }),
  z.strictObject({
    type: z.literal('time'),
    /** An hour said without a.m./p.m. is the first of h and h+12 at or after this (default 07:00). */
    earliest: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a 24-hour time "HH:MM"')
      .default('07:00'),
  }),
  z.strictObject({ type: z.literal('name') }),
  z.strictObject({
    type: z.literal('text'),
    minWords: z.int().min(1).max(50).default(1),
    /** Lead-ins removed from the answer ("my new address is"). */
    stripPrefixes: z.array(Phrase).default([]),
  }),
  z.strictObject({
    type: z.literal('enum'),
    /** Canonical value -> synonyms (the value itself is always a synonym). */
    values: z.record(z.string().min(1), z.array(Phrase).default([])).refine((v) => Object.keys(v).length > 0, 'needs at least one value'),
  }),
]);
export type SlotSpec = z.output<typeof SlotSchema>;
export const SLOT_TYPES = ['number', 'digits', 'date', 'time', 'name', 'text', 'enum'] as const;

const IntentSchema = z
  .strictObject({
    examples: z.array(Phrase).default([]),
    keywords: z.array(Phrase).default([]),
    /** Slots filled from the same utterance when this intent is recognised ("where is order 427"). */
    slots: z.array(Ident).default([]),
  })
  .refine((i) => i.examples.length + i.keywords.length > 0, 'an intent needs at least one example or keyword');

const FaqSchema = z
  .strictObject({
    examples: z.array(Phrase).default([]),
    keywords: z.array(Phrase).default([]),
    answer: Template,
  })
  .refine((i) => i.examples.length + i.keywords.length > 0, 'a FAQ entry needs at least one example or keyword');

const ConditionSchema = z.union([
  z.enum(['ok', 'error']),
  z
    .strictObject({
      ok: z.boolean().optional(),
      /** Dotted path into the result data ("status", "items.0.state"). */
      field: z.string().min(1).optional(),
      /** Or a slot of the dialog ("vehicle"). */
      slot: Ident.optional(),
      /** Or a call variable ("intent"). */
      var: Ident.optional(),
      equals: Scalar.optional(),
      in: z.array(Scalar).min(1).optional(),
      exists: z.boolean().optional(),
      /** The error text contains this (case-insensitive). */
      error: z.string().min(1).optional(),
    })
    .refine((c) => [c.field, c.slot, c.var].filter((x) => x !== undefined).length <= 1, 'a condition tests one of field, slot or var')
    .refine(
      (c) => c.field !== undefined || c.slot !== undefined || c.var !== undefined || (c.equals === undefined && c.in === undefined && c.exists === undefined),
      'equals, in and exists need a field, slot or var',
    ),
]);
export type Condition = z.output<typeof ConditionSchema>;

const BranchSchema = z.strictObject({
  /** Omitted: always matches (the default branch, last). */
  when: ConditionSchema.optional(),
  say: Template.optional(),
  set: z.record(Ident, Template).optional(),
  clear: z.array(Ident).optional(),
  /** Slots to fill from templates (e.g. from the tool result), before `set` and `say`. */
  fill: z.record(Ident, Template).optional(),
  goto: Target,
});
export type Branch = z.output<typeof BranchSchema>;

const ToolStepSchema = z.strictObject({
  name: ToolName,
  /** Argument templates; types are coerced to the tool's JSON Schema at call time. */
  args: z.record(z.string(), z.json()).default({}),
  /** Where to go when this agent is not allowed the tool (default: the scenario's fallback). */
  ifUnavailable: Target.optional(),
});

export const StateSchema = z.strictObject({
  /** Said on entering the state (the prompt of a state that waits for the caller). */
  say: Template.optional(),
  /** Said instead after a misunderstanding: one per failed attempt, the last one repeats. */
  reprompt: z.union([Template, z.array(Template).min(1)]).optional(),
  /** Intent name -> target state. */
  intents: z.record(Ident, Target).optional(),
  /** Answer a question from the FAQ here, then go to this state. */
  faq: Target.optional(),
  /** Wait for this slot's value, then go to `next`. */
  collect: Ident.optional(),
  /** Skip the question when the slot is already filled (default true). */
  skipIfFilled: z.boolean().default(true),
  /**
   * A template giving the list the answer must come from (e.g. "{{result.free_start_times}}"):
   * the caller may pick by position ("the first one", "the second", "the last one", "the
   * earliest"), or say a value, which is taken only if it is in the list. An empty list
   * restricts nothing.
   */
  choices: Template.optional(),
  confirm: z.strictObject({ yes: Target, no: Target }).optional(),
  next: Target.optional(),
  tool: ToolStepSchema.optional(),
  /** Tried in order on the tool result; the first that matches is taken. */
  branches: z.array(BranchSchema).min(1).optional(),
  /** Hand the caller to this transfer destination (transfer_call) and stop. */
  transfer: z.string().min(1).optional(),
  /** Hang up (end_call) with this reason (true: "completed"). */
  end: z.union([z.literal(true), z.string().min(1)]).optional(),
  /** Call variables to set (set_variable), sent with the next tool call. */
  set: z.record(Ident, Template).optional(),
  /** Slots to forget on entering the state. */
  clear: z.array(Ident).optional(),
  /** Slots to fill from templates on entering the state (after `clear`, before `set`). */
  fill: z.record(Ident, Template).optional(),
  /** Failed attempts here before `onFail` (default: settings.maxRetries). */
  maxRetries: z.int().min(1).max(10).optional(),
  onFail: Target.optional(),
  /** Whether escalation phrases are listened for in this state (default true). */
  escalate: z.boolean().default(true),
});
export type StateSpec = z.output<typeof StateSchema>;

const SettingsSchema = z.strictObject({
  /** Score (0..1) an intent must reach. */
  matchThreshold: z.number().min(0.1).max(1).default(0.5),
  /** Failed attempts in one state before escalation.onMaxRetries. */
  maxRetries: z.int().min(1).max(10).default(2),
  /** What a keyword hit scores (times its similarity). */
  keywordScore: z.number().min(0.1).max(1).default(0.8),
  /** IANA zone that "today" is in (default: the server's). */
  timeZone: z
    .string()
    .refine((tz) => isValidTimeZone(tz), 'not a known IANA time zone')
    .optional(),
});

const FallbackSchema = z.strictObject({
  /** Said when the scenario needs a tool this agent is not allowed, or has no way forward. */
  say: Template.default("I'm sorry, I can't help with that on this line."),
  action: z.enum(['transfer', 'hangup']).default('hangup'),
  /** Transfer destination when action is transfer. */
  destination: z.string().min(1).optional(),
  /** Said when a transfer fails, before hanging up. */
  transferFailed: Template.default("I'm sorry, I couldn't connect you right now. Please call back later. Goodbye."),
});

export const ScenarioSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().min(1),
  description: z.string().optional(),
  /** BCP-47 language of the phrases (a mismatch with the agent's language is logged). */
  language: z.string().optional(),
  start: Target,
  settings: SettingsSchema.default(SettingsSchema.parse({})),
  /** Extra phrases meaning yes / no, besides the built-in ones. */
  lexicon: z.strictObject({ yes: z.array(Phrase).default([]), no: z.array(Phrase).default([]) }).default({ yes: [], no: [] }),
  escalation: z
    .strictObject({
      /** Checked first in every state (unless the state says escalate: false). */
      rules: z.array(z.strictObject({ phrases: z.array(Phrase).min(1), goto: Target })).default([]),
      /** Where a caller goes after maxRetries failed attempts in a state. */
      onMaxRetries: Target.optional(),
    })
    .default({ rules: [] }),
  fallback: FallbackSchema.default(FallbackSchema.parse({})),
  /** Said before the prompt after a misunderstanding when the state has no reprompt. */
  didNotUnderstand: Template.default("Sorry, I didn't catch that."),
  /** Intents recognised in every state that waits for the caller (after the state's own). */
  globalIntents: z.record(Ident, Target).default({}),
  intents: z.record(Ident, IntentSchema).default({}),
  slots: z.record(Ident, SlotSchema).default({}),
  faq: z.record(Ident, FaqSchema).default({}),
  states: z.record(Ident, StateSchema).refine((s) => Object.keys(s).length > 0, 'a scenario needs at least one state'),
});
export type Scenario = z.output<typeof ScenarioSchema>;

export const REPEAT_TARGET = '$repeat';

export type StateKind = 'input' | 'tool' | 'decide' | 'pass' | 'transfer' | 'end';

/**
 * What a state does, from the fields it has (checked unambiguous by validation). A state with
 * branches but no tool decides at once: its branches test slots, variables or the last result.
 */
export function stateKind(s: StateSpec): StateKind {
  if (s.transfer !== undefined) return 'transfer';
  if (s.end !== undefined) return 'end';
  if (s.tool !== undefined) return 'tool';
  if (s.intents !== undefined || s.collect !== undefined || s.confirm !== undefined || s.faq !== undefined) return 'input';
  if (s.branches !== undefined) return 'decide';
  return 'pass';
}

// --- errors --------------------------------------------------------------------------------------

export interface ScenarioIssue {
  /** Dotted path into the file, e.g. "states.ask_order.next". */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  constructor(
    readonly file: string,
    readonly issues: readonly ScenarioIssue[],
  ) {
    super(
      `scenario ${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` +
        issues.map((i) => `  - ${i.path || '(top level)'}${i.line ? ` (line ${i.line})` : ''}: ${i.message}`).join('\n'),
    );
  }
}

function dotted(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
}

function zodIssueMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator === 'type') return `unknown slot type (types: ${SLOT_TYPES.join(', ')})`;
      return issue.message;
    case 'invalid_type':
      return issue.input === undefined ? `expected ${issue.expected}, but it is missing` : `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

// --- cross references ------------------------------------------------------------------------------

interface RawIssue {
  path: (string | number)[];
  message: string;
}

/** Every reference problem in a shape-valid scenario. */
export function checkReferences(s: Scenario): RawIssue[] {
  const issues: RawIssue[] = [];
  const states = new Set(Object.keys(s.states));
  const slots = new Set(Object.keys(s.slots));
  const intents = new Set(Object.keys(s.intents));
  const stateList = [...states].join(', ');

  const target = (t: string, path: (string | number)[], allowRepeat = false): void => {
    if (t === REPEAT_TARGET && allowRepeat) return;
    if (!states.has(t)) issues.push({ path, message: `unknown state "${t}" (states: ${stateList})` });
  };
  const slot = (name: string, path: (string | number)[]): void => {
    if (!slots.has(name)) issues.push({ path, message: `unknown slot "${name}"${slots.size ? ` (slots: ${[...slots].join(', ')})` : ' (no slots are declared)'}` });
  };
  const template = (t: string, path: (string | number)[]): void => {
    let exprs: TemplateExpr[];
    try {
      exprs = parseTemplate(t).flatMap((p) => ('expr' in p ? [p.expr] : []));
    } catch (err) {
      issues.push({ path, message: err instanceof TemplateSyntaxError ? err.message : String(err) });
      return;
    }
    for (const e of exprs) {
      if (e.root === 'slot' && !slots.has(e.path[0]!)) {
        issues.push({ path, message: `template names unknown slot "${e.path[0]!}" (use var.NAME for call variables, result.FIELD for tool results)` });
      }
    }
  };
  const templateJson = (v: unknown, path: (string | number)[]): void => {
    if (typeof v === 'string') template(v, path);
    else if (Array.isArray(v)) v.forEach((x, i) => templateJson(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) templateJson(x, [...path, k]);
  };

  target(s.start, ['start']);
  s.escalation.rules.forEach((r, i) => target(r.goto, ['escalation', 'rules', i, 'goto']));
  if (s.escalation.onMaxRetries) target(s.escalation.onMaxRetries, ['escalation', 'onMaxRetries']);
  if (s.fallback.action === 'transfer' && !s.fallback.destination) {
    issues.push({ path: ['fallback', 'destination'], message: 'a transfer fallback needs a destination' });
  }
  for (const [name, t] of Object.entries(s.globalIntents)) {
    if (!intents.has(name)) issues.push({ path: ['globalIntents', name], message: `unknown intent "${name}"` });
    target(t, ['globalIntents', name], true);
  }
  for (const [name, intent] of Object.entries(s.intents)) intent.slots.forEach((sl, i) => slot(sl, ['intents', name, 'slots', i]));
  for (const [id, f] of Object.entries(s.faq)) template(f.answer, ['faq', id, 'answer']);
  for (const [name, spec] of Object.entries(s.slots)) {
    if (spec.type === 'digits' && spec.minLength > spec.maxLength) issues.push({ path: ['slots', name, 'minLength'], message: 'minLength is greater than maxLength' });
    if (spec.type === 'number' && spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
      issues.push({ path: ['slots', name, 'min'], message: 'min is greater than max' });
    }
  }

  for (const [name, st] of Object.entries(s.states)) {
    const p = (...rest: (string | number)[]): (string | number)[] => ['states', name, ...rest];
    const kinds = [
      st.transfer !== undefined && 'transfer',
      st.end !== undefined && 'end',
      st.tool !== undefined && 'tool',
      (st.intents !== undefined || st.collect !== undefined || st.confirm !== undefined || st.faq !== undefined) && 'input (intents/collect/confirm/faq)',
    ].filter(Boolean);
    if (st.branches && st.tool === undefined && kinds.length > 0) kinds.push('branches (a deciding state)');
    if (kinds.length > 1) issues.push({ path: p(), message: `a state does one thing; this one has ${kinds.join(' and ')}` });
    const kind = stateKind(st);
    if (st.say) template(st.say, p('say'));
    const reprompts = st.reprompt === undefined ? [] : Array.isArray(st.reprompt) ? st.reprompt : [st.reprompt];
    reprompts.forEach((r, i) => template(r, Array.isArray(st.reprompt) ? p('reprompt', i) : p('reprompt')));
    for (const [k, v] of Object.entries(st.set ?? {})) template(v, p('set', k));
    st.clear?.forEach((c, i) => slot(c, p('clear', i)));
    for (const [k, v] of Object.entries(st.fill ?? {})) {
      slot(k, p('fill', k));
      template(v, p('fill', k));
    }
    if (st.choices !== undefined) {
      template(st.choices, p('choices'));
      if (st.collect === undefined) issues.push({ path: p('choices'), message: '"choices" only applies to a state that collects a slot' });
    }
    if (st.onFail) target(st.onFail, p('onFail'));

    if (kind === 'input') {
      for (const [intent, t] of Object.entries(st.intents ?? {})) {
        if (!intents.has(intent)) issues.push({ path: p('intents', intent), message: `unknown intent "${intent}"${intents.size ? ` (intents: ${[...intents].join(', ')})` : ''}` });
        target(t, p('intents', intent), true);
      }
      if (st.faq !== undefined) {
        target(st.faq, p('faq'));
        if (Object.keys(s.faq).length === 0) issues.push({ path: p('faq'), message: 'the scenario has no faq entries' });
      }
      if (st.confirm) {
        target(st.confirm.yes, p('confirm', 'yes'), true);
        target(st.confirm.no, p('confirm', 'no'), true);
      }
      if (st.collect !== undefined) {
        slot(st.collect, p('collect'));
        if (st.next === undefined) issues.push({ path: p('next'), message: 'a state that collects a slot needs "next"' });
        if (st.confirm) issues.push({ path: p('confirm'), message: 'collect a slot and confirm it in separate states' });
      }
      if (st.next !== undefined) {
        if (st.collect === undefined) issues.push({ path: p('next'), message: '"next" in a state that waits for the caller only follows a collected slot' });
        else target(st.next, p('next'));
      }
    } else {
      if (st.next !== undefined && kind !== 'pass') issues.push({ path: p('next'), message: `a ${kind} state does not use "next"` });
      for (const k of ['reprompt', 'maxRetries', 'onFail'] as const) {
        if (st[k] !== undefined) issues.push({ path: p(k), message: `"${k}" only applies to a state that waits for the caller` });
      }
    }
    if (kind === 'pass') {
      if (st.next === undefined) issues.push({ path: p(), message: 'the state has no way forward: give it intents, collect, confirm, faq, next, tool, transfer or end' });
      else target(st.next, p('next'));
    }
    if (kind === 'tool') {
      if (!st.branches) issues.push({ path: p('branches'), message: 'a tool state needs branches for the result' });
      templateJson(st.tool!.args, p('tool', 'args'));
      if (st.tool!.ifUnavailable) target(st.tool!.ifUnavailable, p('tool', 'ifUnavailable'));
    }
    st.branches?.forEach((b, i) => {
      target(b.goto, p('branches', i, 'goto'));
      if (b.when !== undefined && typeof b.when === 'object' && b.when.slot !== undefined) slot(b.when.slot, p('branches', i, 'when', 'slot'));
      if (b.say) template(b.say, p('branches', i, 'say'));
      for (const [k, v] of Object.entries(b.set ?? {})) template(v, p('branches', i, 'set', k));
      b.clear?.forEach((c, j) => slot(c, p('branches', i, 'clear', j)));
      for (const [k, v] of Object.entries(b.fill ?? {})) {
        slot(k, p('branches', i, 'fill', k));
        template(v, p('branches', i, 'fill', k));
      }
    });
    if (st.branches && st.branches.at(-1)!.when !== undefined) {
      const covers = (c: Condition | undefined): 'ok' | 'error' | 'all' | undefined =>
        c === undefined
          ? 'all'
          : c === 'ok' || c === 'error'
            ? c
            : c.field === undefined && c.slot === undefined && c.var === undefined && c.error === undefined && c.ok !== undefined
              ? c.ok
                ? 'ok'
                : 'error'
              : undefined;
      const covered = new Set(st.branches.map((b) => covers(b.when)));
      if (!covered.has('all') && !(covered.has('ok') && covered.has('error'))) {
        issues.push({ path: p('branches'), message: 'no branch catches every result: end with a branch without "when", or cover both ok and error' });
      }
    }
  }

  // States that move on without waiting (pass, decide, or collect with an already filled slot) must not loop.
  const edges = new Map<string, string[]>();
  for (const [name, st] of Object.entries(s.states)) {
    const kind = stateKind(st);
    if (kind === 'pass' && st.next) edges.set(name, [st.next]);
    if (kind === 'decide') edges.set(name, (st.branches ?? []).map((b) => b.goto));
    if (kind === 'input' && st.collect && st.next && st.skipIfFilled && !(st.clear ?? []).includes(st.collect)) edges.set(name, [st.next]);
  }
  const reported = new Set<string>();
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (name: string): void => {
    if (done.has(name)) return;
    const at = path.indexOf(name);
    if (at >= 0) {
      const cycle = path.slice(at);
      const key = [...cycle].sort().join(',');
      if (!reported.has(key)) {
        reported.add(key);
        issues.push({ path: ['states', name], message: `states loop without waiting for the caller: ${[...cycle, name].join(' -> ')}` });
      }
      return;
    }
    path.push(name);
    for (const next of edges.get(name) ?? []) if (edges.has(next)) visit(next);
    path.pop();
    done.add(name);
  };
  for (const name of edges.keys()) visit(name);
  return issues;
}

/** States no path from `start` (or an escalation) reaches: worth a warning, not an error. */
export function unreachableStates(s: Scenario): string[] {
  const seen = new Set<string>();
  const queue = [s.start, ...s.escalation.rules.map((r) => r.goto), ...Object.values(s.globalIntents)];
  if (s.escalation.onMaxRetries) queue.push(s.escalation.onMaxRetries);
  while (queue.length) {
    const name = queue.pop()!;
    if (seen.has(name) || !s.states[name]) continue;
    seen.add(name);
    const st = s.states[name];
    queue.push(...Object.values(st.intents ?? {}), ...(st.branches ?? []).map((b) => b.goto));
    for (const t of [st.faq, st.next, st.onFail, st.confirm?.yes, st.confirm?.no, st.tool?.ifUnavailable]) if (t) queue.push(t);
  }
  return Object.keys(s.states).filter((n) => !seen.has(n));
}

// --- loading ------------------------------------------------------------------------------------

/** Parse and validate scenario YAML text; throws ScenarioError listing every problem. */
export function parseScenario(text: string, file = '<scenario>'): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]!}`, line: lineCounter.linePos(e.pos[0]).line })),
    );
  }
  const lineOf = (path: readonly (string | number | symbol)[]): number | undefined => {
    // The deepest node on the path that exists (a missing key points at its parent).
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as (string | number)[]);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const toIssue = (path: readonly (string | number | symbol)[], message: string): ScenarioIssue => {
    const line = lineOf(path);
    return { path: dotted(path), message, ...(line !== undefined ? { line } : {}) };
  };
  const raw: unknown = doc.toJS({ maxAliasCount: 1000 });
  const parsed = ScenarioSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new ScenarioError(
      file,
      parsed.error.issues.map((i) => toIssue(i.path, zodIssueMessage(i))),
    );
  }
  const refs = checkReferences(parsed.data);
  if (refs.length > 0) throw new ScenarioError(file, refs.map((i) => toIssue(i.path, i.message)));
  return parsed.data;
}

export async function loadScenarioFile(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(file, [{ path: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseScenario(text, file);
}
