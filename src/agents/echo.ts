/**
 * The built-in `echo` agent: no STT, LLM or TTS. After each caller utterance it plays the
 * utterance back. It exercises VAD segmentation, playout and barge-in end to end, and is
 * what the media benchmarks run.
 */
import type { Agent, AgentFactory, CallerTurn, TurnContext } from './agent.js';

export const echoAgentFactory: AgentFactory = {
  name: 'echo',
  create(): Agent {
    return {
      async onTurn(input: CallerTurn, ctx: TurnContext): Promise<void> {
        const result = await ctx.play(input.audio, ctx.signal);
        ctx.log.debug({ turn: input.turn, ...result }, 'echo played');
      },
    };
  },
};
