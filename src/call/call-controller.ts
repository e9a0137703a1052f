/**
 * The Stasis application: turns ARI events into calls. For each caller channel it admits
 * (or overflows) the call, answers, opens an RTP endpoint, creates an ExternalMedia channel
 * and a mixing bridge, bridges both, and starts a CallSession. Every resource goes on the
 * call's CleanupStack the moment it exists, so a hang-up at any point of setup, a failed
 * ExternalMedia request or a shutdown releases exactly what was acquired.
 *
 * Each call has a session (src/sessions): its conversation state, saved after every turn, and
 * its media path. After every ARI (re)connect the controller looks for what a previous process
 * left in the Stasis app (src/sessions/orphans.ts): it hangs up stale ExternalMedia channels,
 * destroys stale bridges, and adopts each caller it does not own: with a saved session, a fresh
 * media path and the agent restored from it ("I'm back"); without one, the caller goes to the
 * overflow target (humans), like a failed call.
 */
import type { AgentFactory, AgentSettings, CallInfo } from '../agents/agent.js';
import type { AriChannel, AriConnection, AriEvent, ExternalMediaFormat } from '../ari/types.js';
import type { Logger } from '../log.js';
import { newSessionDocument, type SessionDocument } from '../sessions/document.js';
import type { SessionMetrics } from '../sessions/metrics.js';
import { scanOrphans } from '../sessions/orphans.js';
import { SessionKeeper } from '../sessions/session-keeper.js';
import type { SessionStore } from '../sessions/store.js';
import { CallSession, type CallOutcome, type CallSummary } from './call-session.js';
import { CleanupStack } from './cleanup-stack.js';
import type { EngineMetrics } from './engine-metrics.js';
import type { SessionMedia, SessionVad } from './session-ports.js';

/** An opened media endpoint, before Asterisk's address is known. */
export interface OpenedMedia extends SessionMedia {
  /** host:port for ExternalMedia's external_host. */
  readonly externalHost: string;
  setRemote(host: string, port: number): void;
  /** Called if the media path dies under a live call (the media worker crashed). */
  onLost?(handler: (err: Error) => void): void;
}

export interface MediaFactory {
  openMedia(format: ExternalMediaFormat, log: Logger): Promise<OpenedMedia>;
  createVad(media: OpenedMedia, agentName: string, turn?: AgentSettings['turn']): SessionVad;
}

export interface OverflowTarget {
  context: string;
  extension: string;
}

export interface CallControllerOptions {
  ari: AriConnection;
  media: MediaFactory;
  agents: ReadonlyMap<string, AgentFactory>;
  defaultAgent: string;
  log: Logger;
  metrics: EngineMetrics;
  format?: ExternalMediaFormat;
  /** Admission limit; callers past it go to `overflow` (a human queue) or get busy. */
  maxCalls?: number;
  overflow?: OverflowTarget | undefined;
  /** Channel variable that selects the agent (set in the dialplan). */
  agentVariable?: string;
  onCallEnded?: (summary: CallSummary) => void;
  /** Per-call sessions (saved conversation state): what lets a restarted Switchboard adopt its calls. */
  sessions?: ControllerSessions | undefined;
}

export interface ControllerSessions {
  store: SessionStore;
  metrics: SessionMetrics;
  /** Resolves once the store can answer (its first Redis connection attempt has settled). */
  ready?: () => Promise<void>;
  /**
   * A caller found in the app without a session is handed off only after this long (default
   * 1500 ms): a call that entered Stasis just as the channels were listed has its StasisStart
   * on the way, and must be admitted, not sent away.
   */
  orphanGraceMs?: number;
  /** The sessions' TTL: a live call renews its session every third of it. */
  ttlMs?: number;
}

