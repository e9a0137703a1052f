/**
 * The conversation as the model sees it, trimmed to a token budget. Tokens are estimated
 * (about four characters each, plus a few per message), which is close enough for budgeting
 * without a tokenizer per provider. Trimming drops the oldest messages first and never
 * separates an assistant message with tool calls from the tool results that answer it, and
 * never drops the newest user message.
 */
import type { ChatMessage } from '../plugins/api.js';

export function estimateTokens(m: ChatMessage): number {
  let chars = m.content.length;
  if (m.role === 'assistant' && m.toolCalls) for (const c of m.toolCalls) chars += c.name.length + JSON.stringify(c.arguments ?? {}).length;
  if (m.role === 'tool') chars += m.name.length;
  return Math.ceil(chars / 4) + 4;
}

export class ConversationHistory {
  private readonly messages: ChatMessage[] = [];

  constructor(private readonly tokenBudget: number) {}

  add(m: ChatMessage): void {
    this.messages.push(m);
  }

  get all(): readonly ChatMessage[] {
    return this.messages;
  }

  /** A copy of every message, for the call's saved session. */
  snapshot(): ChatMessage[] {
    return structuredClone(this.messages);
  }

  /** Continue a saved conversation (a call adopted after a restart): replaces what is here. */
  restore(messages: readonly ChatMessage[]): void {
    this.messages.splice(0, this.messages.length, ...structuredClone(messages));
  }

  /** The newest messages that fit the budget, in order, tool exchanges kept whole. */
  trimmed(): ChatMessage[] {
    const groups = groupExchanges(this.messages);
    const kept: ChatMessage[][] = [];
    let used = 0;
    for (let i = groups.length - 1; i >= 0; i--) {
      const g = groups[i]!;
      const cost = g.reduce((a, m) => a + estimateTokens(m), 0);
      if (used + cost > this.tokenBudget && kept.length > 0) break;
      kept.unshift(g);
      used += cost;
    }
    return kept.flat();
  }
}

/** Split into units that must stay together: an assistant message plus its tool results. */
function groupExchanges(messages: readonly ChatMessage[]): ChatMessage[][] {
  const groups: ChatMessage[][] = [];
  for (const m of messages) {
    const last = groups[groups.length - 1];
    if (m.role === 'tool' && last) last.push(m);
    else groups.push([m]);
  }
  return groups;
}
