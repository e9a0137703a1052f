/**
 * Translate raw ARI JSON into typed values. Nothing here trusts the wire: a field of the
 * wrong type becomes a neutral default, and an event we do not handle becomes `Unhandled`.
 */
import type { AriBridge, AriChannel, AriEvent } from './types.js';

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function strRecord(v: unknown): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Json)) if (typeof val === 'string') out[k] = val;
  return out;
}

export function toAriChannel(raw: unknown): AriChannel {
  const c = obj(raw);
  const caller = obj(c.caller);
  const dp = c.dialplan === undefined ? undefined : obj(c.dialplan);
  return {
    id: str(c.id),
    name: str(c.name),
    state: str(c.state),
    caller: { name: str(caller.name), number: str(caller.number) },
    dialplan: dp
      ? {
          context: str(dp.context),
          exten: str(dp.exten),
          priority: num(dp.priority) ?? 1,
          ...(typeof dp.app_name === 'string' ? { appName: dp.app_name } : {}),
          ...(typeof dp.app_data === 'string' ? { appData: dp.app_data } : {}),
        }
      : undefined,
    channelvars: strRecord(c.channelvars),
  };
}

export function toAriBridge(raw: unknown): AriBridge {
  const b = obj(raw);
  return {
    id: str(b.id),
    bridgeType: str(b.bridge_type),
    channels: Array.isArray(b.channels) ? b.channels.filter((x): x is string => typeof x === 'string') : [],
  };
}

/**
 * Event types Asterisk sends to a Stasis app that the engine deliberately does not act on.
 * They arrive as `Unhandled` with `known: true`; anything else is unexpected and logged.
 */
export const IGNORED_EVENT_TYPES: ReadonlySet<string> = new Set([
  'ChannelVarset',
  'ChannelStateChange',
  'ChannelDialplan',
  'ChannelCallerId',
  'ChannelConnectedLine',
  'ChannelEnteredBridge',
  'ChannelLeftBridge',
  'ChannelTalkingStarted',
  'ChannelTalkingFinished',
  'ChannelHold',
  'ChannelUnhold',
  'ChannelToneDetected',
  'BridgeCreated',
  'BridgeDestroyed',
  'BridgeMerged',
  'BridgeBlindTransfer',
  'BridgeAttendedTransfer',
  'Dial',
  'PlaybackStarted',
  'PlaybackContinuing',
  'PlaybackFinished',
  'RecordingStarted',
  'RecordingFinished',
  'RecordingFailed',
  'ChannelUserevent',
  'DeviceStateChanged',
  'EndpointStateChange',
  'PeerStatusChange',
  'ContactStatusChange',
  'ApplicationReplaced',
  'ApplicationMoveFailed',
  'ChannelCreated',
]);

export function translateAriEvent(raw: unknown): AriEvent {
  const e = obj(raw);
  const type = str(e.type, '<missing type>');
  const hasChannel = typeof e.channel === 'object' && e.channel !== null && typeof obj(e.channel).id === 'string';
  if (!hasChannel) return { type: 'Unhandled', rawType: type, known: IGNORED_EVENT_TYPES.has(type) };
  const channel = toAriChannel(e.channel);
  switch (type) {
    case 'StasisStart':
      return { type, channel, args: Array.isArray(e.args) ? e.args.filter((a): a is string => typeof a === 'string') : [] };
    case 'StasisEnd':
      return { type, channel };
    case 'ChannelDtmfReceived': {
      const digit = str(e.digit);
      if (!/^[0-9A-D*#]$/.test(digit)) return { type: 'Unhandled', rawType: `${type}(bad digit)`, known: false };
      return { type, channel, digit, durationMs: num(e.duration_ms) ?? 0 };
    }
    case 'ChannelHangupRequest':
      return { type, channel, cause: num(e.cause) };
    case 'ChannelDestroyed':
      return { type, channel, cause: num(e.cause) ?? 0, causeText: str(e.cause_txt) };
    default:
      return { type: 'Unhandled', rawType: type, known: IGNORED_EVENT_TYPES.has(type) };
  }
}
