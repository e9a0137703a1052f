/**
 * What a dead Switchboard left in the Stasis app, sorted from ARI's channel and bridge lists
 * (shapes as Asterisk 22 reports them after a SIGKILL: the caller still in Stasis(switchboard),
 * its UnicastRTP channel and the mixing bridge holding both).
 */
import { describe, expect, it } from 'vitest';
import type { AriBridge, AriChannel } from '../../src/ari/types.js';
import { inStasisApp, scanOrphans } from '../../src/sessions/orphans.js';

function channel(id: string, name: string, appData = 'switchboard', appName = 'Stasis'): AriChannel {
  return { id, name, state: 'Up', caller: { number: 'sipp', name: 'sipp' }, dialplan: { context: 'sub-switchboard', exten: 's', priority: 3, appName, appData } };
}

const CALLER = channel('1795262491.0', 'PJSIP/sandbox-loopback-00000000');
const MEDIA = channel('1795262491.0-media', 'UnicastRTP/127.0.0.1:52951-0x7ff62801f0e0');
const BRIDGE: AriBridge = { id: 'c905b4dc', bridgeType: 'mixing', channels: [CALLER.id, MEDIA.id] };

describe('scanOrphans', () => {
  it('finds the caller, its stale media channel and bridge after a restart', () => {
    const scan = scanOrphans({ app: 'switchboard', channels: [MEDIA, CALLER], bridges: [BRIDGE], owns: () => false });
    expect(scan.callers.map((c) => c.id)).toEqual([CALLER.id]);
    expect(scan.staleMedia.map((c) => c.id)).toEqual([MEDIA.id]);
    expect(scan.staleBridges.map((b) => b.id)).toEqual(['c905b4dc']);
    expect(scan.lostCalls).toEqual([]);
  });

  it('leaves alone what this process owns, other apps and channels outside Stasis', () => {
    const mine = new Set([CALLER.id, MEDIA.id]);
    const other = channel('9.1', 'PJSIP/x-1', 'otherapp');
    const queue = channel('9.2', 'PJSIP/x-2', 'operators', 'Queue');
    const bare = { ...channel('9.3', 'PJSIP/x-3'), dialplan: undefined };
    const otherBridge: AriBridge = { id: 'ob', bridgeType: 'mixing', channels: ['9.1'] };
    const scan = scanOrphans({ app: 'switchboard', channels: [CALLER, MEDIA, other, queue, bare], bridges: [BRIDGE, otherBridge], owns: (id) => mine.has(id) });
    expect(scan).toEqual({ callers: [], staleMedia: [], staleBridges: [], lostCalls: [] });
  });

  it('a bridge with a channel this process owns is never destroyed', () => {
    const mixed: AriBridge = { id: 'm', bridgeType: 'mixing', channels: [CALLER.id, 'mine-media'] };
    const scan = scanOrphans({ app: 'switchboard', channels: [CALLER], bridges: [mixed], owns: (id) => id === 'mine-media' });
    expect(scan.staleBridges).toEqual([]);
    expect(scan.callers).toHaveLength(1);
  });

  it('owned calls whose channel is gone are lost (their StasisEnd was missed)', () => {
    const scan = scanOrphans({ app: 'switchboard', channels: [CALLER], bridges: [], owns: (id) => id === CALLER.id || id === 'gone', ownedBefore: [CALLER.id, 'gone'] });
    expect(scan.lostCalls).toEqual(['gone']);
  });

  it('reads the Stasis arguments: the app is the first one', () => {
    expect(inStasisApp(channel('a', 'PJSIP/a', 'switchboard,echo'), 'switchboard')).toBe(true);
    expect(inStasisApp(channel('a', 'PJSIP/a', 'switchboard2'), 'switchboard')).toBe(false);
    expect(inStasisApp(channel('a', 'PJSIP/a', 'switchboard', 'stasis'), 'switchboard')).toBe(true);
  });
});
