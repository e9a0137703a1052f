/**
 * A scripted SIP caller: a small real user agent (SIP over UDP, G.711 µ-law RTP) that holds a
 * conversation with whatever answers — dial, wait for the far end's greeting to finish, say a
 * line, wait for the reply to finish, say the next line, barge in mid-reply, hang up — and
 * measures each turn on the wire from the caller's side.
 *
 *   const call = await SipCaller.dial({ host: '127.0.0.1', port: 5060, extension: '100' });
 *   const greeting = await call.waitForAgentTurn({ timeoutMs: 15_000 });
 *   await call.say('I would like to book an appointment');
 *   const reply = await call.waitForAgentTurn();   // reply.latencyMs: our last speech packet -> its first
 *   await call.hangup();                           // or: const end = await call.ended (far-end BYE)
 *
 * Signalling (RFC 3261 subset, UDP): INVITE with a PCMU + telephone-event offer; 1xx/2xx/3xx-6xx
 * handling with digest authentication (401/407) when credentials are given; the 2xx ACK as its
 * own request to the Contact (through any Record-Route); CANCEL before the answer (AbortSignal or
 * `answerTimeoutMs`); BYE both ways; 200 OK to in-dialog re-INVITE/UPDATE (answered with our
 * SDP), OPTIONS, INFO, NOTIFY; 481 to requests for other dialogs. Transactions and timers are in
 * sip-transport.ts, message parsing in sip-message.ts.
 *
 * Media: the project's RtpEndpoint (µ-law, paced on the shared 20 ms media clock). Like a real
 * phone, the caller sends RTP continuously: digital silence between lines (`idleAudio`), which
 * also keeps Asterisk's rtp_timeout from hanging up a quiet caller. Everything received is
 * decoded, recorded with its arrival time, and fed to the project's Silero VAD (CallVad at 8 kHz);
 * when the far end sends nothing for `silenceFillAfterMs`, the VAD is fed silence, so a far end
 * that stops sending RTP also ends its turn. The VAD decides when the far end speaks (onset
 * after 96 ms of voice; end after `turn.endOfTurnSilenceMs` of silence, default 700 ms); a turn's
 * start and end are then put on the packets where its sound begins and ends (the VAD's 32 ms
 * windows and Silero's confidence lag would otherwise shift them by up to ~100 ms).
 *
 * Timing: every time is performance.now() (the media engine's clock), so a test running
 * Switchboard in-process can compare both sides. A turn's `latencyMs` is the time from the
 * caller's last speech packet sent (of the line said just before) to the arrival of the far
 * end's first speech packet.
 */
import { isIP } from 'node:net';
import { rmsDbfs, silence, type AudioFrame } from '../audio/frame.js';
import { resampleFrame } from '../audio/resampler.js';
import { CallVad } from '../audio/vad/call-vad.js';
import { SileroVadModel } from '../audio/vad/silero-model.js';
import type { VadStreamSource } from '../audio/vad/silero-stream.js';
import type { TurnDetectorConfig, TurnEvent } from '../audio/vad/turn-detector.js';
import { RtpEndpoint, type InboundAudio } from '../rtp/endpoint.js';
import { sharedMediaClock, type ClockTick, type MediaClock } from '../rtp/media-clock.js';
import type { Utterance } from '../rtp/pacer.js';
import type { PortRange } from '../rtp/udp-bind.js';
import { acceptsPcmu, answerDirection, buildAudioSdp, parseSdp, type MediaDirection, type SdpAudio } from './sdp.js';
import { buildAuthorization, chooseChallenge, type DigestCredentials } from './sip-digest.js';
import {
  callIdOf,
  createRequest,
  createResponse,
  cseqOf,
  formatHost,
  newBranch,
  parseNameAddr,
  parseSipUri,
  randomToken,
  tagOf,
  type SipRequest,
  type SipResponse,
} from './sip-message.js';
import { SipTransport, type ClientTransaction, type Destination, type SipTimers, type SipTraceEvent } from './sip-transport.js';
import { synthesizeSpeech, voicedExtent, type SpeechOptions } from './speech.js';
import { encodeWav } from '../audio/wav.js';

export interface SipCallerOptions {
  /** The PBX's SIP address (an IP literal). */
  host: string;
  /** The PBX's SIP port (default 5060). */
  port?: number;
  /** The number to call (user part of the Request-URI). */
  extension: string;
  /** Host part of the Request-URI, To and From (default `host`). */
  domain?: string;
  /** From user (default "caller1": not a known endpoint, so the sandbox takes it unauthenticated). */
  from?: string;
  displayName?: string;
  /** Our address for SIP, RTP and the SDP (default 127.0.0.1). */
  localIp?: string;
  /** Our SIP port (default 0: any free port). */
  localSipPort?: number;
  /** Our RTP port or range (default 0: any free port). */
  rtpPort?: number | PortRange;
  /** Digest credentials for a 401/407 challenge (username defaults to `from`). */
  username?: string;
  password?: string;
  /** No final answer by then: CANCEL (default 60 s). */
  answerTimeoutMs?: number;
  /** Aborting before the answer CANCELs the call; dial() then rejects with kind "cancelled". */
  signal?: AbortSignal;
  /** The Silero model (share one across calls); loaded (and closed) per call when absent. */
  vad?: VadStreamSource;
  /** Turn detection of the far end's speech (default endOfTurnSilenceMs 700). */
  turn?: Partial<TurnDetectorConfig>;
  /** No RTP from the far end for this long: feed the VAD silence (default 100 ms). */
  silenceFillAfterMs?: number;
  /**
   * Level below which a received packet is not the far end's sound (default -55 dBFS): used to
   * put a turn's start and end on the packets where its sound begins and ends.
   */
  soundFloorDbfs?: number;
  /** What to send when not speaking: "silence" (default, continuous RTP like a phone) or nothing. */
  idleAudio?: 'silence' | 'none';
  /** Keep everything received (default true). */
  record?: boolean;
  /** espeak-ng settings for say(text). */
  speech?: SpeechOptions;
  sipTimers?: Partial<SipTimers>;
  /** Default: the process-wide shared media clock. */
  clock?: MediaClock;
  userAgent?: string;
  /** Every SIP datagram in and out. */
  trace?: (e: SipTraceEvent) => void;
  /** Listeners attached before the INVITE is sent (so provisional responses are seen). */
  listeners?: Partial<{ [K in keyof SipCallerEvents]: (e: SipCallerEvents[K]) => void }>;
}

export type SipCallErrorKind = 'rejected' | 'auth' | 'timeout' | 'cancelled' | 'media' | 'transport';

