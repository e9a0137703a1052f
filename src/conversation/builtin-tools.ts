/**
 * Call-control tools every agent may be given: transfer to an allowlisted destination, end
 * the call, set and get call variables. Transfer and hang-up are not done inside the tool:
 * they are requested and carried out once the agent's reply has been spoken, so the caller
 * hears "I'm connecting you to a colleague" before the line changes.
 */
import { z } from 'zod';
import type { DialplanTarget } from '../config/schema.js';
import { defineTool, type ToolDefinition } from '../plugins/api.js';

export const BUILTIN_TOOL_NAMES = ['transfer_call', 'end_call', 'set_variable', 'get_variable'] as const;

export type CallAction = { kind: 'transfer'; destination: string; target: DialplanTarget; reason: string } | { kind: 'hangup'; reason: string };

const VARIABLE_NAME = z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'lower-case letters, digits and "_", starting with a letter');

/** Build the built-ins for one call: `request` receives the transfer/hang-up to do after speaking. */
export function builtinTools(transfer: Readonly<Record<string, DialplanTarget>>, request: (a: CallAction) => void): ToolDefinition<any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const destinations = Object.keys(transfer);
  const described = destinations.map((d) => `${d}${transfer[d]?.description ? ` (${transfer[d].description})` : ''}`).join(', ');
  return [
    defineTool({
      name: 'transfer_call',
      description:
        destinations.length > 0
          ? `Transfer the caller to a human. Allowed destinations: ${described}. Say a short sentence first.`
          : 'Transfer the caller to a human. (No destination is configured for this agent.)',
      parameters: z.strictObject({
        destination: z.string().describe(`one of: ${destinations.join(', ') || '(none)'}`),
        reason: z.string().max(200).optional(),
      }),
      interruptible: false,
      async execute(args) {
        const target = transfer[args.destination];
        if (!target) {
          return { ok: false, error: `"${args.destination}" is not a transfer destination. Allowed: ${destinations.join(', ') || 'none'}.` };
        }
        request({ kind: 'transfer', destination: args.destination, target, reason: args.reason ?? 'requested' });
        return { ok: true, data: { transferring_to: args.destination } };
      },
    }),
    defineTool({
      name: 'end_call',
      description: 'End the call after your reply has been spoken. Say goodbye first.',
      parameters: z.strictObject({ reason: z.string().max(200).optional() }),
      interruptible: false,
      async execute(args) {
        request({ kind: 'hangup', reason: args.reason ?? 'completed' });
        return { ok: true, data: { ending: true } };
      },
    }),
    defineTool({
      name: 'set_variable',
      description: 'Remember a value for this call (it travels with the caller on transfer).',
      parameters: z.strictObject({ name: VARIABLE_NAME, value: z.string().max(500) }),
      async execute(args, ctx) {
        ctx.variables.set(args.name, args.value);
        return { ok: true, data: { [args.name]: args.value } };
      },
    }),
    defineTool({
      name: 'get_variable',
      description: 'Read a value remembered for this call.',
      parameters: z.strictObject({ name: VARIABLE_NAME }),
      async execute(args, ctx) {
        const value = ctx.variables.get(args.name);
        return value === undefined ? { ok: false, error: `No variable "${args.name}" is set.` } : { ok: true, data: { [args.name]: value } };
      },
    }),
  ];
}
