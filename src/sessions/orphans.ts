/**
 * What a dead Switchboard left in Asterisk. When Switchboard crashes or is killed, Asterisk
 * keeps the callers' channels in the Stasis application (Stasis() only returns when the app
 * lets go), together with each call's ExternalMedia channel and mixing bridge. After a
 * (re)connect the controller lists channels and bridges and sorts out, from the lists alone:
 *
 * - callers: channels running Stasis(<app>) that this process does not own (to adopt, or to
 *   hand to a human when no session survived);
 * - stale media: ExternalMedia (UnicastRTP) channels in the app that this process does not own
 *   (their RTP goes to a socket that no longer exists): hung up;
 * - stale bridges: bridges that hold such channels and none this process owns: destroyed;
 * - lost calls: calls this process owns whose channel is gone (their StasisEnd was missed
 *   while the WebSocket was down).
 *
 * A channel is in the app when Asterisk reports it running the Stasis application with the
 * app's name as its first argument (ARI's dialplan.app_name / app_data).
 */
import type { AriBridge, AriChannel } from '../ari/types.js';

export interface OrphanScan {
  callers: AriChannel[];
  staleMedia: AriChannel[];
  staleBridges: AriBridge[];
  /** Owned call ids (of those passed in `ownedBefore`) whose channel is no longer listed. */
  lostCalls: string[];
}

export interface OrphanScanInput {
  app: string;
  channels: readonly AriChannel[];
  bridges: readonly AriBridge[];
  /** Whether this process owns the channel (a call of its own, or one of its media channels). */
  owns: (channelId: string) => boolean;
  /** Caller channel ids this process owned before the lists were requested. */
  ownedBefore?: readonly string[];
}

export function isMediaChannel(c: AriChannel): boolean {
  return c.name.startsWith('UnicastRTP/');
}

/** The channel is executing Stasis(<app>[,args]). */
export function inStasisApp(c: AriChannel, app: string): boolean {
  const dp = c.dialplan;
  if (!dp || dp.appName?.toLowerCase() !== 'stasis') return false;
  return (dp.appData ?? '').split(',')[0]!.trim() === app;
}

export function scanOrphans(input: OrphanScanInput): OrphanScan {
  const callers: AriChannel[] = [];
  const staleMedia: AriChannel[] = [];
  for (const c of input.channels) {
    if (!c.id || input.owns(c.id) || !inStasisApp(c, input.app)) continue;
    (isMediaChannel(c) ? staleMedia : callers).push(c);
  }
  const orphanIds = new Set([...callers, ...staleMedia].map((c) => c.id));
  const staleBridges = input.bridges.filter(
    (b) => b.id && b.channels.some((id) => orphanIds.has(id)) && !b.channels.some((id) => input.owns(id)),
  );
  const listed = new Set(input.channels.map((c) => c.id));
  const lostCalls = (input.ownedBefore ?? []).filter((id) => !listed.has(id));
  return { callers, staleMedia, staleBridges, lostCalls };
}