/** The call could not be set up (dial() rejects with this). */
export class SipCallError extends Error {
  override readonly name = 'SipCallError';
  constructor(
    message: string,
    readonly kind: SipCallErrorKind,
    /** Final SIP status, when the far end gave one. */
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** An operation needed a live call and the call has ended. */
export class CallEndedError extends Error {
  override readonly name = 'CallEndedError';
  constructor(readonly end: CallEnd | undefined) {
    super(end ? `call ended (${end.reason})` : 'call is not established');
  }
}

export class CallerTimeoutError extends Error {
  override readonly name = 'CallerTimeoutError';
}

export type CallEndReason = 'remote-bye' | 'local-bye' | 'error';

export interface CallEnd {
  /** remote-bye: the far end hung up; local-bye: we did; error: setup failed or the dialog broke. */
  reason: CallEndReason;
  /** performance.now() when the end was decided. */
  at: number;
  /** From the answer to the end (0 when never answered). */
  durationMs: number;
  /** Final status of our BYE (undefined: no response, or the far end hung up). */
  byeStatus?: number;
  error?: Error;
  /** Times the far end's RTP source (SSRC) changed: a transfer or re-bridge on the PBX. */
  sourceChanges: number;
}

export interface SayResult {
  id: string;
  text: string | undefined;
  durationMs: number;
  /** Send time of the first and last packet of the line. */
  firstSentAt: number;
  lastSentAt: number;
  /**
   * Send time of the packets holding the first and last voiced audio (derived from the first
   * packet's send time and the 20 ms pacing). Undefined for a silent frame.
   */
  speechStartSentAt: number | undefined;
  lastSpeechSentAt: number | undefined;
}

export interface BargeInResult extends SayResult {
  /** Onset of the far end's speech we talked into. */
  agentStartedAt: number;
  /** Whether the far end was still speaking (per the VAD) when our first packet was queued. */
  agentSpeakingWhenSent: boolean;
}

export interface AgentTurn {
  /** 0 for the first turn of the call. */
  index: number;
  /**
   * Arrival of the far end's first speech packet: the VAD onset (first packet of the first
   * voiced window) moved to the packet where the sound begins (see `soundFloorDbfs`).
   */
  startedAt: number;
  /** Arrival of its last speech packet: the end of the last confidently voiced window, moved back to where the sound ends. */
  endedAt: number;
  /** When the VAD decided the turn was over. */
  decidedAt: number;
  speechMs: number;
  /** Received audio from startedAt to endedAt, 8 kHz (empty when recording is off). */
  audio: AudioFrame;
  /** The line we said just before this turn, if the turn began after it had been sent. */
  callerLine: SayResult | undefined;
  /** callerLine.lastSpeechSentAt -> startedAt: the turn latency on the wire, caller's side. */
  latencyMs: number | undefined;
  /** The turn overlapped our own speech (it started while we were talking). */
  overlappedCaller: boolean;
  /** The far end hung up before the VAD saw the end of this turn. */
  cutByHangup: boolean;
}

export interface TurnTiming {
  turn: number;
  callerLine: string | undefined;
  callerLastSpeechSentAt: number | undefined;
  agentFirstAudioAt: number;
  agentLastAudioAt: number;
  latencyMs: number | undefined;
}

export interface ReceivedChunk {
  arrivalMs: number;
  samples: Int16Array;
  concealed: boolean;
  sequenceNumber: number;
}

export interface SipCallerEvents {
  progress: { status: number; reason: string; at: number };
  answered: { at: number };
  'agent-speech-start': { at: number; decidedAt: number };
  'agent-turn': AgentTurn;
  'source-change': { at: number; count: number };
  refer: { referTo: string | undefined; at: number };
  ended: CallEnd;
  /** Non-fatal problems (RTP socket errors, VAD inference errors, listener exceptions). */
  error: unknown;
}

type Listener<K extends keyof SipCallerEvents> = (e: SipCallerEvents[K]) => void;

type CallState = 'calling' | 'answered' | 'ending' | 'ended';

interface PreparedLine {
  frame: AudioFrame;
  text: string | undefined;
  voice: { startMs: number; endMs: number } | undefined;
}

interface PendingSay {
  line: PreparedLine;
  resolve: (r: SayResult) => void;
  reject: (e: Error) => void;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE';
const SIP_USER = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$/;
const DEFAULT_TURN: Partial<TurnDetectorConfig> = { endOfTurnSilenceMs: 700 };
const FRAME_MS = 20;
/** Recent packets remembered for locating the edges of a turn (10 s). */
const RING_PACKETS = 512;

function now(): number {
  return performance.now();
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class SipCaller {
  /** performance.now() of the 200 OK (undefined before). */
  answeredAt: number | undefined;
  /** Completed far-end turns, in order. */
  readonly turns: AgentTurn[] = [];
  /** Lines said, in order. */
  readonly said: SayResult[] = [];
  /** Everything received, in playout order (when recording). */
  readonly received: ReceivedChunk[] = [];
  /** performance.now() of each detected change of the far end's RTP source. */
  readonly sourceChanges: number[] = [];
  /** Resolves once the call is over and every socket and timer is released. Never rejects. */
  readonly ended: Promise<CallEnd>;

  private state: CallState = 'calling';
  private endInfo: CallEnd | undefined;
  private resolveEnded!: (e: CallEnd) => void;
  private finishing: Promise<void> | undefined;

  private readonly pbx: Destination;
  private readonly localIp: string;
  private readonly callId = `${randomToken(12)}@switchboard-caller`;
  private readonly localTag = randomToken(6);
  private readonly fromHeader: string;
  private readonly requestUri: string;
  private readonly contact: string;
  private readonly userAgent: string;
  private readonly credentials: DigestCredentials | undefined;
  private cseq = Math.floor(Math.random() * 10_000) + 1;

  private invite: SipRequest | undefined;
  private inviteTx: ClientTransaction | undefined;
  private provisionalSeen = false;
  private cancelCause: 'cancelled' | 'timeout' | undefined;
  private cancelSent = false;
  private authAttempts = 0;
  private answerTimer: NodeJS.Timeout | undefined;
  private cancelGuard: NodeJS.Timeout | undefined;
  private settleDial: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private remoteTag: string | undefined;
  private toHeader: string | undefined;
  private remoteTarget: string | undefined;
  private routeSet: string[] = [];
  private dialogDest: Destination | undefined;
  private ack: SipRequest | undefined;
  private remoteCseq: number | undefined;
  private byeTx: ClientTransaction | undefined;

  private readonly sdpSessionId = String(Math.floor(Math.random() * 1e9));
  private sdpVersion = 1;
  private sdpDirection: MediaDirection = 'sendrecv';
  private remoteMedia: SdpAudio | undefined;

  private mediaStarted = false;
  private outputStopped = false;
  private unregisterTick: (() => void) | undefined;
  /** Arrival time and level of recent real packets (a ring): where a turn's sound begins and ends. */
  private readonly ringAt = new Float64Array(RING_PACKETS);
  private readonly ringDb = new Float64Array(RING_PACKETS);
  private ringCount = 0;
  private readonly soundFloorDbfs: number;
  /** The VAD has been fed audio (received or silence fill) up to this time on the wire. */
  private vadCoveredUntil = 0;
  private tickCount = 0;
  private knownSsrcChanges = 0;
  private readonly idleFrame = silence(8000, FRAME_MS);
  private readonly fillAfterMs: number;
  private readonly recordAudio: boolean;

  private sayCounter = 0;
  private readonly pendingSays = new Map<string, PendingSay>();
  private lastCompletedSay: SayResult | undefined;
  private currentTurn: { startedAt: number; decidedAt: number; callerLine: SayResult | undefined; overlapped: boolean } | undefined;
  private pendingTurns: AgentTurn[] = [];
  private turnWaiters: Array<Waiter<AgentTurn>> = [];
  private speechStartWaiters: Array<Waiter<number>> = [];
  private readonly sleepers = new Set<Waiter<void>>();
  private flushingVad = false;

  private readonly listeners = new Map<keyof SipCallerEvents, Set<(e: never) => void>>();

  /** Place a call; resolves once it is answered (200 OK, ACK sent, media flowing). */
  static async dial(opts: SipCallerOptions): Promise<SipCaller> {
    validateOptions(opts);
    if (opts.signal?.aborted) throw new SipCallError('dial aborted before it started', 'cancelled');
    const localIp = opts.localIp ?? '127.0.0.1';
    const ownedModel = opts.vad === undefined ? await SileroVadModel.load() : undefined;
    const model: VadStreamSource = opts.vad ?? (ownedModel as SileroVadModel);
    let vad: CallVad | undefined;
    let endpoint: RtpEndpoint | undefined;
    let transport: SipTransport | undefined;
    let caller: SipCaller | undefined;
    try {
      // A scripted caller wants every window judged, not real-time shedding: allow 10 s of backlog.
      vad = new CallVad(model, { sampleRate: 8000, turn: { ...DEFAULT_TURN, ...opts.turn }, maxQueuedWindows: 320 });
      endpoint = await RtpEndpoint.open({ codec: 'ulaw', host: localIp, port: opts.rtpPort ?? 0, ...(opts.clock ? { clock: opts.clock } : {}) });
      let onRequest: (req: SipRequest, source: Destination) => void = () => undefined;
      let onStray: (res: SipResponse) => void = () => undefined;
      let onError: (err: unknown) => void = () => undefined;
      transport = await SipTransport.open({
        host: localIp,
        port: opts.localSipPort ?? 0,
        ...(opts.sipTimers ? { timers: opts.sipTimers } : {}),
        ...(opts.trace ? { trace: opts.trace } : {}),
        onRequest: (req, source) => onRequest(req, source),
        onStrayResponse: (res) => onStray(res),
        onError: (err) => onError(err),
      });
      caller = new SipCaller(opts, transport, endpoint, vad, ownedModel);
      const c = caller;
      onRequest = (req, source) => c.onRequest(req, source);
      onStray = (res) => c.onStrayResponse(res);
      onError = (err) => c.emit('error', err);
    } catch (err) {
      vad?.close();
      await endpoint?.close();
      await transport?.close();
      await ownedModel?.close();
      throw err;
    }
    try {
      await caller.connect();
    } catch (err) {
      await caller.ended;
      throw err;
    }
    return caller;
  }

  private constructor(
    private readonly opts: SipCallerOptions,
    private readonly transport: SipTransport,
    private readonly endpoint: RtpEndpoint,
    private readonly vad: CallVad,
    private readonly ownedModel: SileroVadModel | undefined,
  ) {
    this.ended = new Promise<CallEnd>((resolve) => (this.resolveEnded = resolve));
    this.pbx = { address: opts.host, port: opts.port ?? 5060 };
    this.localIp = opts.localIp ?? '127.0.0.1';
    const domain = opts.domain ?? opts.host;
    const hostPort = `${formatHost(domain)}${this.pbx.port === 5060 ? '' : `:${this.pbx.port}`}`;
    const from = opts.from ?? 'caller1';
    this.requestUri = `sip:${opts.extension}@${hostPort}`;
    const display = opts.displayName === undefined ? '' : `"${opts.displayName.replace(/(["\\])/g, '\\$1')}" `;
    this.fromHeader = `${display}<sip:${from}@${formatHost(domain)}>;tag=${this.localTag}`;
    this.contact = `<sip:${from}@${formatHost(this.localIp)}:${transport.local.port}>`;
    this.userAgent = opts.userAgent ?? 'Switchboard-Caller/0.1';
    this.credentials = opts.password === undefined ? undefined : { username: opts.username ?? from, password: opts.password };
    this.fillAfterMs = opts.silenceFillAfterMs ?? 100;
    this.soundFloorDbfs = opts.soundFloorDbfs ?? -55;
    this.recordAudio = opts.record ?? true;
    for (const [event, fn] of Object.entries(opts.listeners ?? {})) {
      if (fn) this.on(event as keyof SipCallerEvents, fn as Listener<keyof SipCallerEvents>);
    }
    endpoint.setHandlers({
      audio: this.onAudio,
      utteranceDone: this.onUtteranceDone,
      error: (err) => this.emit('error', err),
    });
    vad.onEvent(this.onVadEvent);
    vad.onError((err) => this.emit('error', err));
    this.unregisterTick = (opts.clock ?? sharedMediaClock).register(this.onTick);
  }

  // --- public API ------------------------------------------------------------------------------

  get sipCallId(): string {
    return this.callId;
  }

  /** Our RTP address (what the SDP offer names). */
  get rtpAddress(): { host: string; port: number } {
    return this.endpoint.address();
  }

  /** The far end's audio stream from its SDP answer. */
  get remoteAudio(): SdpAudio | undefined {
    return this.remoteMedia;
  }

  get isEnded(): boolean {
    return this.state === 'ended';
  }

  /** The VAD currently hears the far end speaking. */
  get agentSpeaking(): boolean {
    return this.currentTurn !== undefined;
  }

  /** Completed turns not yet returned by waitForAgentTurn. */
  get pendingTurnCount(): number {
    return this.pendingTurns.length;
  }

  /** Per-turn wire timings: our last speech packet sent -> the far end's first speech packet. */
  get timings(): TurnTiming[] {
    return this.turns.map((t) => ({
      turn: t.index,
      callerLine: t.callerLine?.text,
      callerLastSpeechSentAt: t.callerLine?.lastSpeechSentAt,
      agentFirstAudioAt: t.startedAt,
      agentLastAudioAt: t.endedAt,
      latencyMs: t.latencyMs,
    }));
  }

  /** RTP and SIP counters. */
  stats(): { rtp: ReturnType<RtpEndpoint['stats']>; sip: SipTransport['stats']; vad: CallVad['stats'] } {
    return { rtp: this.endpoint.stats(), sip: { ...this.transport.stats }, vad: { ...this.vad.stats } };
  }

  on<K extends keyof SipCallerEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * The next completed far-end turn: one that has already ended and was not yet returned, or the
   * next to end. Rejects with CallerTimeoutError after `timeoutMs` (default 30 s), with
   * CallEndedError when the call ends first (a turn cut by the far end's hang-up still counts).
   */
  waitForAgentTurn(opts: { timeoutMs?: number } = {}): Promise<AgentTurn> {
    const ready = this.pendingTurns.shift();
    if (ready) return Promise.resolve(ready);
    if (this.state === 'ended') return Promise.reject(new CallEndedError(this.endInfo));
    return this.addWaiter(this.turnWaiters, opts.timeoutMs ?? 30_000, 'a far-end turn');
  }

  /** Forget completed turns nobody waited for (e.g. a greeting the script does not care about). */
  discardPendingTurns(): AgentTurn[] {
    const dropped = this.pendingTurns;
    this.pendingTurns = [];
    return dropped;
  }

  /**
   * Say a line: text (spoken with espeak-ng) or PCM16 (resampled to 8 kHz). Resolves when its
   * last packet has been sent; lines queue one after another. Rejects with CallEndedError if the
   * call ends first.
   */
  async say(line: string | AudioFrame): Promise<SayResult> {
    const prepared = await this.prepare(line);
    return this.sayPrepared(prepared);
  }

  /**
   * Barge in: wait until the far end is speaking (now, or its next turn within `timeoutMs`), then
   * `afterMs` after its speech onset, say `line`. The line is synthesised before waiting, so the
   * offset is accurate to a packet.
   */
  async sayWhileAgentSpeaks(line: string | AudioFrame, opts: { afterMs?: number; timeoutMs?: number } = {}): Promise<BargeInResult> {
    const prepared = await this.prepare(line);
    const agentStartedAt = await this.waitForAgentSpeechStart(opts.timeoutMs ?? 30_000);
    const wait = agentStartedAt + (opts.afterMs ?? 0) - now();
    if (wait > 0) await this.sleep(wait);
    const agentSpeakingWhenSent = this.agentSpeaking;
    const said = await this.sayPrepared(prepared);
    return { ...said, agentStartedAt, agentSpeakingWhenSent };
  }

  /** Resolves with the onset of the far end's current speech, or of its next. */
  waitForAgentSpeechStart(timeoutMs = 30_000): Promise<number> {
    if (this.currentTurn) return Promise.resolve(this.currentTurn.startedAt);
    if (this.state === 'ended') return Promise.reject(new CallEndedError(this.endInfo));
    return this.addWaiter(this.speechStartWaiters, timeoutMs, 'the far end to start speaking');
  }

  /**
   * Hang up: BYE once answered (resolves after its final response, or Timer F). Resolves with
   * how the call ended (which may be the far end's BYE that crossed ours).
   */
  async hangup(): Promise<CallEnd> {
    if (this.state === 'answered') {
      this.state = 'ending';
      this.stopOutput();
      const bye = this.inDialogRequest('BYE');
      const status = await Promise.race([
        new Promise<number | undefined>((resolve) => {
          this.byeTx = this.transport.request(bye, this.dialogDestination(), {
            response: (res) => {
              if (res.status >= 200) resolve(res.status);
            },
            timeout: () => resolve(undefined),
          });
        }),
        this.ended.then(() => undefined),
      ]);
      const failed = status === undefined || (status >= 300 && status !== 481);
      void this.finish({
        reason: 'local-bye',
        ...(status === undefined ? {} : { byeStatus: status }),
        ...(failed ? { error: new Error(status === undefined ? 'no response to BYE' : `BYE answered ${status}`) } : {}),
      });
    } else if (this.state === 'calling') {
      this.requestCancel('cancelled');
    }
    return this.ended;
  }

  /** Everything received as one clip: chunks in playout order, gaps in arrival filled with silence. */
  recording(): AudioFrame {
    const parts: Int16Array[] = [];
    let total = 0;
    let prevAt: number | undefined;
    for (const c of this.received) {
      if (prevAt !== undefined) {
        const gapMs = c.arrivalMs - prevAt - FRAME_MS;
        if (gapMs > 3 * FRAME_MS) {
          const pad = new Int16Array(Math.round((gapMs * 8000) / 1000));
          parts.push(pad);
          total += pad.length;
        }
      }
      parts.push(c.samples);
      total += c.samples.length;
      prevAt = c.arrivalMs;
    }
    const out = new Int16Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return { samples: out, sampleRate: 8000 };
  }

  /** `recording()` as a WAV file. */
  recordingWav(): Buffer {
    return encodeWav(this.recording());
  }

  // --- dialling --------------------------------------------------------------------------------

  private connect(): Promise<void> {
    const result = new Promise<void>((resolve, reject) => (this.settleDial = { resolve, reject }));
    const signal = this.opts.signal;
    const onAbort = (): void => this.requestCancel('cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    const detach = (): void => signal?.removeEventListener('abort', onAbort);
    this.answerTimer = setTimeout(() => this.requestCancel('timeout'), this.opts.answerTimeoutMs ?? 60_000);
    this.sendInvite(undefined);
    return result.finally(detach);
  }

  private sendInvite(authorization: { name: string; value: string } | undefined): void {
    const local = this.endpoint.address();
    const sdp = buildAudioSdp({
      address: local.host,
      port: local.port,
      sessionId: this.sdpSessionId,
      sessionVersion: this.sdpVersion,
      direction: this.sdpDirection,
    });
    const headers: Array<[string, string]> = [
      ['Via', this.via()],
      ['Max-Forwards', '70'],
      ['From', this.fromHeader],
      ['To', `<${this.requestUri}>`],
      ['Call-ID', this.callId],
      ['CSeq', `${this.cseq} INVITE`],
      ['Contact', this.contact],
      ['Allow', ALLOW],
      ['User-Agent', this.userAgent],
      ['Content-Type', 'application/sdp'],
    ];
    if (authorization) headers.push([authorization.name, authorization.value]);
    const invite = createRequest('INVITE', this.requestUri, headers, sdp);
    this.invite = invite;
    this.inviteTx = this.transport.request(invite, this.pbx, {
      response: (res) => this.onInviteResponse(invite, res),
      timeout: () => {
        if (this.invite === invite) this.failDial(new SipCallError('no response to INVITE (Timer B)', 'timeout'));
      },
    });
  }

  private onInviteResponse(invite: SipRequest, res: SipResponse): void {
    if (res.status < 200) {
      if (this.invite !== invite || this.state !== 'calling') return;
      this.provisionalSeen = true;
      this.emit('progress', { status: res.status, reason: res.reason, at: now() });
      if (res.status !== 100 && res.body.length > 0) this.applyRemoteSdp(res, false); // early media
      if (this.cancelCause && !this.cancelSent) this.sendCancel();
      return;
    }
    if (res.status < 300) {
      this.on2xx(invite, res);
      return;
    }
    if (this.invite !== invite || this.state !== 'calling') return;
    if ((res.status === 401 || res.status === 407) && !this.cancelCause) {
      const chosen = chooseChallenge(res);
      const stale = chosen?.challenge.params.get('stale')?.toLowerCase() === 'true';
      if (!this.credentials) {
        this.failDial(new SipCallError(`INVITE challenged (${res.status} ${res.reason}) and no credentials given`, 'auth', res.status, res.reason));
        return;
      }
      if (!chosen) {
        this.failDial(new SipCallError(`INVITE challenged with no supported digest challenge (${res.status})`, 'auth', res.status, res.reason));
        return;
      }
      if (this.authAttempts >= 1 && !stale) {
        this.failDial(new SipCallError(`authentication as "${this.credentials.username}" refused (${res.status} ${res.reason})`, 'auth', res.status, res.reason));
        return;
      }
      if (this.authAttempts >= 3) {
        this.failDial(new SipCallError(`too many authentication rounds (${res.status})`, 'auth', res.status, res.reason));
        return;
      }
      this.authAttempts++;
      this.cseq++;
      this.sendInvite({ name: chosen.headerName, value: buildAuthorization(chosen.challenge, this.credentials, 'INVITE', this.requestUri) });
      return;
    }
    if (this.cancelCause && res.status === 487) {
      this.failDial(
        this.cancelCause === 'timeout'
          ? new SipCallError(`not answered within ${this.opts.answerTimeoutMs ?? 60_000} ms (cancelled)`, 'timeout', res.status, res.reason)
          : new SipCallError('call cancelled before it was answered', 'cancelled', res.status, res.reason),
      );
      return;
    }
    this.failDial(new SipCallError(`call rejected: ${res.status} ${res.reason}`, 'rejected', res.status, res.reason));
  }

  private on2xx(invite: SipRequest, res: SipResponse): void {
    const toTag = tagOf(res.headers.get('to'));
    if (this.remoteTag !== undefined) {
      // A retransmitted 2xx (our ACK was lost): ACK again. A 2xx from another fork: ACK and BYE it.
      if (toTag === this.remoteTag && cseqOf(res).seq === cseqOf(invite).seq && this.ack && this.dialogDest) {
        this.transport.send(this.ack, this.dialogDest);
      } else {
        this.rejectExtraDialog(invite, res);
      }
      return;
    }
    if (this.state !== 'calling' || this.invite !== invite) {
      this.rejectExtraDialog(invite, res);
      return;
    }
    this.remoteTag = toTag ?? '';
    this.toHeader = res.headers.get('to');
    const contact = res.headers.getList('contact')[0];
    this.remoteTarget = this.invite.uri;
    if (contact !== undefined) {
      try {
        this.remoteTarget = parseNameAddr(contact).uri;
      } catch {
        // keep the Request-URI
      }
    }
    this.routeSet = res.headers.getList('record-route').reverse();
    this.dialogDest = this.resolveDialogDestination();
    this.ack = this.build2xxAck(invite);
    this.transport.send(this.ack, this.dialogDest);
    this.clearDialTimers();

    const mediaError = this.applyRemoteSdp(res, true);
    if (mediaError || this.cancelCause) {
      // Answered but unusable (or cancelled too late): the dialog exists, so end it with BYE.
      const err = mediaError ?? new SipCallError('call cancelled (answered before the CANCEL took effect)', 'cancelled', res.status, res.reason);
      this.state = 'ending';
      const bye = this.inDialogRequest('BYE');
      this.byeTx = this.transport.request(bye, this.dialogDestination(), {
        response: (r) => {
          if (r.status >= 200) this.failDial(err);
        },
        timeout: () => this.failDial(err),
      });
      return;
    }
    this.state = 'answered';
    this.answeredAt = now();
    this.vadCoveredUntil = this.answeredAt;
    this.mediaStarted = true;
    this.emit('answered', { at: this.answeredAt });
    const settle = this.settleDial;
    this.settleDial = undefined;
    settle?.resolve();
  }

  /** Parse an SDP answer (or early-media SDP) and point RTP at it. Returns an error when unusable. */
  private applyRemoteSdp(res: SipResponse, required: boolean): SipCallError | undefined {
    const type = res.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (res.body.length === 0 || type !== 'application/sdp') {
      return required ? new SipCallError(`answer ${res.status} carries no SDP`, 'media', res.status, res.reason) : undefined;
    }
    let audio: SdpAudio | undefined;
    try {
      audio = parseSdp(res.body.toString('utf8')).audio;
    } catch (err) {
      return required ? new SipCallError(`unparsable SDP answer: ${asError(err).message}`, 'media', res.status, res.reason) : undefined;
    }
    if (!audio || audio.port === 0 || !acceptsPcmu(audio)) {
      return required ? new SipCallError('the far end refused PCMU audio', 'media', res.status, res.reason) : undefined;
    }
    if (isIP(audio.address) === 0) {
      return required ? new SipCallError(`SDP names a non-IP media address "${audio.address}"`, 'media', res.status, res.reason) : undefined;
    }
    this.remoteMedia = audio;
    this.endpoint.setRemote(audio.address, audio.port);
    return undefined;
  }

  private build2xxAck(invite: SipRequest): SipRequest {
    const headers: Array<[string, string]> = [['Via', this.via()]];
    for (const r of this.routeHeaders()) headers.push(['Route', r]);
    headers.push(['Max-Forwards', '70'], ['From', this.fromHeader], ['To', this.toHeader ?? ''], ['Call-ID', this.callId], ['CSeq', `${cseqOf(invite).seq} ACK`]);
    for (const name of ['authorization', 'proxy-authorization']) {
      const v = invite.headers.get(name);
      if (v !== undefined) headers.push([name, v]);
    }
    headers.push(['User-Agent', this.userAgent]);
    return createRequest('ACK', this.requestTargetUri(), headers);
  }

  /** ACK and BYE a 2xx that does not belong to our dialog (a forked answer, a late answer). */
  private rejectExtraDialog(invite: SipRequest, res: SipResponse): void {
    let target = invite.uri;
    const contact = res.headers.getList('contact')[0];
    if (contact !== undefined) {
      try {
        target = parseNameAddr(contact).uri;
      } catch {
        // keep the Request-URI
      }
    }
    const dest = this.destinationOf(target);
    const common: Array<[string, string]> = [
      ['Max-Forwards', '70'],
      ['From', this.fromHeader],
      ['To', res.headers.get('to') ?? ''],
      ['Call-ID', this.callId],
    ];
    const seq = cseqOf(res).seq;
    this.transport.send(createRequest('ACK', target, [['Via', this.via()], ...common, ['CSeq', `${seq} ACK`]]), dest);
    this.transport.request(createRequest('BYE', target, [['Via', this.via()], ...common, ['CSeq', `${seq + 1} BYE`]]), dest, {
      response: () => undefined,
      timeout: () => undefined,
    });
  }

  /** CANCEL once a provisional response has arrived (RFC 3261 §9.1); bounded by 64·T1. */
  private requestCancel(cause: 'cancelled' | 'timeout'): void {
    if (this.state !== 'calling' || this.cancelCause) return;
    this.cancelCause = cause;
    if (this.provisionalSeen) this.sendCancel();
    this.cancelGuard = setTimeout(() => {
      this.failDial(
        new SipCallError(cause === 'timeout' ? 'not answered, and the CANCEL got no final response' : 'cancelled; the INVITE got no final response', cause),
      );
    }, 64 * this.transport.timers.t1);
  }

  private sendCancel(): void {
    const invite = this.invite;
    if (!invite || this.cancelSent) return;
    this.cancelSent = true;
    const headers: Array<[string, string]> = [['Via', invite.headers.getList('via')[0] ?? this.via()]];
    for (const r of invite.headers.getAll('route')) headers.push(['Route', r]);
    headers.push(
      ['Max-Forwards', '70'],
      ['From', invite.headers.get('from') ?? this.fromHeader],
      ['To', invite.headers.get('to') ?? ''],
      ['Call-ID', this.callId],
      ['CSeq', `${cseqOf(invite).seq} CANCEL`],
      ['User-Agent', this.userAgent],
    );
    this.transport.request(createRequest('CANCEL', invite.uri, headers), this.pbx, { response: () => undefined, timeout: () => undefined });
  }

  private clearDialTimers(): void {
    clearTimeout(this.answerTimer);
    clearTimeout(this.cancelGuard);
    this.answerTimer = undefined;
    this.cancelGuard = undefined;
  }

  private failDial(err: SipCallError): void {
    const settle = this.settleDial;
    if (!settle) return;
    this.settleDial = undefined;
    this.clearDialTimers();
    settle.reject(err);
    void this.finish({ reason: 'error', error: err });
  }

  // --- in-dialog requests --------------------------------------------------------------------------

  private via(): string {
    return `SIP/2.0/UDP ${formatHost(this.localIp)}:${this.transport.local.port};rport;branch=${newBranch()}`;
  }

  private routeHeaders(): string[] {
    const first = this.routeSet[0];
    if (first === undefined) return [];
    // Strict router (no ;lr): it goes in the Request-URI, the remote target ends the Route set.
    if (!isLooseRoute(first)) return [...this.routeSet.slice(1), `<${this.remoteTarget ?? this.requestUri}>`];
    return this.routeSet;
  }

  private requestTargetUri(): string {
    const first = this.routeSet[0];
    if (first !== undefined && !isLooseRoute(first)) return parseNameAddr(first).uri;
    return this.remoteTarget ?? this.requestUri;
  }

  private resolveDialogDestination(): Destination {
    const first = this.routeSet[0];
    if (first !== undefined) {
      try {
        return this.destinationOf(parseNameAddr(first).uri);
      } catch {
        return this.pbx;
      }
    }
    return this.destinationOf(this.remoteTarget ?? this.requestUri);
  }

  private dialogDestination(): Destination {
    return this.dialogDest ?? this.pbx;
  }

  /** Where a SIP URI points: its host and port when the host is an IP, else the PBX. */
  private destinationOf(uri: string): Destination {
    try {
      const u = parseSipUri(uri);
      const maddr = u.params.get('maddr');
      const host = maddr !== undefined && isIP(maddr) !== 0 ? maddr : u.host;
      if (isIP(host) === 0) return this.pbx;
      return { address: host, port: u.port ?? 5060 };
    } catch {
      return this.pbx;
    }
  }

  private inDialogRequest(method: string, body?: { type: string; content: string }): SipRequest {
    this.cseq++;
    const headers: Array<[string, string]> = [['Via', this.via()]];
    for (const r of this.routeHeaders()) headers.push(['Route', r]);
    headers.push(
      ['Max-Forwards', '70'],
      ['From', this.fromHeader],
      ['To', this.toHeader ?? `<${this.requestUri}>`],
      ['Call-ID', this.callId],
      ['CSeq', `${this.cseq} ${method}`],
      ['User-Agent', this.userAgent],
    );
    if (body) headers.push(['Content-Type', body.type]);
    return createRequest(method, this.requestTargetUri(), headers, body?.content);
  }

  private onStrayResponse(res: SipResponse): void {
    // A 2xx to our INVITE retransmitted after its transaction ended: ACK it again.
    if (res.status >= 200 && res.status < 300 && callIdOf(res) === this.callId && cseqOf(res).method === 'INVITE' && this.invite) {
      this.on2xx(this.invite, res);
    }
  }

  private onRequest(req: SipRequest, source: Destination): void {
    const respond = (status: number, extra: Array<[string, string]> = [], body?: string, opts: { onAckTimeout?: () => void } = {}): void => {
      const headers: Array<[string, string]> = [['User-Agent', this.userAgent], ...extra];
      this.transport.respond(req, createResponse(req, status, { toTag: this.localTag, headers, ...(body === undefined ? {} : { body }) }), source, opts);
    };
    const method = req.method;
    if (method === 'ACK') {
      this.onAck(req);
      return;
    }
    if (callIdOf(req) !== this.callId) {
      if (method === 'OPTIONS') respond(200, [['Allow', ALLOW], ['Accept', 'application/sdp']]);
      else if (method === 'INVITE') respond(486); // a caller takes no calls
      else respond(481);
      return;
    }
    if (method === 'CANCEL') {
      // Our answers to in-dialog requests are immediate, so there is never anything to cancel.
      respond(200);
      return;
    }
    const fromTag = tagOf(req.headers.get('from'));
    const toTag = tagOf(req.headers.get('to'));
    if (this.remoteTag === undefined || fromTag !== this.remoteTag || toTag !== this.localTag || this.state === 'ended') {
      respond(481);
      return;
    }
    const seq = cseqOf(req).seq;
    if (this.remoteCseq !== undefined && seq <= this.remoteCseq) {
      respond(500, [['Retry-After', '1']]);
      return;
    }
    this.remoteCseq = seq;
    switch (method) {
      case 'BYE':
        respond(200);
        void this.finish({ reason: 'remote-bye' });
        return;
      case 'INVITE':
      case 'UPDATE':
        this.onReOffer(req, respond);
        return;
      case 'OPTIONS':
        respond(200, [['Allow', ALLOW], ['Accept', 'application/sdp'], ['Contact', this.contact]]);
        return;
      case 'INFO':
      case 'NOTIFY':
      case 'MESSAGE':
        respond(200);
        return;
      case 'REFER':
        this.emit('refer', { referTo: req.headers.get('refer-to'), at: now() });
        respond(405, [['Allow', ALLOW]]);
        return;
      default:
        respond(405, [['Allow', ALLOW]]);
    }
  }

  /** re-INVITE / UPDATE: answer an offer with our SDP, or make one when none came (answer in ACK). */
  private onReOffer(
    req: SipRequest,
    respond: (status: number, extra?: Array<[string, string]>, body?: string, opts?: { onAckTimeout?: () => void }) => void,
  ): void {
    if (this.state !== 'answered') {
      respond(this.state === 'ending' ? 481 : 491);
      return;
    }
    const contact = req.headers.getList('contact')[0];
    if (contact !== undefined) {
      try {
        this.remoteTarget = parseNameAddr(contact).uri;
        if (this.routeSet.length === 0) this.dialogDest = this.destinationOf(this.remoteTarget);
      } catch {
        // keep the old target
      }
    }
    let direction: MediaDirection = 'sendrecv';
    if (req.body.length > 0) {
      let audio: SdpAudio | undefined;
      try {
        audio = parseSdp(req.body.toString('utf8')).audio;
      } catch {
        respond(488);
        return;
      }
      if (!audio || !acceptsPcmu(audio)) {
        respond(488);
        return;
      }
      direction = answerDirection(audio.direction);
      this.remoteMedia = audio;
      if (audio.port !== 0 && isIP(audio.address) !== 0) this.endpoint.setRemote(audio.address, audio.port);
    }
    if (direction !== this.sdpDirection) {
      this.sdpDirection = direction;
      this.sdpVersion++;
    }
    const local = this.endpoint.address();
    const sdp = buildAudioSdp({ address: local.host, port: local.port, sessionId: this.sdpSessionId, sessionVersion: this.sdpVersion, direction });
    const onAckTimeout = req.method === 'INVITE' ? (): void => void this.hangup() : undefined;
    respond(200, [['Contact', this.contact], ['Allow', ALLOW], ['Content-Type', 'application/sdp']], sdp, onAckTimeout ? { onAckTimeout } : {});
  }

  private onAck(req: SipRequest): void {
    // The answer to an offer we made in a 200 to an offerless re-INVITE.
    if (callIdOf(req) !== this.callId || req.body.length === 0) return;
    try {
      const audio = parseSdp(req.body.toString('utf8')).audio;
      if (audio && audio.port !== 0 && isIP(audio.address) !== 0) {
        this.remoteMedia = audio;
        this.endpoint.setRemote(audio.address, audio.port);
      }
    } catch {
      // a bad answer in an ACK cannot be refused; keep the old media
    }
  }

  // --- media -----------------------------------------------------------------------------------

  private readonly onAudio = (f: InboundAudio): void => {
    if (this.state === 'ended') return;
    if (!f.concealed) {
      const slot = this.ringCount++ % RING_PACKETS;
      this.ringAt[slot] = f.arrivalMs;
      this.ringDb[slot] = rmsDbfs(f.samples);
    }
    if (f.arrivalMs > this.vadCoveredUntil) this.vadCoveredUntil = f.arrivalMs;
    if (this.recordAudio) {
      this.received.push({ arrivalMs: f.arrivalMs, samples: f.samples.slice(), concealed: f.concealed, sequenceNumber: f.sequenceNumber });
    }
    this.vad.push(f, f.arrivalMs);
  };

  private readonly onTick = (tick: ClockTick): void => {
    if (this.state === 'ended' || !this.mediaStarted) return;
    if (!this.outputStopped && this.opts.idleAudio !== 'none' && !this.endpoint.pacer.busy) this.endpoint.enqueue(this.idleFrame);
    this.fillVadGap(tick.firedMs);
    if (++this.tickCount % 10 === 0) {
      const changes = this.endpoint.stats().jitter.ssrcChanges;
      if (changes > this.knownSsrcChanges) {
        this.knownSsrcChanges = changes;
        const at = now();
        this.sourceChanges.push(at);
        this.emit('source-change', { at, count: changes });
      }
    }
  };

  /**
   * The far end sends nothing (no RTP between talkspurts, or it stopped): once nothing came for
   * `silenceFillAfterMs`, feed the VAD silence for the time not covered, each 20 ms stamped
   * where it lies on the wire, so its turn still ends and its times stay wall-clock times.
   */
  private fillVadGap(nowMs: number): void {
    if (nowMs - this.vadCoveredUntil > 2000) this.vadCoveredUntil = nowMs - 2000; // after a stall, do not replay more than 2 s
    while (nowMs - this.vadCoveredUntil >= this.fillAfterMs + FRAME_MS) {
      this.vadCoveredUntil += FRAME_MS;
      this.vad.push(this.idleFrame, this.vadCoveredUntil);
    }
  }

  /**
   * Where the far end's sound starts, around a VAD onset at `onsetAt`: the VAD decides on 32 ms
   * windows, and a window may begin with silence (or silence fill); Silero also needs a little
   * voice before it is confident. So: from the first real packet at/after the onset, skip
   * packets below the sound floor (within two windows), then walk back over packets above it
   * (at most 240 ms). Falls back to `onsetAt` when no packet is known.
   */
  private soundStart(onsetAt: number): number {
    const n = Math.min(this.ringCount, RING_PACKETS);
    if (n === 0) return onsetAt;
    const at = (k: number): number => this.ringAt[k % RING_PACKETS] as number;
    const db = (k: number): number => this.ringDb[k % RING_PACKETS] as number;
    const oldest = this.ringCount - n;
    const newest = this.ringCount - 1;
    let j = newest;
    while (j > oldest && at(j - 1) >= onsetAt) j--;
    if (at(j) < onsetAt) return onsetAt;
    while (j < newest && db(j) < this.soundFloorDbfs && at(j + 1) < onsetAt + 64) j++;
    while (j > oldest && db(j - 1) >= this.soundFloorDbfs && at(j - 1) >= onsetAt - 240) j--;
    return at(j);
  }

  /**
   * Where the far end's sound ends, for a VAD end at `lastSpeechAt` (the packet completing the
   * last confident window; Silero stays confident a little after the voice stops, and a window
   * completed by silence fill carries a fill time): the last real packet at or before it, then
   * back over packets below the sound floor (at most 300 ms), never before `startedAt`.
   */
  private soundEnd(lastSpeechAt: number, startedAt: number): number {
    const n = Math.min(this.ringCount, RING_PACKETS);
    if (n === 0) return lastSpeechAt;
    const at = (k: number): number => this.ringAt[k % RING_PACKETS] as number;
    const db = (k: number): number => this.ringDb[k % RING_PACKETS] as number;
    const oldest = this.ringCount - n;
    let j = this.ringCount - 1;
    while (j > oldest && at(j) > lastSpeechAt) j--;
    if (at(j) > lastSpeechAt) return lastSpeechAt;
    const limit = at(j) - 300;
    while (j > oldest && db(j) < this.soundFloorDbfs && at(j - 1) >= limit && at(j - 1) >= startedAt) j--;
    return Math.max(startedAt, at(j));
  }

  private stopOutput(): void {
    this.outputStopped = true;
    this.endpoint.clear();
  }

  private async prepare(line: string | AudioFrame): Promise<PreparedLine> {
    if (this.state === 'ended') throw new CallEndedError(this.endInfo);
    if (typeof line === 'string') {
      const frame = await synthesizeSpeech(line, { ...this.opts.speech, sampleRate: 8000 });
      return { frame, text: line, voice: voicedExtent(frame) };
    }
    const frame = line.sampleRate === 8000 ? line : resampleFrame(line, 8000);
    if (frame.samples.length === 0) throw new Error('say: empty audio frame');
    return { frame, text: undefined, voice: voicedExtent(frame) };
  }

  private sayPrepared(line: PreparedLine): Promise<SayResult> {
    if (this.state !== 'answered' || this.outputStopped) return Promise.reject(new CallEndedError(this.endInfo));
    return new Promise<SayResult>((resolve, reject) => {
      const id = `line-${++this.sayCounter}`;
      this.pendingSays.set(id, { line, resolve, reject });
      this.endpoint.play(line.frame, id);
    });
  }

  private readonly onUtteranceDone = (u: Utterance): void => {
    const pending = this.pendingSays.get(u.id);
    if (!pending) return;
    this.pendingSays.delete(u.id);
    if (u.state !== 'played' || u.firstSentAtMs === undefined || u.lastSentAtMs === undefined) {
      pending.reject(new CallEndedError(this.endInfo));
      return;
    }
    const first = u.firstSentAtMs;
    const last = u.lastSentAtMs;
    const v = pending.line.voice;
    const packetAt = (ms: number): number => Math.min(last, first + Math.max(0, Math.floor(ms / FRAME_MS)) * FRAME_MS);
    const result: SayResult = {
      id: u.id,
      text: pending.line.text,
      durationMs: (pending.line.frame.samples.length * 1000) / 8000,
      firstSentAt: first,
      lastSentAt: last,
      speechStartSentAt: v ? packetAt(v.startMs) : undefined,
      lastSpeechSentAt: v ? packetAt(Math.max(0, v.endMs - 0.001)) : undefined,
    };
    this.said.push(result);
    this.lastCompletedSay = result;
    pending.resolve(result);
  };

  private readonly onVadEvent = (e: TurnEvent): void => {
    if (e.type === 'speech_start') {
      const prev = this.lastCompletedSay;
      // A window may begin with silence fill: the turn starts at the first real packet in it.
      const startedAt = this.soundStart(e.onsetAt);
      const overlapped = this.pendingSays.size > 0 || (prev?.lastSpeechSentAt !== undefined && prev.lastSpeechSentAt > startedAt);
      this.currentTurn = { startedAt, decidedAt: e.decidedAt, callerLine: overlapped ? undefined : prev, overlapped };
      // A line counts for the latency of the first turn after it only.
      if (!overlapped) this.lastCompletedSay = undefined;
      this.emit('agent-speech-start', { at: startedAt, decidedAt: e.decidedAt });
      const waiters = this.speechStartWaiters;
      this.speechStartWaiters = [];
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.resolve(startedAt);
      }
      return;
    }
    const cur = this.currentTurn;
    this.currentTurn = undefined;
    if (!cur) return;
    const line = cur.callerLine;
    const endedAt = this.soundEnd(e.lastSpeechAt, cur.startedAt);
    const turn: AgentTurn = {
      index: this.turns.length,
      startedAt: cur.startedAt,
      endedAt,
      decidedAt: e.decidedAt,
      speechMs: e.speechMs,
      audio: this.audioBetween(cur.startedAt, endedAt),
      callerLine: line,
      latencyMs: line?.lastSpeechSentAt === undefined ? undefined : cur.startedAt - line.lastSpeechSentAt,
      overlappedCaller: cur.overlapped,
      cutByHangup: this.flushingVad,
    };
    this.turns.push(turn);
    this.emit('agent-turn', turn);
    const waiter = this.turnWaiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(turn);
    } else {
      this.pendingTurns.push(turn);
    }
  };

  private audioBetween(fromMs: number, toMs: number): AudioFrame {
    const parts = this.received.filter((c) => c.arrivalMs >= fromMs && c.arrivalMs <= toMs);
    const out = new Int16Array(parts.reduce((n, c) => n + c.samples.length, 0));
    let off = 0;
    for (const c of parts) {
      out.set(c.samples, off);
      off += c.samples.length;
    }
    return { samples: out, sampleRate: 8000 };
  }

  // --- waiting ---------------------------------------------------------------------------------

  private addWaiter<T>(list: Array<Waiter<T>>, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = { resolve, reject, timer: undefined };
      w.timer = setTimeout(() => {
        const i = list.indexOf(w);
        if (i >= 0) list.splice(i, 1);
        reject(new CallerTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      list.push(w);
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.state === 'ended') return Promise.reject(new CallEndedError(this.endInfo));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter<void> = { resolve, reject, timer: undefined };
      w.timer = setTimeout(() => {
        this.sleepers.delete(w);
        resolve();
      }, ms);
      this.sleepers.add(w);
    });
  }

  // --- the end ---------------------------------------------------------------------------------

  private finish(end: { reason: CallEndReason; byeStatus?: number; error?: Error }): Promise<void> {
    this.finishing ??= this.teardown(end);
    return this.finishing;
  }

  private async teardown(end: { reason: CallEndReason; byeStatus?: number; error?: Error }): Promise<void> {
    const at = now();
    const wasAnswered = this.answeredAt !== undefined;
    this.state = 'ended';
    this.clearDialTimers();
    this.byeTx?.terminate();
    this.outputStopped = true;
    this.unregisterTick?.();
    this.unregisterTick = undefined;
    this.endInfo = {
      reason: end.reason,
      at,
      durationMs: wasAnswered ? at - (this.answeredAt as number) : 0,
      ...(end.byeStatus === undefined ? {} : { byeStatus: end.byeStatus }),
      ...(end.error === undefined ? {} : { error: end.error }),
      sourceChanges: this.sourceChanges.length,
    };
    const settle = this.settleDial;
    this.settleDial = undefined;
    settle?.reject(new SipCallError(`call ended before it was answered (${end.reason})`, 'transport'));

    const endInfo = this.endInfo;
    const step = async (fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.emit('error', err);
      }
    };
    try {
      await step(() => this.transport.close());
      await step(() => this.endpoint.close()); // clears the pacer: unsent lines reject with CallEndedError
      for (const p of this.pendingSays.values()) p.reject(new CallEndedError(endInfo));
      this.pendingSays.clear();
      await step(() => this.flushVad(at));
      await step(() => this.vad.close());
      if (this.ownedModel) {
        const model = this.ownedModel;
        await step(() => model.close());
      }
    } finally {
      const ended = new CallEndedError(endInfo);
      for (const w of [...this.turnWaiters.splice(0), ...this.speechStartWaiters.splice(0), ...this.sleepers]) {
        clearTimeout(w.timer);
        w.reject(ended);
      }
      this.sleepers.clear();
      this.emit('ended', endInfo);
      this.resolveEnded(endInfo);
    }
  }

  /**
   * Let a turn in progress end (feed the VAD enough silence to reach its end-of-turn decision),
   * and let inference in flight settle before the VAD and model are closed.
   */
  private async flushVad(at: number): Promise<void> {
    this.flushingVad = true;
    await this.vadIdle(); // windows still waiting for inference may start a turn
    if (this.currentTurn || this.vad.speaking) {
      const frames = Math.ceil((this.vad.endOfTurnSilenceMs + 3 * this.vad.windowMs) / FRAME_MS);
      for (let i = 0; i < frames; i++) this.vad.push(this.idleFrame, at);
      await this.vadIdle();
    }
    this.flushingVad = false;
  }

  private async vadIdle(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.vad.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
  }

  private emit<K extends keyof SipCallerEvents>(event: K, payload: SipCallerEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<K>)(payload);
      } catch (err) {
        if (event !== 'error') this.emit('error', err);
      }
    }
  }
}

function isLooseRoute(route: string): boolean {
  try {
    return parseSipUri(parseNameAddr(route).uri).params.has('lr');
  } catch {
    return true;
  }
}

function validateOptions(o: SipCallerOptions): void {
  const problems: string[] = [];
  if (isIP(o.host) === 0) problems.push(`host must be an IP literal, got "${o.host}"`);
  if (o.localIp !== undefined && isIP(o.localIp) === 0) problems.push(`localIp must be an IP literal, got "${o.localIp}"`);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) problems.push(`port must be 1..65535, got ${o.port}`);
  if (!SIP_USER.test(o.extension)) problems.push(`extension "${o.extension}" is not a valid SIP user part`);
  if (o.from !== undefined && !SIP_USER.test(o.from)) problems.push(`from "${o.from}" is not a valid SIP user part`);
  if (o.answerTimeoutMs !== undefined && !(o.answerTimeoutMs > 0)) problems.push('answerTimeoutMs must be > 0');
  if (problems.length > 0) throw new TypeError(`SipCaller.dial: ${problems.join('; ')}`);
}
