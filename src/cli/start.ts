/**
 * `switchboard start`: connect to Asterisk over ARI and answer calls until SIGINT/SIGTERM.
 * With a config file (--config, $SWITCHBOARD_CONFIG or ./switchboard.yaml) the agents and
 * plugins come from it; without one, only the built-in echo agent runs (media testing).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CliCommand } from './main.js';

export const startCommand: CliCommand = {
  summary: 'Run Switchboard: connect to ARI and answer calls.',
  usage: [
    'Usage: switchboard start [--config FILE] [options]',
    '',
    '  --config FILE       switchboard.yaml to run (default: $SWITCHBOARD_CONFIG, else ./switchboard.yaml if present)',
    '  --echo              ignore any config: run only the built-in echo agent (media testing)',
    '',
    'Without a config file (or with --echo):',
    '  --agent NAME        agent that answers calls unless the dialplan picks one (default: echo)',
    '  --format FMT        ExternalMedia format: ulaw | alaw | slin16 (default: ulaw)',
    '  --instance NAME     sandbox PBX whose generated credentials to use (default: default)',
    '  --max-calls N       admission limit; callers past it go to the overflow queue (default: 250)',
    '  --http-port N       port for /metrics and /health on 127.0.0.1 (default: 9464; 0 = off)',
    '',
    'ARI_URL, ARI_USERNAME and ARI_PASSWORD override the sandbox credentials file.',
  ].join('\n'),
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        echo: { type: 'boolean', default: false },
        agent: { type: 'string', default: 'echo' },
        format: { type: 'string', default: 'ulaw' },
        instance: { type: 'string', default: process.env.SWITCHBOARD_PBX_INSTANCE ?? 'default' },
        'max-calls': { type: 'string', default: '250' },
        'http-port': { type: 'string' },
      },
      strict: true,
    });
    const httpPort = values['http-port'] === undefined ? undefined : Number(values['http-port']);
    if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535)) {
      console.error('switchboard start: --http-port must be a port number');
      return 2;
    }
    const { resolveConfigPath } = await import('../config/load.js');
    const configPath = values.echo ? undefined : values.config ? values.config : process.env.SWITCHBOARD_CONFIG || existsSync('switchboard.yaml') ? resolveConfigPath(undefined) : undefined;

    let stop: () => Promise<void>;
    if (configPath) {
      const { loadConfig, ConfigError } = await import('../config/load.js');
      const { startFromConfig } = await import('../runtime.js');
      try {
        const loaded = await loadConfig(configPath);
        const running = await startFromConfig(loaded, httpPort === undefined ? {} : { httpPort });
        stop = () => running.stop();
      } catch (err) {
        if (err instanceof ConfigError || (err instanceof Error && err.name === 'PluginLoadError')) {
          console.error(err.message);
          return 1;
        }
        // Anything else that stops start-up (Asterisk unreachable, the records store held by
        // another process, a port in use): one clear line, not a stack trace.
        if (err instanceof Error) {
          console.error(`switchboard start: could not start: ${err.message}`);
          if (process.env.SWITCHBOARD_LOG_LEVEL === 'debug' && err.stack) console.error(err.stack);
          return 1;
        }
        throw err;
      }
    } else {
      const { startSwitchboard, resolveAriCredentials } = await import('../app.js');
      const format = values.format;
      if (format !== 'ulaw' && format !== 'alaw' && format !== 'slin16') {
        console.error(`switchboard start: --format must be ulaw, alaw or slin16 (got "${format}")`);
        return 2;
      }
      const maxCalls = Number(values['max-calls']);
      if (!Number.isInteger(maxCalls) || maxCalls < 1) {
        console.error('switchboard start: --max-calls must be a positive integer');
        return 2;
      }
      const ari = await resolveAriCredentials(values.instance);
      const app = await startSwitchboard({ ari, defaultAgent: values.agent, format, maxCalls, httpPort: httpPort ?? 9464 });
      stop = () => app.stop();
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await stop();
    return 0;
  },
};
