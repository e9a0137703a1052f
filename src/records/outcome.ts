/**
 * How a call ended for the business (resolved, transferred, abandoned, failed), from the
 * engine's end reason and what the conversation left behind. The rules, in order:
 *
 *  - engine `transferred`                        -> transferred
 *  - engine `failed`                             -> failed
 *  - engine `shutdown`: resolved if the agent had already closed the call, else failed
 *    (Switchboard stopped before the caller was served)
 *  - engine `agent_hangup` / `completed`:
 *      end_call was requested                    -> resolved
 *      the last turn had an error (the fallback
 *      hang-up after repeated failures)          -> failed
 *      the last turn was agent-initiated (no
 *      caller words: the silent-caller goodbye)  -> abandoned
 *      otherwise (the agent closed the call)     -> resolved
 *  - engine `caller_hangup`: resolved if the agent had closed the call (end_call requested,
 *    or the caller actually heard a farewell such as "goodbye" / "thank you for calling" in
 *    a turn that answered the caller), else abandoned: a caller who hung up before any
 *    turn, during the greeting, or during the silent-caller goodbye is not a resolved call
 */
import type { RecordOutcome } from './types.js';

export interface OutcomeFacts {
  /** The engine's CallOutcome (a string, so a reason this build does not know still classifies). */
  endReason: string;
  /** An end_call tool call succeeded during the call. */
  endCallRequested: boolean;
  /** What the caller actually heard of the agent's last words (undefined when nothing was played). */
  lastAgentWords: string | undefined;
  /** The caller said something in at least one turn. */
  callerSpoke: boolean;
  /** The last turn that has anything recorded had a failure (stt, llm, tts, tools). */
  lastTurnFailed: boolean;
  /** The last turn that has anything recorded had no caller words and no tool calls, and was not the first. */
  lastTurnAgentInitiated: boolean;
}

/** English closing phrases; end_call is the signal that does not depend on the language. */
const FAREWELL = /\b(good ?bye|bye|farewell|have a (nice|good|great|lovely|wonderful) (day|evening|afternoon|weekend|one)|thank(s| you) for calling|take care)\b/i;

export function isFarewell(words: string | undefined): boolean {
  return words !== undefined && FAREWELL.test(words);
}

export function classifyOutcome(f: OutcomeFacts): RecordOutcome {
  // A farewell only closes the call if the caller heard it, had spoken, and it answered them
  // (not the greeting, not the goodbye said to a silent caller).
  const closed = f.endCallRequested || (f.callerSpoke && !f.lastTurnAgentInitiated && isFarewell(f.lastAgentWords));
  switch (f.endReason) {
    case 'transferred':
      return 'transferred';
    case 'failed':
      return 'failed';
    case 'shutdown':
      return closed ? 'resolved' : 'failed';
    case 'agent_hangup':
    case 'completed':
      if (f.endCallRequested) return 'resolved';
      if (f.lastTurnFailed) return 'failed';
      if (f.lastTurnAgentInitiated) return 'abandoned';
      return 'resolved';
    case 'caller_hangup':
      return closed ? 'resolved' : 'abandoned';
    default:
      // An end reason this build does not know: only a closed call counts as resolved.
      return closed ? 'resolved' : 'failed';
  }
}
