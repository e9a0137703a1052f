/** Conversation-level Prometheus metrics (one set per registry). */
import type { MetricsRegistry } from '../metrics/registry.js';

export function createConversationMetrics(r: MetricsRegistry) {
  return {
    sttFinalMs: r.summary('switchboard_stt_final_ms', 'End of turn to final transcript'),
    llmFirstEventMs: r.summary('switchboard_llm_first_event_ms', 'Model request to its first event'),
    toolCalls: r.counter('switchboard_tool_calls_total', 'Tool calls, by tool and outcome'),
    failures: r.counter('switchboard_conversation_failures_total', 'Failed turns, by stage (stt, llm, tts, tools)'),
    reprompts: r.counter('switchboard_reprompts_total', 'Re-prompts after caller silence'),
    phraseCacheHits: r.counter('switchboard_phrase_cache_hits_total', 'Fixed phrases served from the cache'),
  };
}

export type ConversationMetrics = ReturnType<typeof createConversationMetrics>;
