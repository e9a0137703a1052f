/**
 * The plugin API: what a speech-to-text, language-model, text-to-speech or tools plugin
 * exports, and the contracts the conversation loop drives them through.
 *
 * A plugin is a folder in plugins/ whose index.ts default-exports a PluginModule: a manifest
 * (name, kind, version, the API range it was written for, a zod schema for its config) and
 * an async factory. The loader validates the config with the plugin's own schema before the
 * factory runs, and refuses a plugin written for another API major version.
 *
 * Conventions every plugin follows (the conformance kit in test/conformance checks them):
 * - audio is the engine's one type, AudioFrame (PCM16 mono + rate); a plugin declares the
 *   rate it consumes or produces and the engine resamples at the boundary;
 * - cancellation is an AbortSignal (the turn's); an aborted call stops promptly and does not
 *   throw anything but an AbortError-like error;
 * - failures are PluginError with `retryable`, never error text written into a transcript.
 */
import type { z } from 'zod';
import type { AudioFrame, SampleRate } from '../audio/frame.js';
import type { Logger } from '../log.js';

/**
 * Semver of this API. Plugins declare the range they support (e.g. "^1.0.0").
 * 1.1.0: optional LlmSession.snapshot()/restore() (a call's model state survives a restart).
 */
export const PLUGIN_API_VERSION = '1.1.0';

export type PluginKind = 'stt' | 'llm' | 'tts' | 'tools';

export interface PluginManifest<C = unknown> {
  /** Unique, kebab-case, equal to the folder name (e.g. "stt-pocketsphinx"). */
  name: string;
  kind: PluginKind;
  /** The plugin's own version (semver). */
  version: string;
  /** Range of PLUGIN_API_VERSION the plugin works with (semver range, e.g. "^1.0.0"). */
  apiVersion: string;
  description: string;
  /** Validates (and defaults) the plugin's config block. Secrets arrive already expanded. */
  configSchema: z.ZodType<C>;
}

/** What the loader hands a plugin factory. */
export interface PluginContext {
  log: Logger;
  /** Aborts when Switchboard shuts down. */
  signal: AbortSignal;
  /** Directory for caches the plugin may create (phrase caches, compiled grammars). */
  cacheDir: string;
  /** Directory the config file lives in: relative paths in plugin config resolve against it. */
  configDir: string;
}

interface PluginModuleBase<K extends PluginKind, C, I> {
  manifest: PluginManifest<C> & { kind: K };
  create(config: C, ctx: PluginContext): Promise<I>;
}

export type SttPluginModule<C = unknown> = PluginModuleBase<'stt', C, SttProvider>;
export type LlmPluginModule<C = unknown> = PluginModuleBase<'llm', C, LlmProvider>;
export type TtsPluginModule<C = unknown> = PluginModuleBase<'tts', C, TtsProvider>;
export type ToolsPluginModule<C = unknown> = PluginModuleBase<'tools', C, ToolsProvider>;
export type PluginModule = SttPluginModule<any> | LlmPluginModule<any> | TtsPluginModule<any> | ToolsPluginModule<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every provider can be closed at shutdown. */
export interface Closable {
  close(): Promise<void>;
}

// --- errors ------------------------------------------------------------------------------

export type PluginErrorCode =
  | 'unavailable' // cannot reach the provider (connection refused, DNS, process died)
  | 'rate_limited' // 429 and the like
  | 'timeout'
  | 'bad_response' // the provider answered something we cannot use
  | 'bad_request' // our fault or the config's: will not get better by retrying
  | 'unauthorized'
  | 'internal';

export class PluginError extends Error {
  override readonly name = 'PluginError';
  constructor(
    readonly plugin: string,
    readonly code: PluginErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(`${plugin}: ${message}`, options);
  }
}

// --- speech to text ----------------------------------------------------------------------

export interface SttStreamOptions {
  /** BCP-47, e.g. "en-US". */
  language: string;
  /** Phrases the caller is likely to say (menu options, names): recognisers that support
   * grammars or keyword boosting use them; others ignore them. */
  phrases?: readonly string[];
  signal: AbortSignal;
}

export interface SttFinal {
  text: string;
  /** 0..1 when the recogniser reports one. */
  confidence?: number;
}

export interface SttInterim {
  text: string;
}

/** One recognition stream per call: audio is pushed continuously, turns are cut by VAD. */
export interface SttStream {
  /** PCM16 at the provider's `sampleRate`. Must not block. */
  push(frame: AudioFrame): void;
  /**
   * The caller finished a turn (VAD end of turn): resolve with the final transcript of all
   * audio pushed since the previous flush. "" when nothing was recognised.
   */
  flush(signal: AbortSignal): Promise<SttFinal>;
  /** Partial hypotheses while the caller speaks (optional for a provider to emit). */
  onInterim(handler: (r: SttInterim) => void): void;
  close(): Promise<void>;
}

