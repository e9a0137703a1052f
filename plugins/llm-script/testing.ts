/**
 * Test support: a stand-in for the conversation loop. It drives an LlmSession the way the loop
 * does (user message -> respond() -> execute the tool calls -> tool messages -> respond() ...),
 * checks every response against the contract (a text delta stream, tool calls only from the
 * offered tools with arguments valid under their schemas, exactly one `done` at the end with
 * the right reason), and runs tools against an in-memory CRM.
 */
import { z } from 'zod';
import { silentLogger } from '../../src/log.js';
import type { ChatMessage, LlmEvent, LlmSession, ToolCall, ToolResult, ToolSpec } from '../../src/plugins/api.js';
import { parseScenario, type Scenario } from './scenario.js';
import { ScriptProvider } from './index.js';

/** The tools of the call-centre agent, with zod schemas like the tool plugins declare them. */
export const TOOL_SCHEMAS = {
  transfer_call: z.strictObject({ destination: z.enum(['operator', 'billing']), reason: z.string().optional() }),
  end_call: z.strictObject({ reason: z.string().optional() }),
  set_variable: z.strictObject({ name: z.string().min(1), value: z.string() }),
  get_variable: z.strictObject({ name: z.string().min(1) }),
  get_order_status: z.strictObject({ order_id: z.string().regex(/^\d{3,12}$/) }),
  change_address: z.strictObject({ order_id: z.string().regex(/^\d{3,12}$/), address: z.string().min(3) }),
  cancel_order: z.strictObject({ order_id: z.string().regex(/^\d{3,12}$/) }),
  create_ticket: z.strictObject({ summary: z.string().min(1), category: z.enum(['complaint', 'question', 'other']).optional() }),
  lookup_customer: z.strictObject({ phone: z.string().min(3) }),
} satisfies Record<string, z.ZodType>;

export type ToolName = keyof typeof TOOL_SCHEMAS;

export function toolSpecs(names: readonly ToolName[] = Object.keys(TOOL_SCHEMAS) as ToolName[]): ToolSpec[] {
  return names.map((name) => ({ name, description: name.replace(/_/g, ' '), parameters: z.toJSONSchema(TOOL_SCHEMAS[name]) }));
}

export type ToolHandler = (args: Record<string, unknown>) => ToolResult | Promise<ToolResult>;

export interface FakeOrder {
  status: string;
  eta?: string;
  address?: string;
  cancellable?: boolean;
}

/** An in-memory CRM with the tools-crm tool behaviour the scenario expects. */
export function fakeCrm(orders: Record<string, FakeOrder>): { handlers: Record<string, ToolHandler>; tickets: { summary: string; category?: string }[]; variables: Map<string, string> } {
  const tickets: { summary: string; category?: string }[] = [];
  const variables = new Map<string, string>();
  const find = (id: unknown): FakeOrder | undefined => orders[String(id)];
  const handlers: Record<string, ToolHandler> = {
    get_order_status: ({ order_id }) => {
      const o = find(order_id);
      return o ? { ok: true, data: { order_id, status: o.status, ...(o.eta ? { eta: o.eta } : {}) } } : { ok: false, error: 'no such order' };
    },
    change_address: ({ order_id, address }) => {
      const o = find(order_id);
      if (!o) return { ok: false, error: 'no such order' };
      if (o.status === 'delivered') return { ok: false, error: 'the order has already been delivered' };
      o.address = String(address);
      return { ok: true, data: { order_id, address } };
    },
    cancel_order: ({ order_id }) => {
      const o = find(order_id);
      if (!o) return { ok: false, error: 'no such order' };
      if (o.cancellable === false) return { ok: false, error: 'it has already shipped' };
      o.status = 'cancelled';
      return { ok: true, data: { order_id, status: 'cancelled' } };
    },
    create_ticket: ({ summary, category }) => {
      tickets.push({ summary: typeof summary === 'string' ? summary : JSON.stringify(summary), ...(typeof category === 'string' ? { category } : {}) });
      return { ok: true, data: { id: `T-${tickets.length}` } };
    },
    lookup_customer: ({ phone }) => (phone === '+15550100' ? { ok: true, data: { name: 'Ada' } } : { ok: false, error: 'unknown caller' }),
    set_variable: ({ name, value }) => {
      variables.set(String(name), String(value));
      return { ok: true, data: null };
    },
    transfer_call: () => ({ ok: true, data: null }),
    end_call: () => ({ ok: true, data: null }),
  };
  return { handlers, tickets, variables };
}

export interface TurnLog {
  /** Everything said in this caller turn (all rounds), deltas joined. */
  text: string;
  /** Text deltas received (to check the stream is really streamed). */
  deltas: number;
  /** Tool calls made in this caller turn, in order. */
  calls: ToolCall[];
  /** Model rounds this turn took. */
  rounds: number;
}

