/**
 * Per-call timing measured on the wire (all times are performance.now() milliseconds, the
 * clock the RTP endpoint stamps arrivals with and the pacer stamps departures with):
 *  - turn latency: caller's last speech packet -> agent's first audio packet of the reply;
 *  - barge-in reaction: caller's first speech packet during agent audio -> agent's last
 *    audio packet.
 */
export interface TurnLatency {
  turn: number;
  callerLastSpeechAt: number;
  /** When the VAD declared end of turn (callerLastSpeechAt + silence window + engine time). */
  endOfTurnDecidedAt: number;
  agentFirstAudioAt: number;
  latencyMs: number;
}

export interface BargeInRecord {
  turn: number;
  speechOnsetAt: number;
  decidedAt: number;
  agentLastAudioAt: number;
  /** agentLastAudioAt - speechOnsetAt. */
  reactionMs: number;
  /** agentLastAudioAt - decidedAt: how long output ran after the decision (<= one frame). */
  stopAfterDecisionMs: number;
  playedMs: number;
  droppedMs: number;
}

export class CallTimings {
  readonly turns: TurnLatency[] = [];
  readonly bargeIns: BargeInRecord[] = [];
  private pendingTurn: { turn: number; callerLastSpeechAt: number; endOfTurnDecidedAt: number } | undefined;

  /** The caller finished a turn; the next agent audio packet closes the measurement. */
  callerTurnEnded(turn: number, callerLastSpeechAt: number, decidedAt: number): void {
    this.pendingTurn = { turn, callerLastSpeechAt, endOfTurnDecidedAt: decidedAt };
  }

  /** The caller spoke again before the agent answered: that turn has no latency figure. */
  callerResumed(): void {
    this.pendingTurn = undefined;
  }

  agentAudioStarted(at: number): TurnLatency | undefined {
    const p = this.pendingTurn;
    if (!p) return undefined;
    this.pendingTurn = undefined;
    const rec: TurnLatency = { ...p, agentFirstAudioAt: at, latencyMs: at - p.callerLastSpeechAt };
    this.turns.push(rec);
    return rec;
  }

  bargeIn(rec: Omit<BargeInRecord, 'reactionMs' | 'stopAfterDecisionMs'>): BargeInRecord {
    const full: BargeInRecord = {
      ...rec,
      reactionMs: rec.agentLastAudioAt - rec.speechOnsetAt,
      stopAfterDecisionMs: rec.agentLastAudioAt - rec.decidedAt,
    };
    this.bargeIns.push(full);
    return full;
  }
}
