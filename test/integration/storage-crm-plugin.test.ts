/**
 * tools-crm as the plugin loader sees it: the manifest passes the loader's checks, the factory
 * starts on embedded PGlite with migrations and demo data and no other configuration, the
 * tools answer, close() releases everything; and a bad config block is refused at load time
 * with every problem named.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { ToolContext, ToolsProvider } from '../../src/plugins/api.js';
import { inspectPlugins, PluginLoadError, startPlugins, type LoadedPlugins } from '../../src/plugins/loader.js';

const ctx: ToolContext = {
  callId: 'c',
  turn: 0,
  idempotencyKey: 'c:0:1',
  callerNumber: '+12025550143',
  variables: new Map(),
  signal: new AbortController().signal,
  log: silentLogger,
};

describe('tools-crm through the plugin loader', () => {
  let loaded: LoadedPlugins | undefined;
  afterAll(async () => {
    await loaded?.close();
  });

  it('starts on embedded PGlite with the demo data when no database is configured', async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const inspected = await inspectPlugins({ 'tools-crm': { timezone: 'America/Chicago' } });
      expect(inspected).toMatchObject([{ name: 'tools-crm', kind: 'tools', version: '1.0.0' }]);
      expect(inspected[0]!.config).not.toHaveProperty('seedDemoData');
      expect(inspected[0]!.config).toMatchObject({ migrate: true, businessHours: { open: '08:00', close: '18:00', slotMinutes: 30, bays: 1 } });
      loaded = await startPlugins(inspected, { log: silentLogger, signal: new AbortController().signal, cacheDir: '/tmp', configDir: process.cwd() });
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
    const provider = loaded.tools.get('tools-crm') as ToolsProvider;
    expect(provider.tools).toHaveLength(11);
    const lookup = provider.tools.find((t) => t.name === 'lookup_customer')!;
    expect(await lookup.execute({}, ctx)).toMatchObject({ ok: true, data: { found: true, first_name: 'Maria' } });
  }, 180_000); // starting PGlite takes seconds, much longer on a loaded machine

  it('refuses a config with field errors, naming each one', async () => {
    const err = await inspectPlugins({
      'tools-crm': {
        timezone: 'Mars/Olympus_Mons',
        businessHours: { open: '8am', slotMinutes: 0, days: ['mon', 'funday'] },
        cache: { redisUrl: 'http://localhost:6379', ttlSeconds: -1 },
        seedDemoData: 'yes',
        databseUrl: 'postgres://typo',
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginLoadError);
    const messages = (err as PluginLoadError).problems.map((p) => p.message).join('\n');
    for (const expected of [
      /plugins\.tools-crm\.config\.timezone: must be an IANA time zone/,
      /businessHours\.open: must be a 24-hour time/,
      /businessHours\.slotMinutes/,
      /businessHours\.days\[1\]/,
      /cache\.redisUrl: must be a redis:\/\/ or rediss:\/\/ URL/,
      /cache\.ttlSeconds/,
      /seedDemoData: expected boolean/,
      /unknown key "databseUrl"/,
    ]) {
      expect(messages).toMatch(expected);
    }
  });

  it('refuses business hours, services and staff numbers that cannot work together', async () => {
    const err = await inspectPlugins({
      'tools-crm': {
        businessHours: { open: '18:00', close: '09:00', closedDates: ['2030-02-30'] },
        services: [
          { name: 'Oil change', minutes: 45 },
          { name: 'oil change', minutes: 30 },
        ],
        staffNumbers: ['front desk'],
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginLoadError);
    const messages = (err as PluginLoadError).problems.map((p) => p.message).join('\n');
    expect(messages).toMatch(/closedDates\[0\]: must be a date "YYYY-MM-DD"/);
    const second = await inspectPlugins({
      'tools-crm': {
        businessHours: { open: '18:00', close: '09:00' },
        services: [
          { name: 'Oil change', minutes: 45 },
          { name: 'oil change', minutes: 30 },
        ],
        staffNumbers: ['front desk'],
      },
    }).catch((e: unknown) => e);
    const all = (second as PluginLoadError).problems.map((p) => p.message).join('\n');
    expect(all).toMatch(/close must be after businessHours\.open/);
    expect(all).toMatch(/service "Oil change" lasts 45 min, not a multiple of slotMinutes \(30\)/);
    expect(all).toMatch(/two services have the same name/);
    expect(all).toMatch(/staffNumbers\.\[0\]|staffNumbers\[0\]: "front desk" is not a phone number/);
  });

  it('fails to start, closing what it opened, when the configured database is unreachable', async () => {
    const inspected = await inspectPlugins({ 'tools-crm': { databaseUrl: 'postgres://postgres@127.0.0.1:1/nothing', connectRetrySeconds: 1 } });
    const started = Date.now();
    const err = await startPlugins(inspected, { log: silentLogger, signal: new AbortController().signal, cacheDir: '/tmp', configDir: process.cwd() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginLoadError);
    expect((err as PluginLoadError).problems[0]).toMatchObject({ plugin: 'tools-crm', code: 'factory_failed', message: expect.stringMatching(/ECONNREFUSED|connect/) as string });
    // It kept trying for about connectRetrySeconds, not forever.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