interface ActiveCall {
  channelId: string;
  mediaChannelId: string;
  setup: AbortController;
  cleanup: CleanupStack;
  session?: CallSession;
  /** Set when Switchboard (not the caller) decided to end the call. */
  outcome?: CallOutcome;
  ending?: Promise<void>;
  /** The call's saved session (deleted when the call ends). */
  keeper?: SessionKeeper;
  /** Who called, known from admission on (the agent name once setup has resolved it). */
  info: CallInfo;
  admittedAt: number;
}

const MEDIA_STASIS_TIMEOUT_MS = 5000;

class SetupAborted extends Error {
  override readonly name = 'SetupAborted';
}

export class CallController {
  private readonly calls = new Map<string, ActiveCall>();
  /** ExternalMedia channel id -> caller channel id. */
  private readonly mediaChannels = new Map<string, string>();
  /** ExternalMedia channels created but not yet in Stasis: resolves when their StasisStart arrives. */
  private readonly mediaInStasis = new Map<string, () => void>();
  private offEvent: (() => void) | undefined;
  private offState: (() => void) | undefined;
  private stopping = false;
  private recovering: Promise<void> | undefined;
  private recoverAgain = false;
  private readonly log: Logger;
  private readonly format: ExternalMediaFormat;
  private readonly maxCalls: number;

