/**
 * The schema of switchboard.yaml. Objects are strict (an unknown key is an error: a typo
 * must never be silently ignored); every field has a default where a sensible one exists.
 * Secrets are never literal values here: the loader expands `${ENV_VAR}` references before
 * validation and refuses literal secrets in the fields marked secret.
 */
import { z } from 'zod';

/** BCP-47 language tag, e.g. "en-US", "uk-UA", "ru". */
const Bcp47 = z
  .string()
  .regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'must be a BCP-47 language tag such as "en-US"');

const Name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'letters, digits, "-" and "_" only');

export const DialplanTargetSchema = z.strictObject({
  context: z.string().min(1),
  extension: z.string().min(1),
  /** What the model is told this destination is for ("billing questions"). */
  description: z.string().optional(),
});
export type DialplanTarget = z.infer<typeof DialplanTargetSchema>;

export const VadConfigSchema = z.strictObject({
  threshold: z.number().min(0.05).max(0.95).default(0.5),
  minSpeechMs: z.number().int().min(32).max(1000).default(96),
  endOfTurnSilenceMs: z.number().int().min(100).max(5000).default(600),
  /** Shorter utterances (coughs, clicks) are not turns. */
  minUtteranceMs: z.number().int().min(0).max(2000).default(150),
});

export const SilenceConfigSchema = z.strictObject({
  /** Caller silent this long after the agent spoke: re-prompt. */
  repromptAfterMs: z.number().int().min(2000).max(60000).default(8000),
  reprompt: z.string().default('Are you still there?'),
  maxReprompts: z.number().int().min(0).max(5).default(2),
  goodbye: z.string().default("I haven't heard from you, so I'll end the call now. Goodbye."),
});

export const FallbackConfigSchema = z.strictObject({
  /** Said when a provider fails mid-call. */
  phrase: z.string().default("Sorry, I'm having trouble right now. Let me connect you to a colleague."),
  /** Name of a `transfer` destination to hand the caller to after repeated failures. */
  transferTo: z.string().optional(),
  /** Consecutive failed turns before the transfer (or hang-up when no destination). */
  maxConsecutiveErrors: z.number().int().min(1).max(5).default(2),
});

export const AgentConfigSchema = z.strictObject({
  /** Plugin names (enabled under `plugins`). */
  stt: Name,
  llm: Name,
  tts: Name,
  /** A second TTS plugin used when the first fails. */
  ttsFallback: Name.optional(),
  model: z.string().optional(),
  voice: z.string().optional(),
  language: Bcp47.default('en-US'),
  systemPrompt: z.string().default('You are a helpful telephone assistant. Keep answers short.'),
  /** Said when the call is answered. */
  greeting: z.string().optional(),
  /** Tool allowlist: plugin tools and built-ins (transfer_call, end_call, set_variable, get_variable). */
  tools: z.array(Name).default([]),
  /** Where transfer_call may send a caller, by name. Nothing else is reachable. */
  transfer: z.record(Name, DialplanTargetSchema).default({}),
  bargeIn: z.boolean().default(true),
  vad: VadConfigSchema.default(VadConfigSchema.parse({})),
  /** Said while a slow tool runs. */
  fillers: z.array(z.string().min(1)).default(['One moment please.']),
  /** Phrases the caller is likely to say: grammar / keyword hints for the recogniser. */
  phrases: z.array(z.string().min(1)).default([]),
  /** Conversation history sent to the model is trimmed to this many (estimated) tokens. */
  historyTokenBudget: z.number().int().min(200).max(200000).default(3000),
  /** Model round trips (tool calls and answers) per caller turn. */
  maxToolRounds: z.number().int().min(1).max(10).default(4),
  silence: SilenceConfigSchema.default(SilenceConfigSchema.parse({})),
  fallback: FallbackConfigSchema.default(FallbackConfigSchema.parse({})),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export const PluginEntrySchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Validated by the plugin's own schema when it loads. */
  config: z.record(z.string(), z.unknown()).default({}),
});

