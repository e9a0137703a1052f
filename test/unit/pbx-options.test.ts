/** Sandbox instance options: where ports come from and which combinations are refused. */
import { createServer } from 'node:net';
import { describe, expect, test } from 'vitest';
import { TEST_SLOTS, freeTestPorts, slotPorts, testPorts } from '../support/pbx.js';
import { DEFAULT_PORTS, resolveCommon, resolvePorts, validatePorts } from '../../src/pbx/options.js';
import { cacheRoot, credentialsPath, instancePaths, rootfsPath, stateDirectory, validateInstanceName, REPO_ROOT } from '../../src/pbx/paths.js';

describe('ports', () => {
  test('flags win over the environment, which wins over the stored ports, then defaults', () => {
    const env = { SWITCHBOARD_PBX_SIP_PORT: '26060', SWITCHBOARD_PBX_HTTP_PORT: '28089' };
    const stored = { sip: 27060, http: 27088, ami: 27038 };
    expect(resolvePorts({ sipPort: 25060 }, env, stored)).toEqual({
      sip: 25060, // flag
      http: 28089, // env
      ami: 27038, // stored
      rtpStart: DEFAULT_PORTS.rtpStart, // default
      rtpEnd: DEFAULT_PORTS.rtpEnd,
    });
    expect(resolvePorts({}, {}, undefined)).toEqual(DEFAULT_PORTS);
  });

  test('a non-numeric environment port is an error naming the variable', () => {
    expect(() => resolvePorts({}, { SWITCHBOARD_PBX_AMI_PORT: 'five' })).toThrow(/SWITCHBOARD_PBX_AMI_PORT="five"/);
  });

  test('refuses privileged, clashing, odd-aligned, tiny or overlapping port sets, naming every problem', () => {
    const ok = { sip: 5060, http: 8088, ami: 5038, rtpStart: 10000, rtpEnd: 10999 };
    expect(() => validatePorts(ok)).not.toThrow();
    expect(() => validatePorts({ ...ok, sip: 80 })).toThrow(/sip port 80 is not an unprivileged port/);
    expect(() => validatePorts({ ...ok, ami: 8088 })).toThrow(/http and ami ports are both 8088/);
    expect(() => validatePorts({ ...ok, rtpStart: 10001 })).toThrow(/must be even/);
    expect(() => validatePorts({ ...ok, rtpEnd: 10010 })).toThrow(/too small/);
    expect(() => validatePorts({ ...ok, sip: 10500 })).toThrow(/sip port 10500 is inside the RTP range/);
    let message = '';
    try {
      validatePorts({ sip: 80, http: 80, ami: 70000, rtpStart: 3, rtpEnd: 4 });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n').length).toBeGreaterThanOrEqual(6);
  });
});

describe('instance names and paths', () => {
  test('instance names: short, lowercase, no path tricks', () => {
    for (const ok of ['default', 'test', 'smoke-b', 'bench_200', 'a']) expect(validateInstanceName(ok)).toBe(ok);
    for (const bad of ['', '../etc', 'a/b', 'Upper', '-lead', 'x'.repeat(41), 'sp ace']) {
      expect(() => validateInstanceName(bad)).toThrow(/invalid instance name/);
    }
  });

  test('the instance name comes from the option, then SWITCHBOARD_PBX_INSTANCE, then "default"', () => {
    expect(resolveCommon({ env: {} }).instance).toBe('default');
    expect(resolveCommon({ env: { SWITCHBOARD_PBX_INSTANCE: 'dev2' } }).instance).toBe('dev2');
    expect(resolveCommon({ instance: 'x1', env: { SWITCHBOARD_PBX_INSTANCE: 'dev2' } }).instance).toBe('x1');
  });

  test('cache dir: SWITCHBOARD_CACHE_DIR, else XDG_CACHE_HOME/switchboard, else ~/.cache/switchboard', () => {
    expect(cacheRoot({ SWITCHBOARD_CACHE_DIR: '/tmp/sb', XDG_CACHE_HOME: '/x' })).toBe('/tmp/sb');
    expect(cacheRoot({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/switchboard');
    expect(cacheRoot({ HOME: '/home/u' })).toBe('/home/u/.cache/switchboard');
    expect(rootfsPath('/tmp/sb')).toBe('/tmp/sb/asterisk-rootfs');
  });

  test('credentials live in the repository’s git-ignored .switchboard/ unless SWITCHBOARD_STATE_DIR says otherwise', () => {
    expect(credentialsPath(stateDirectory({}), 'default')).toBe(`${REPO_ROOT}.switchboard/pbx-default.json`);
    expect(credentialsPath(stateDirectory({ SWITCHBOARD_STATE_DIR: '/s' }), 'x')).toBe('/s/pbx-x.json');
  });

  test('two instances never share a directory', () => {
    const a = instancePaths('/c/asterisk-rootfs', 'a');
    const b = instancePaths('/c/asterisk-rootfs', 'b');
    for (const key of ['etc', 'run', 'log', 'spool', 'lib', 'cache', 'stateFile'] as const) expect(a[key]).not.toBe(b[key]);
    expect(a.etc).toBe('/c/asterisk-rootfs/srv/switchboard/a/etc');
    expect(a.chrootAsteriskConf).toBe('/srv/switchboard/a/etc/asterisk.conf');
    expect(a.dirs.astdatadir).toBe('/usr/share/asterisk'); // shared, read-only data
  });
});

describe('test instance ports (test/support/pbx.ts)', () => {
  test('every slot has its own SIP, HTTP and AMI ports, none inside any RTP range', () => {
    const seen = new Set<number>();
    for (let slot = 0; slot < TEST_SLOTS; slot++) {
      const p = slotPorts(slot);
      expect(() => validatePorts(p)).not.toThrow();
      for (const port of [p.sip, p.http, p.ami]) {
        expect(seen.has(port)).toBe(false);
        seen.add(port);
      }
    }
    for (let slot = 0; slot < TEST_SLOTS; slot++) {
      const { rtpStart, rtpEnd } = slotPorts(slot);
      for (const port of seen) expect(port >= rtpStart && port <= rtpEnd).toBe(false);
    }
    expect(testPorts('test')).toEqual(slotPorts(0));
    expect(testPorts('smoke')).toEqual(testPorts('smoke')); // stable
  });

  test('freeTestPorts moves to the next slot when the preferred one is taken', async () => {
    const name = 'unit-free-ports';
    const preferred = testPorts(name);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(preferred.http, '127.0.0.1', () => resolve()));
    try {
      const got = await freeTestPorts(name);
      expect(got.http).not.toBe(preferred.http);
      expect(got.sip).not.toBe(preferred.sip);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });
});