  constructor(private readonly opts: CallControllerOptions) {
    this.log = opts.log.child({ component: 'calls' });
    this.format = opts.format ?? 'ulaw';
    this.maxCalls = opts.maxCalls ?? 250;
    if (!opts.agents.has(opts.defaultAgent)) throw new Error(`default agent "${opts.defaultAgent}" is not registered`);
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  start(): void {
    this.offEvent = this.opts.ari.onEvent((e) => this.onEvent(e));
    this.offState = this.opts.ari.onStateChange((s) => {
      if (s === 'reconnecting') this.opts.metrics.ariReconnects.inc();
      if (s === 'connected') this.recover();
    });
    if (this.opts.ari.state === 'connected') this.recover();
  }

  /** Stop taking calls and end every call in progress. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.recovering;
    await Promise.all([...this.calls.values()].map((c) => this.endCall(c, 'shutdown')));
    this.offEvent?.();
    this.offState?.();
  }

  // --- after a (re)connect: what a previous process left ----------------------------------

  /** Scan the app (once at a time; a (re)connect during a scan scans again after it). */
  private recover(): void {
    if (this.stopping) return;
    if (this.recovering) {
      this.recoverAgain = true;
      return;
    }
    this.recovering = this.scanApp()
      .catch((err: unknown) => this.log.warn({ err: errText(err) }, 'scanning the Stasis app for calls left behind failed'))
      .finally(() => {
        this.recovering = undefined;
        if (this.recoverAgain) {
          this.recoverAgain = false;
          this.recover();
        }
      });
  }

  private async scanApp(): Promise<void> {
    const { ari } = this.opts;
    const ownedBefore = [...this.calls.keys()];
    const [channels, bridges] = await Promise.all([ari.listChannels(), ari.listBridges()]);
    const owns = (id: string): boolean => this.calls.has(id) || this.mediaChannels.has(id);
    const scan = scanOrphans({ app: ari.app, channels, bridges, owns, ownedBefore });
    const m = this.opts.sessions?.metrics;
    for (const id of scan.lostCalls) {
      const call = this.calls.get(id);
      if (!call || call.ending) continue;
      // Its StasisEnd went out while the WebSocket was down.
      m?.lostCalls.inc();
      this.log.warn({ callId: id }, 'call channel gone after an ARI reconnect; ending the call');
      void this.endCall(call, call.outcome ?? 'caller_hangup');
    }
    await Promise.all(
      scan.staleBridges.map((b) =>
        ari.destroyBridge(b.id).then(
          () => m?.staleBridges.inc(),
          (err: unknown) => this.log.debug({ bridgeId: b.id, err: errText(err) }, 'stale bridge already gone'),
        ),
      ),
    );
    await Promise.all(
      scan.staleMedia.map((c) =>
        ari.hangup(c.id).then(
          () => m?.staleChannels.inc(),
          (err: unknown) => this.log.debug({ channelId: c.id, err: errText(err) }, 'stale media channel already gone'),
        ),
      ),
    );
    if (scan.staleBridges.length + scan.staleMedia.length + scan.callers.length > 0) {
      this.log.info(
        { callers: scan.callers.length, staleMediaChannels: scan.staleMedia.length, staleBridges: scan.staleBridges.length },
        'found calls left in the Stasis app by a previous process',
      );
    }
    await Promise.all(scan.callers.map((c) => this.adopt(c)));
  }

  /**
   * Take over a caller a previous process left in the app: with its session, set the call up
   * again and continue the conversation; without one, hand the caller to the overflow target.
   */
  private async adopt(channel: AriChannel): Promise<void> {
    const id = channel.id;
    const log = this.log.child({ callId: id });
    const sessions = this.opts.sessions;
    let doc: SessionDocument | undefined;
    if (sessions) {
      try {
        await sessions.ready?.();
        doc = await sessions.store.get(id);
      } catch (err) {
        log.warn({ err: errText(err) }, 'session of a call left behind could not be read');
      }
    }
    if (this.calls.has(id) || this.stopping) return;
    if (!doc) {
      await new Promise((r) => setTimeout(r, sessions?.orphanGraceMs ?? 1500));
      if (this.calls.has(id) || this.stopping) return; // a new call after all: admitted by its StasisStart
    }
    if (!doc || doc.phase === 'transferring') {
      // No context to continue from (or the agent was handing the caller over): a human takes it.
      sessions?.metrics.adoptions.inc({ result: doc ? 'transferring' : 'no_session' });
      log.warn({ reason: doc ? 'transferring' : 'no_session' }, 'call left by a previous process goes to the overflow target');
      await this.overflow(id, log);
      if (doc) await sessions?.store.delete(id).catch(() => undefined);
      return;
    }
    log.info({ agent: doc.agentName, turn: doc.turn }, 'adopting a call left by a previous process');
    const up = await this.admit(id, doc.caller, [], doc.dialed, doc);
    sessions?.metrics.adoptions.inc({ result: up ? 'adopted' : 'failed' });
    // Not taken back (the caller left, or setup failed and the caller went to the overflow target).
    if (!up) await sessions?.store.delete(id).catch(() => undefined);
  }

  // --- events ------------------------------------------------------------------------------

  private onEvent(e: AriEvent): void {
    switch (e.type) {
      case 'StasisStart':
        if (this.mediaChannels.has(e.channel.id) || e.channel.name.startsWith('UnicastRTP/')) {
          this.mediaInStasis.get(e.channel.id)?.();
          return;
        }
        // The dialplan passes the dialled number as the second argument (its subroutine runs in "s").
        void this.admit(e.channel.id, e.channel.caller, e.args, e.args[1] || e.channel.dialplan?.exten);
        return;
      case 'StasisEnd':
      case 'ChannelDestroyed': {
        const call = this.calls.get(e.channel.id);
        if (call) {
          void this.endCall(call, call.outcome ?? 'caller_hangup');
          return;
        }
        const owner = this.mediaChannels.get(e.channel.id);
        const ownerCall = owner ? this.calls.get(owner) : undefined;
        if (ownerCall && !ownerCall.ending) {
          this.log.warn({ callId: ownerCall.channelId }, 'media channel left unexpectedly; ending call');
          ownerCall.outcome ??= 'failed';
          void this.endCall(ownerCall, 'failed');
        }
        return;
      }
      case 'ChannelDtmfReceived':
        this.calls.get(e.channel.id)?.session?.dtmf(e.digit);
        return;
      case 'ChannelHangupRequest':
        return; // StasisEnd follows and does the work
      case 'Unhandled':
        if (e.known) {
          this.opts.metrics.ariEventsIgnored.inc();
        } else {
          if (this.opts.metrics.ariEventsUnknown.get({ type: e.rawType }) === 0) {
            this.log.warn({ eventType: e.rawType }, 'unexpected ARI event (further ones only counted)');
          }
          this.opts.metrics.ariEventsUnknown.inc({ type: e.rawType });
        }
        return;
    }
  }

  /** Set up a call (a new one, or one adopted with its saved session); true once it is up. */
  private async admit(
    channelId: string,
    caller: { number: string; name: string },
    args: string[],
    exten?: string,
    resume?: SessionDocument,
  ): Promise<boolean> {
    const log = this.log.child({ callId: channelId });
    if (this.calls.has(channelId)) return false;
    if (this.stopping || this.calls.size >= this.maxCalls) {
      const reason = this.stopping ? 'shutting_down' : 'capacity';
      this.opts.metrics.callsRejected.inc({ reason });
      log.warn({ reason, active: this.calls.size }, 'call not admitted');
      await this.overflow(channelId, log);
      return false;
    }
    const call: ActiveCall = {
      channelId,
      // An adopted call's old media channel may still be going away under the plain name.
      mediaChannelId: resume ? `${channelId}-media-${Date.now().toString(36)}` : `${channelId}-media`,
      setup: new AbortController(),
      cleanup: new CleanupStack((what, err) => log.warn({ what, err: errText(err) }, 'cleanup step failed')),
      info: { callId: channelId, channelId, caller, dialed: exten, agentName: resume?.agentName ?? '' },
      admittedAt: performance.now(),
    };
    this.calls.set(channelId, call);
    this.opts.metrics.callsActive.set(this.calls.size);
    try {
      await this.setUp(call, caller, args, exten, log, resume);
      return true;
    } catch (err) {
      if (err instanceof SetupAborted || call.setup.signal.aborted) {
        log.info('caller left during setup');
        await this.endCall(call, 'caller_hangup');
        return false;
      }
      const step = err instanceof SetupStepError ? err.step : 'unknown';
      this.opts.metrics.setupFailures.inc({ step });
      log.error({ step, err: errText(err) }, 'call setup failed');
      call.outcome = 'failed';
      await this.endCall(call, 'failed');
      return false;
    }
  }

  private async setUp(
    call: ActiveCall,
    caller: { number: string; name: string },
    args: string[],
    exten: string | undefined,
    log: Logger,
    resume?: SessionDocument,
  ): Promise<void> {
    const { ari } = this.opts;
    const check = (): void => {
      if (call.setup.signal.aborted) throw new SetupAborted();
    };
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      check();
      try {
        return await fn();
      } catch (err) {
        if (call.setup.signal.aborted) throw new SetupAborted();
        throw new SetupStepError(name, err);
      }
    };

    const agentName = await step('agent', async () => {
      if (resume) return resume.agentName;
      const fromVar = await ari.getChannelVar(call.channelId, this.opts.agentVariable ?? 'SWITCHBOARD_AGENT');
      return (fromVar || args[0] || this.opts.defaultAgent).trim();
    });
    call.info.agentName = agentName;
    const factory = this.opts.agents.get(agentName);
    if (!factory) throw new SetupStepError('agent', new Error(`unknown agent "${agentName}"`));

    if (resume) {
      // The previous process's media path: its RTP goes nowhere. (Usually already gone: the scan.)
      const old = resume.media;
      await Promise.allSettled([
        old.bridgeId ? ari.destroyBridge(old.bridgeId) : undefined,
        old.mediaChannelId ? ari.hangup(old.mediaChannelId) : undefined,
      ]);
    } else {
      await step('answer', () => ari.answer(call.channelId));
    }
    const media = await step('rtp', () => this.opts.media.openMedia(this.format, log));
    call.cleanup.push('rtp endpoint', () => media.close());

    this.mediaChannels.set(call.mediaChannelId, call.channelId);
    call.cleanup.push('media channel id', () => void this.mediaChannels.delete(call.mediaChannelId));
    // The REST answer can arrive before the new channel has entered Stasis; a bridge refuses
    // it until then ("Channel not in Stasis application"), so wait for its StasisStart too.
    const inStasis = this.waitForStasis(call.mediaChannelId, call.setup.signal);
    // Observed below; until then a rejection (setup aborted early) must not count as unhandled.
    inStasis.catch(() => undefined);
    call.cleanup.push('media stasis waiter', () => void this.mediaInStasis.delete(call.mediaChannelId));
    const em = await step('external_media', () =>
      ari.externalMedia({ app: this.opts.ari.app, externalHost: media.externalHost, format: this.format, channelId: call.mediaChannelId }),
    );
    call.cleanup.push('external media channel', () => ari.hangup(em.channel.id));
    if (em.asteriskRtp) media.setRemote(em.asteriskRtp.host, em.asteriskRtp.port);
    await step('external_media_stasis', () => inStasis);

    const bridge = await step('bridge', () => ari.createBridge('mixing', `switchboard-${call.channelId}`));
    call.cleanup.push('bridge', () => ari.destroyBridge(bridge.id));
    await step('bridge_add', () => ari.addToBridge(bridge.id, [call.channelId, em.channel.id]));
    check();

    const info = { callId: call.channelId, channelId: call.channelId, caller, dialed: exten, agentName };
    const sessions = this.opts.sessions;
    if (sessions) {
      const doc = resume ?? newSessionDocument({ callId: call.channelId, channelId: call.channelId, agentName, caller, dialed: exten });
      call.keeper = new SessionKeeper(sessions.store, doc, log, sessions.metrics, undefined, sessions.ttlMs ? sessions.ttlMs / 3 : undefined);
      call.keeper.update({ media: { bridgeId: bridge.id, mediaChannelId: em.channel.id } });
    }
    const session = new CallSession({
      info,
      media,
      vad: this.opts.media.createVad(media, agentName, factory.settings?.turn),
      agent: factory.create(info, { ...(call.keeper ? { session: call.keeper } : {}), ...(resume ? { resume } : {}) }),
      log,
      metrics: this.opts.metrics,
      bargeIn: { enabled: factory.settings?.bargeIn ?? true },
      ...(resume ? { firstTurn: resume.turn } : {}),
      hangupChannel: async (reason) => {
        call.outcome ??= 'agent_hangup';
        log.info({ reason }, 'agent hangs up');
        await ari.hangup(call.channelId);
      },
      transferChannel: async (target, reason, variables) => {
        call.outcome = 'transferred';
        this.opts.metrics.transfers.inc({ target: `${target.context},${target.extension}` });
        log.info({ reason, to: target }, 'transferring caller');
        // The call's context travels with the caller: the operator's screen or the queue can show it.
        await Promise.allSettled(
          [...variables].map(([k, v]) => ari.setChannelVar(call.channelId, `SB_${k.toUpperCase()}`, v)),
        );
        await ari.setChannelVar(call.channelId, 'SB_TRANSFER_REASON', reason).catch(() => undefined);
        await ari.continueInDialplan(call.channelId, { context: target.context, extension: target.extension });
      },
    });
    if (resume) for (const [k, v] of Object.entries(resume.variables)) session.variables.set(k, v);
    media.onLost?.((err) => {
      // Already leaving (transfer, hang-up): that goes on; the media no longer matters.
      if (call.outcome !== undefined || call.ending) {
        log.warn({ err, outcome: call.outcome }, 'media path lost while the call was ending');
        return;
      }
      // The caller can no longer hear or be heard: hand them to people rather than leave them in
      // silence. endCall's dispose() does the hand-off (or the hang-up, without an overflow
      // target) once the call is released; handing over here as well would make that second
      // continue fail (the caller has left Stasis) and fall back to hanging up on the caller.
      call.outcome = 'failed';
      log.error({ err, to: this.opts.overflow }, 'media path lost mid-call; handing the caller over');
      void this.endCall(call, 'failed');
    });
    call.session = session;
    session.start();
    log.info({ agent: agentName, format: this.format, adopted: resume !== undefined }, 'call up');
  }

