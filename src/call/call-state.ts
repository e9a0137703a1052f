/**
 * Per-call state machine. The session asks for a transition; an illegal one is a bug in
 * the caller, so it throws instead of silently corrupting the call's state.
 */
export type CallState = 'answering' | 'listening' | 'thinking' | 'speaking' | 'transferring' | 'ended';

const ALLOWED: Record<CallState, readonly CallState[]> = {
  answering: ['listening', 'speaking', 'transferring', 'ended'],
  listening: ['thinking', 'speaking', 'transferring', 'ended'],
  thinking: ['listening', 'speaking', 'transferring', 'ended'],
  speaking: ['listening', 'thinking', 'transferring', 'ended'],
  transferring: ['listening', 'ended'],
  ended: [],
};

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  constructor(
    readonly from: CallState,
    readonly to: CallState,
  ) {
    super(`illegal call state transition ${from} -> ${to}`);
  }
}

export class CallStateMachine {
  private _state: CallState = 'answering';
  private readonly history: { state: CallState; at: number }[] = [];

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly onChange?: (from: CallState, to: CallState) => void,
  ) {
    this.history.push({ state: this._state, at: now() });
  }

  get state(): CallState {
    return this._state;
  }

  can(to: CallState): boolean {
    return to === this._state || ALLOWED[this._state].includes(to);
  }

  /** Move to `to`; a no-op if already there. Throws IllegalTransitionError otherwise. */
  to(to: CallState): void {
    if (to === this._state) return;
    if (!ALLOWED[this._state].includes(to)) throw new IllegalTransitionError(this._state, to);
    const from = this._state;
    this._state = to;
    this.history.push({ state: to, at: this.now() });
    this.onChange?.(from, to);
  }

  /** Time spent in each state so far (ms). */
  timeInStates(): Record<CallState, number> {
    const out: Record<CallState, number> = { answering: 0, listening: 0, thinking: 0, speaking: 0, transferring: 0, ended: 0 };
    for (let i = 0; i < this.history.length; i++) {
      const cur = this.history[i]!;
      const next = this.history[i + 1];
      out[cur.state] += (next ? next.at : this.now()) - cur.at;
    }
    return out;
  }
}
