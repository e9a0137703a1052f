/**
 * Switchboard's own typed view of ARI. Everything outside src/ari talks to these types only;
 * the ari-client package is an implementation detail of ari-connection.ts.
 */

export interface AriCaller {
  name: string;
  number: string;
}

export interface AriChannel {
  id: string;
  name: string;
  state: string;
  caller: AriCaller;
  /** Where the channel is in the dialplan; appName/appData: the application it runs ("Stasis", "<app>,<args>"). */
  dialplan?: { context: string; exten: string; priority: number; appName?: string | undefined; appData?: string | undefined } | undefined;
  channelvars?: Record<string, string> | undefined;
}

export interface AriBridge {
  id: string;
  bridgeType: string;
  channels: string[];
}

export type ExternalMediaFormat = 'ulaw' | 'alaw' | 'slin16';

export interface ExternalMediaRequest {
  app: string;
  /** host:port where Switchboard's RTP endpoint listens. */
  externalHost: string;
  format: ExternalMediaFormat;
  channelId?: string;
  variables?: Record<string, string>;
}

export interface ExternalMediaChannel {
  channel: AriChannel;
  /** Asterisk's side of the RTP stream (UNICASTRTP_LOCAL_ADDRESS/PORT). */
  asteriskRtp?: { host: string; port: number } | undefined;
}

/** Events the call engine handles. Everything else arrives as `Unhandled` and is counted. */
export type AriEvent =
  | { type: 'StasisStart'; channel: AriChannel; args: string[] }
  | { type: 'StasisEnd'; channel: AriChannel }
  | { type: 'ChannelDtmfReceived'; channel: AriChannel; digit: string; durationMs: number }
  | { type: 'ChannelHangupRequest'; channel: AriChannel; cause: number | undefined }
  | { type: 'ChannelDestroyed'; channel: AriChannel; cause: number; causeText: string }
  /** `known`: a type the engine ignores on purpose; otherwise unexpected (or malformed). */
  | { type: 'Unhandled'; rawType: string; known: boolean };

export type AriEventType = AriEvent['type'];

export type HangupReason = 'normal' | 'busy' | 'congestion' | 'no_answer' | 'answered_elsewhere';

/** REST operations the engine uses. Each rejects with AriRequestError. */
export interface AriControl {
  answer(channelId: string): Promise<void>;
  hangup(channelId: string, reason?: HangupReason): Promise<void>;
  getChannelVar(channelId: string, variable: string): Promise<string | undefined>;
  setChannelVar(channelId: string, variable: string, value: string): Promise<void>;
  createBridge(type?: 'mixing', name?: string): Promise<AriBridge>;
  addToBridge(bridgeId: string, channelIds: string[]): Promise<void>;
  destroyBridge(bridgeId: string): Promise<void>;
  externalMedia(req: ExternalMediaRequest): Promise<ExternalMediaChannel>;
  /** Send the channel back to the dialplan (used for transfers to allowlisted extensions). */
  continueInDialplan(channelId: string, target: { context: string; extension: string; priority?: number }): Promise<void>;
  listChannels(): Promise<AriChannel[]>;
  listBridges(): Promise<AriBridge[]>;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface AriConnection extends AriControl {
  readonly app: string;
  readonly state: ConnectionState;
  onEvent(handler: (event: AriEvent) => void): () => void;
  onStateChange(handler: (state: ConnectionState, detail?: string) => void): () => void;
  close(): Promise<void>;
}

export class AriRequestError extends Error {
  override readonly name = 'AriRequestError';
  constructor(
    readonly operation: string,
    /** Asterisk's own message ("Channel not found"), when it sent one. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`ARI ${operation} failed: ${detail}`, options);
  }
}