  /** Resolves when `channelId` enters Stasis; rejects after MEDIA_STASIS_TIMEOUT_MS or on abort. */
  private waitForStasis(channelId: string, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no StasisStart within ${MEDIA_STASIS_TIMEOUT_MS} ms`)), MEDIA_STASIS_TIMEOUT_MS);
      const onAbort = (): void => done(new SetupAborted());
      const done = (err?: Error): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.mediaInStasis.delete(channelId);
        if (err) reject(err);
        else resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.mediaInStasis.set(channelId, () => done());
    });
  }

  private endCall(call: ActiveCall, outcome: CallOutcome): Promise<void> {
    call.ending ??= (async () => {
      call.setup.abort();
      // A call that ended before its session existed (setup failed, or the caller left during
      // it) still gets a summary, so call records and their statistics count it.
      const summary = call.session ? await call.session.end(outcome) : setupOnlySummary(call, outcome);
      await call.cleanup.run();
      // Ended here (the caller gone, or handed on below): nothing left to resume.
      await call.keeper?.discard();
      await this.dispose(call, outcome);
      this.calls.delete(call.channelId);
      this.opts.metrics.callsActive.set(this.calls.size);
      this.opts.metrics.callsTotal.inc({ outcome });
      this.log.info(
        { callId: call.channelId, outcome, durationMs: Math.round(summary.durationMs), turns: summary.turns.length, bargeIns: summary.bargeIns.length },
        'call ended',
      );
      this.opts.onCallEnded?.(summary);
    })();
    return call.ending;
  }

  /**
   * What happens to the caller once Switchboard lets go. A caller who hung up is gone; one the
   * agent hung up on is hung up; one Switchboard failed (setup error, media lost) or is
   * shutting down on is handed to the humans (the overflow target) rather than cut off.
   */
  private async dispose(call: ActiveCall, outcome: CallOutcome): Promise<void> {
    if (outcome === 'caller_hangup' || outcome === 'transferred') return;
    const log = this.log.child({ callId: call.channelId });
    if ((outcome === 'failed' || outcome === 'shutdown') && this.opts.overflow) {
      try {
        await this.opts.ari.continueInDialplan(call.channelId, this.opts.overflow);
        this.opts.metrics.callsHandedOff.inc({ reason: outcome });
        log.info({ reason: outcome, to: this.opts.overflow }, 'caller handed to the overflow target');
        return;
      } catch (err) {
        log.debug({ err: errText(err) }, 'hand-off failed (caller gone?); hanging up');
      }
    }
    // The caller may have gone in the meantime; anything else is worth a log line.
    await this.opts.ari.hangup(call.channelId).catch((err: unknown) => log.debug({ err: errText(err) }, 'caller hangup'));
  }

  private async overflow(channelId: string, log: Logger): Promise<void> {
    const target = this.opts.overflow;
    try {
      if (target) {
        await this.opts.ari.continueInDialplan(channelId, { context: target.context, extension: target.extension });
      } else {
        await this.opts.ari.hangup(channelId, 'congestion');
      }
    } catch (err) {
      log.warn({ err: errText(err) }, 'overflow handling failed');
    }
  }
}

class SetupStepError extends Error {
  override readonly name = 'SetupStepError';
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(`${step}: ${errText(cause)}`, { cause });
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function setupOnlySummary(call: ActiveCall, outcome: CallOutcome): CallSummary {
  const durationMs = performance.now() - call.admittedAt;
  return {
    info: { ...call.info },
    outcome,
    durationMs,
    turns: [],
    bargeIns: [],
    timeInStates: { answering: durationMs, listening: 0, thinking: 0, speaking: 0, transferring: 0, ended: 0 },
    dtmf: [],
    variables: {},
  };
}