export interface SttProvider extends Closable {
  readonly sampleRate: SampleRate;
  stream(opts: SttStreamOptions): Promise<SttStream>;
}

// --- language model ----------------------------------------------------------------------

export interface ToolCall {
  id: string;
  name: string;
  /** Parsed JSON arguments as the model produced them (validated by the loop, not here). */
  arguments: unknown;
}

export type ChatMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface LlmRequest {
  system: string;
  /** Conversation so far, oldest first, already trimmed to the agent's token budget. */
  messages: readonly ChatMessage[];
  tools: readonly ToolSpec[];
  signal: AbortSignal;
}

export type LlmEvent =
  | { type: 'text'; delta: string }
  | { type: 'tool_call'; call: ToolCall }
  | { type: 'done'; reason: 'stop' | 'tool_calls' | 'length' };

export interface LlmSessionOptions {
  callId: string;
  agent: string;
  language: string;
  /** Model name from the agent config, for providers that serve several. */
  model?: string | undefined;
  /** The call's variables (caller number, DID...), read-only for the model. */
  variables: Readonly<Record<string, string>>;
}

/** A per-call conversation with the model. Stateless providers just forward `messages`. */
export interface LlmSession {
  respond(req: LlmRequest): AsyncIterable<LlmEvent>;
  close(): Promise<void>;
  /**
   * Since API 1.1, optional: the session's own state (beyond the messages the loop keeps), as a
   * value that survives JSON.stringify/parse. Saved with the call's session after every turn,
   * so a restarted Switchboard can continue the conversation. Stateless sessions omit it.
   */
  snapshot?(): unknown;
  /**
   * Since API 1.1, optional: continue from a value snapshot() returned (possibly in another
   * process), before the first respond(). A snapshot the session cannot use (another scenario,
   * a broken shape) throws PluginError('bad_request') and leaves the session as it was.
   */
  restore?(snapshot: unknown): void;
}

export interface LlmProvider extends Closable {
  session(opts: LlmSessionOptions): Promise<LlmSession>;
  /**
   * Phrases callers are expected to say to this model, when it knows them (a scripted dialog
   * does). The loop adds them to the agent's `phrases` as recognition hints for the STT.
   */
  expectedPhrases?(): readonly string[];
}

// --- text to speech ----------------------------------------------------------------------

export interface SynthesisOptions {
  voice?: string | undefined;
  language: string;
  signal: AbortSignal;
}

export interface TtsProvider extends Closable {
  /** Rate of the frames `synthesize` yields. */
  readonly sampleRate: SampleRate;
  /** Audio for `text`, streamed as it is produced. */
  synthesize(text: string, opts: SynthesisOptions): AsyncIterable<AudioFrame>;
}

// --- tools -------------------------------------------------------------------------------

export interface ToolContext {
  callId: string;
  /** Index of the conversation turn: with the tool call id, the idempotency key. */
  turn: number;
  /** Stable per (call, turn, tool call): writes use it so a retry never acts twice. */
  idempotencyKey: string;
  /** The caller's number as the network presented it (never a number merely said). */
  callerNumber: string;
  variables: Map<string, string>;
  /** Aborted on barge-in when the tool is interruptible, else only when the call ends. */
  signal: AbortSignal;
  log: Logger;
}

export type ToolResult =
  | { ok: true; data: unknown }
  /** `error` is spoken about by the model: plain words, no stack traces. */
  | { ok: false; error: string; retryable?: boolean };

export interface ToolDefinition<A = unknown> {
  name: string;
  description: string;
  parameters: z.ZodType<A>;
  /** Longest the tool may run (default 8000 ms); past it the model is told it timed out. */
  timeoutMs?: number;
  /** Whether barge-in cancels it. Writes (bookings) are not interruptible. Default true. */
  interruptible?: boolean;
  /** Said while the tool runs, if it has not answered within ~700 ms. */
  filler?: string;
  execute(args: A, ctx: ToolContext): Promise<ToolResult>;
}

export interface ToolsProvider extends Closable {
  tools: readonly ToolDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

// --- helpers for plugin authors ----------------------------------------------------------

/** Identity functions that give a plugin module its exact type. */
export function defineSttPlugin<C>(m: SttPluginModule<C>): SttPluginModule<C> {
  return m;
}
export function defineLlmPlugin<C>(m: LlmPluginModule<C>): LlmPluginModule<C> {
  return m;
}
export function defineTtsPlugin<C>(m: TtsPluginModule<C>): TtsPluginModule<C> {
  return m;
}
export function defineToolsPlugin<C>(m: ToolsPluginModule<C>): ToolsPluginModule<C> {
  return m;
}
export function defineTool<A>(t: ToolDefinition<A>): ToolDefinition<A> {
  return t;
}

/** True for the error an aborted operation rejects with (DOMException AbortError or ours). */
export function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { name?: unknown }).name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR')
  );
}
