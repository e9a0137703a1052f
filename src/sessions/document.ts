/**
 * What a call's session holds: a small, versioned JSON document, saved by the conversation
 * agent after every completed turn and read back by a restarted Switchboard that adopts the
 * call. Everything needed to continue the conversation (history, call variables, the language
 * model session's own state) and to clean up the media path the dead process left (bridge and
 * ExternalMedia channel ids). Nothing else: audio, timings and transcripts for people are the
 * call records' business.
 *
 * A document read from the store is validated: a wrong version or a broken shape is an
 * InvalidSessionDocument error naming what is wrong, never a half-restored call.
 */
import { z } from 'zod';
import type { ChatMessage } from '../plugins/api.js';

/** Bump when the document changes shape; older documents are then refused (the call goes to a human). */
export const SESSION_DOCUMENT_VERSION = 1;

export interface SessionMediaPath {
  /** The mixing bridge holding the caller and the ExternalMedia channel. */
  bridgeId?: string | undefined;
  /** The ExternalMedia (UnicastRTP) channel streaming to Switchboard's RTP endpoint. */
  mediaChannelId?: string | undefined;
}

export interface SessionDocument {
  v: typeof SESSION_DOCUMENT_VERSION;
  callId: string;
  /** The caller's channel (the key Asterisk knows the call by). */
  channelId: string;
  agentName: string;
  caller: { number: string; name: string };
  dialed?: string | undefined;
  /** ISO times. */
  createdAt: string;
  updatedAt: string;
  /** The last completed turn (0: none yet / the greeting). */
  turn: number;
  /** `transferring`: the agent decided to hand the caller over (the call is about to leave). */
  phase: 'active' | 'transferring';
  /** The conversation as the model sees it (ConversationHistory's messages). */
  history: ChatMessage[];
  /** Call variables (set_variable); they travel with a transferred caller. */
  variables: Record<string, string>;
  /** The LLM session's own snapshot (LlmSession.snapshot()), when its plugin offers one. */
  llm?: unknown;
  /** The call's current media path, so a restarted Switchboard can tear it down. */
  media: SessionMediaPath;
}

const ToolCallSchema = z.strictObject({ id: z.string(), name: z.string(), arguments: z.unknown() });

const ChatMessageSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('user'), content: z.string() }),
  z.strictObject({ role: z.literal('assistant'), content: z.string(), toolCalls: z.array(ToolCallSchema).optional() }),
  z.strictObject({ role: z.literal('tool'), toolCallId: z.string(), name: z.string(), content: z.string() }),
]);

const IsoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO time');

export const SessionDocumentSchema = z.strictObject({
  v: z.literal(SESSION_DOCUMENT_VERSION),
  callId: z.string().min(1),
  channelId: z.string().min(1),
  agentName: z.string().min(1),
  caller: z.strictObject({ number: z.string(), name: z.string() }),
  dialed: z.string().optional(),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  turn: z.number().int().min(0),
  phase: z.enum(['active', 'transferring']),
  history: z.array(ChatMessageSchema),
  variables: z.record(z.string(), z.string()),
  llm: z.unknown().optional(),
  media: z.strictObject({ bridgeId: z.string().optional(), mediaChannelId: z.string().optional() }),
});

export class InvalidSessionDocument extends Error {
  override readonly name = 'InvalidSessionDocument';
}

/** Parse and validate a stored document (JSON text). Throws InvalidSessionDocument saying what is wrong. */
export function parseSessionDocument(json: string): SessionDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    // JSON.parse's message quotes part of the input (history, the caller's number): keep only where.
    const at = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw new InvalidSessionDocument(`not JSON${at ? ` (error at position ${at})` : ''} (${json.length} bytes)`);
  }
  const version = typeof raw === 'object' && raw !== null ? (raw as { v?: unknown }).v : undefined;
  if (version !== SESSION_DOCUMENT_VERSION) {
    throw new InvalidSessionDocument(`document version ${JSON.stringify(version)} (this Switchboard reads version ${SESSION_DOCUMENT_VERSION})`);
  }
  const parsed = SessionDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`);
    throw new InvalidSessionDocument(`invalid session document: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/** JSON text of a document; throws a clear error for values JSON cannot hold (a bad LLM snapshot). */
export function serializeSessionDocument(doc: SessionDocument): string {
  try {
    return JSON.stringify(doc);
  } catch (err) {
    throw new InvalidSessionDocument(`session of call ${doc.callId} cannot be serialised: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A new session for a call that has just been set up. */
export function newSessionDocument(init: {
  callId: string;
  channelId: string;
  agentName: string;
  caller: { number: string; name: string };
  dialed?: string | undefined;
  media?: SessionMediaPath;
  now?: Date;
}): SessionDocument {
  const at = (init.now ?? new Date()).toISOString();
  return {
    v: SESSION_DOCUMENT_VERSION,
    callId: init.callId,
    channelId: init.channelId,
    agentName: init.agentName,
    caller: { number: init.caller.number, name: init.caller.name },
    ...(init.dialed !== undefined ? { dialed: init.dialed } : {}),
    createdAt: at,
    updatedAt: at,
    turn: 0,
    phase: 'active',
    history: [],
    variables: {},
    media: { ...init.media },
  };
}