export class FakeLoop {
  readonly messages: ChatMessage[] = [];
  readonly allCalls: ToolCall[] = [];
  /** Set once end_call or transfer_call ran successfully. */
  ended: 'hung_up' | 'transferred' | undefined;

  constructor(
    readonly session: LlmSession,
    readonly tools: ToolSpec[],
    readonly handlers: Record<string, ToolHandler>,
    private readonly maxRounds = 5,
  ) {}

  /** The opening (no caller words yet). */
  open(): Promise<TurnLog> {
    return this.turn();
  }

  /** The caller says `text`. */
  say(text: string): Promise<TurnLog> {
    this.messages.push({ role: 'user', content: text });
    return this.turn();
  }

  private async turn(): Promise<TurnLog> {
    const log: TurnLog = { text: '', deltas: 0, calls: [], rounds: 0 };
    const texts: string[] = [];
    for (let round = 0; round < this.maxRounds; round++) {
      log.rounds++;
      const { text, deltas, calls } = await collect(this.session, this.messages, this.tools);
      log.deltas += deltas;
      if (text) texts.push(text.trim());
      this.messages.push({ role: 'assistant', content: text, ...(calls.length ? { toolCalls: calls } : {}) });
      if (calls.length === 0) break;
      for (const call of calls) {
        log.calls.push(call);
        this.allCalls.push(call);
        const handler = this.handlers[call.name];
        const result: ToolResult = handler ? await handler(call.arguments as Record<string, unknown>) : { ok: false, error: `no handler for ${call.name}` };
        if (result.ok && call.name === 'end_call') this.ended = 'hung_up';
        if (result.ok && call.name === 'transfer_call') this.ended = 'transferred';
        this.messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: JSON.stringify(result) });
      }
    }
    log.text = texts.join(' ');
    return log;
  }
}

/** One respond() call, checked against the contract. */
export async function collect(session: LlmSession, messages: readonly ChatMessage[], tools: readonly ToolSpec[], signal = new AbortController().signal): Promise<{ text: string; deltas: number; calls: ToolCall[]; events: LlmEvent[] }> {
  const events: LlmEvent[] = [];
  for await (const ev of session.respond({ system: 'ignored by the script', messages: [...messages], tools, signal })) events.push(ev);
  const doneIdx = events.findIndex((e) => e.type === 'done');
  if (doneIdx !== events.length - 1) throw new Error(`"done" must be the one last event: ${JSON.stringify(events)}`);
  const firstCall = events.findIndex((e) => e.type === 'tool_call');
  const lastText = events.map((e) => e.type).lastIndexOf('text');
  if (firstCall >= 0 && lastText > firstCall) throw new Error('text after a tool call');
  const calls = events.flatMap((e) => (e.type === 'tool_call' ? [e.call] : []));
  const done = events[doneIdx] as Extract<LlmEvent, { type: 'done' }>;
  if (done.reason !== (calls.length ? 'tool_calls' : 'stop')) throw new Error(`done reason ${done.reason} with ${calls.length} tool calls`);
  const offered = new Map(tools.map((t) => [t.name, t]));
  const ids = new Set<string>();
  for (const c of calls) {
    if (!offered.has(c.name)) throw new Error(`the session invented a tool: ${c.name}`);
    if (ids.has(c.id)) throw new Error(`duplicate tool call id ${c.id}`);
    ids.add(c.id);
    const schema = TOOL_SCHEMAS[c.name as ToolName];
    const parsed = schema.safeParse(c.arguments);
    if (!parsed.success) throw new Error(`invalid arguments for ${c.name}: ${JSON.stringify(c.arguments)}: ${parsed.error.message}`);
  }
  const deltas = events.filter((e): e is Extract<LlmEvent, { type: 'text' }> => e.type === 'text');
  return { text: deltas.map((d) => d.delta).join(''), deltas: deltas.length, calls, events };
}

export const FIXED_NOW = (): Date => new Date('2026-05-01T10:00:00Z'); // a Friday

export async function scriptSession(scenario: Scenario | string, opts: { now?: () => Date; variables?: Record<string, string>; matchThreshold?: number; maxRetries?: number } = {}): Promise<LlmSession & { snapshot?: () => unknown }> {
  const sc = typeof scenario === 'string' ? parseScenario(scenario) : scenario;
  const provider = new ScriptProvider(sc, silentLogger, { now: opts.now ?? FIXED_NOW, matchThreshold: opts.matchThreshold, maxRetries: opts.maxRetries });
  return provider.session({ callId: 'test-call', agent: 'callcentre', language: 'en-US', variables: opts.variables ?? {} });
}

export function calledNames(calls: readonly ToolCall[]): string[] {
  return calls.map((c) => c.name);
}