export const AriConfigSchema = z.strictObject({
  url: z.url(),
  username: z.string().min(1),
  /** Secret: must be a ${ENV_VAR} reference. */
  password: z.string().min(1),
  app: Name.default('switchboard'),
});

export const ServerConfigSchema = z.strictObject({
  /** Sandbox PBX instance whose generated credentials to use when `ari` is absent. */
  pbxInstance: Name.default('default'),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(9464),
      /** Secret: bearer token of the /api/ endpoints; a ${ENV_VAR} reference. Absent: generated into .switchboard/api-token. */
      apiToken: z.string().min(16, 'must be at least 16 characters').regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional(),
    })
    .default({ host: '127.0.0.1', port: 9464 }),
  maxCalls: z.number().int().min(1).max(5000).default(100),
  mediaFormat: z.enum(['ulaw', 'alaw', 'slin16']).default('ulaw'),
  /** Address RTP endpoints bind to, and the one advertised to Asterisk if different. */
  rtpHost: z.string().default('127.0.0.1'),
  advertisedHost: z.string().optional(),
  /** Callers Switchboard cannot serve (capacity, failure, shutdown) go here. */
  overflow: DialplanTargetSchema.default({ context: 'switchboard-handoff', extension: 'queue' }),
});

/** Call records: a summary of every call, journalled locally then kept in PostgreSQL. */
export const RecordsConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * postgres://… (default: env DATABASE_URL), pglite:<dir> or pglite:memory. Without either,
   * an embedded PostgreSQL in .switchboard/records. Relative pglite paths: the config's folder.
   */
  databaseUrl: z
    .string()
    .regex(/^(postgres(ql)?:\/\/|pglite:)/i, 'must be postgres://…, postgresql://…, pglite:<directory> or pglite:memory')
    .optional(),
  /** Local journal every record is written to before PostgreSQL (default .switchboard/journal; relative: the config's folder). */
  journalDir: z.string().min(1).optional(),
  /** How often the journal is drained into PostgreSQL. */
  flushIntervalMs: z.number().int().min(100).max(3_600_000).default(2000),
});

/**
 * Sessions: each call's conversation state (history, variables, the model's dialog state, its
 * media path), saved after every turn so a restarted Switchboard can take its calls back.
 */
export const SessionsConfigSchema = z.strictObject({
  /** redis://[user:password@]host:port[/db]. Unset (or empty): kept in this process only. */
  redisUrl: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL').optional(),
  ),
  /** A session lives this long after its last save (a call silent longer than this cannot be resumed). */
  ttlSeconds: z.number().int().min(10).max(7 * 86_400).default(1800),
  /** Prefix of the Redis keys (<keyPrefix><call id>): separates deployments sharing a Redis. */
  keyPrefix: z.string().min(1).max(100).default('switchboard:session:'),
  /** A Redis command slower than this is abandoned and the in-process store answers. */
  timeoutMs: z.number().int().min(10).max(10_000).default(500),
  /** Said to a caller whose call a restarted Switchboard has taken back. */
  resumePhrase: z.string().min(1).default("Sorry about that, I'm back. Where were we?"),
});
export type SessionsConfig = z.infer<typeof SessionsConfigSchema>;

export const SwitchboardConfigSchema = z.strictObject({
  ari: AriConfigSchema.optional(),
  server: ServerConfigSchema.default(ServerConfigSchema.parse({})),
  records: RecordsConfigSchema.default(RecordsConfigSchema.parse({})),
  sessions: SessionsConfigSchema.default(SessionsConfigSchema.parse({})),
  plugins: z.record(Name, PluginEntrySchema).default({}),
  agents: z.record(Name, AgentConfigSchema),
  defaultAgent: Name,
});
export type SwitchboardConfig = z.infer<typeof SwitchboardConfigSchema>;

/** Config fields that hold secrets: they must come from `${ENV_VAR}` references. */
export const SECRET_PATHS: readonly (readonly string[])[] = [
  ['ari', 'password'],
  ['server', 'http', 'apiToken'],
];
