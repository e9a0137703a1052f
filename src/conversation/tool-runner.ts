/**
 * Runs the tool calls a model asks for, and only the ones it may: a tool must be on the
 * agent's allowlist and its arguments must pass the tool's schema, else the model is told
 * why in words it can act on (and nothing runs). Each call gets a timeout; interruptible
 * tools run under the turn's signal (barge-in cancels them), others under the call's signal
 * as uninterruptible work (a booking in flight completes even if the caller talks over the
 * agent). A filler phrase plays if a tool has not answered quickly.
 */
import type { TurnContext } from '../agents/agent.js';
import type { Logger } from '../log.js';
import { isAbortError, type ToolCall, type ToolContext, type ToolDefinition, type ToolResult, type ToolSpec } from '../plugins/api.js';
import { z } from 'zod';

export const DEFAULT_TOOL_TIMEOUT_MS = 8000;
/** A tool slower than this gets a filler phrase. */
export const FILLER_AFTER_MS = 700;

export interface ToolOutcome {
  call: ToolCall;
  result: ToolResult;
  durationMs: number;
  /** Why it did not run or failed, for metrics: refused (not allowed), invalid (arguments), timeout, error, aborted. */
  failure?: 'refused' | 'invalid' | 'timeout' | 'error' | 'aborted';
}

export class ToolRegistry {
  private readonly byName = new Map<string, ToolDefinition<unknown>>();

  add(def: ToolDefinition<unknown>, source: string): void {
    if (this.byName.has(def.name)) throw new Error(`tool "${def.name}" from ${source} is already provided by another plugin`);
    this.byName.set(def.name, def);
  }

  get(name: string): ToolDefinition<unknown> | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** JSON-schema specs of the allowed tools, for the model. */
  specs(allowed: readonly string[]): ToolSpec[] {
    return allowed
      .map((n) => this.byName.get(n))
      .filter((d): d is ToolDefinition<unknown> => d !== undefined)
      .map((d) => ({ name: d.name, description: d.description, parameters: toJsonSchema(d.parameters) }));
  }
}

function toJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete js.$schema;
  return js;
}

export interface RunToolsOptions {
  registry: ToolRegistry;
  allowed: ReadonlySet<string>;
  ctx: TurnContext;
  callerNumber: string;
  log: Logger;
  /** Plays a filler phrase (resolves when queued); called at most once per batch. */
  filler?: (phrase: string | undefined) => void;
}

/** Run a batch of tool calls in order (later calls may depend on earlier effects). */
export async function runTools(calls: readonly ToolCall[], opts: RunToolsOptions): Promise<ToolOutcome[]> {
  const out: ToolOutcome[] = [];
  let fillerPlayed = false;
  for (const call of calls) {
    const started = performance.now();
    const def = opts.registry.get(call.name);
    if (!def || !opts.allowed.has(call.name)) {
      out.push({
        call,
        durationMs: 0,
        failure: 'refused',
        result: { ok: false, error: `The tool "${call.name}" is not available to you. Use only the tools you were given.` },
      });
      opts.log.warn({ tool: call.name }, 'model asked for a tool that is not allowed');
      continue;
    }
    const parsed = def.parameters.safeParse(call.arguments ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
      out.push({ call, durationMs: 0, failure: 'invalid', result: { ok: false, error: `Invalid arguments for ${def.name}: ${problems}` } });
      continue;
    }
    const timeoutMs = def.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
    const interruptible = def.interruptible ?? true;
    const fillerTimer =
      opts.filler && !fillerPlayed
        ? setTimeout(() => {
            fillerPlayed = true;
            opts.filler?.(def.filler);
          }, FILLER_AFTER_MS)
        : undefined;
    const execute = async (base: AbortSignal): Promise<ToolOutcome> => {
      const signal = AbortSignal.any([base, AbortSignal.timeout(timeoutMs)]);
      const tctx: ToolContext = {
        callId: opts.ctx.call.callId,
        turn: opts.ctx.turn,
        idempotencyKey: `${opts.ctx.call.callId}:${opts.ctx.turn}:${call.id}`,
        callerNumber: opts.callerNumber,
        variables: opts.ctx.variables,
        signal,
        log: opts.log.child({ tool: def.name }),
      };
      try {
        const result = await raceAbort(def.execute(parsed.data, tctx), signal);
        return { call, result, durationMs: performance.now() - started };
      } catch (err) {
        const durationMs = performance.now() - started;
        if (base.aborted) return { call, durationMs, failure: 'aborted', result: { ok: false, error: 'The request was cancelled.' } };
        if (signal.aborted || isAbortError(err)) {
          return { call, durationMs, failure: 'timeout', result: { ok: false, error: `${def.name} did not answer in time.`, retryable: true } };
        }
        opts.log.error({ tool: def.name, err: err instanceof Error ? err.message : String(err) }, 'tool threw');
        return { call, durationMs, failure: 'error', result: { ok: false, error: `${def.name} failed unexpectedly.`, retryable: true } };
      }
    };
    try {
      const outcome = interruptible ? await execute(opts.ctx.signal) : await opts.ctx.uninterruptible((callSignal) => execute(callSignal));
      out.push(outcome);
    } finally {
      clearTimeout(fillerTimer);
    }
    if (opts.ctx.signal.aborted && interruptible) break;
  }
  return out;
}

/** Settle with `work`, or reject as soon as `signal` aborts (a tool that ignores its signal). */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
