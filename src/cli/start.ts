/** `switchboard start`: connect to Asterisk over ARI and answer calls until SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';
import type { CliCommand } from './main.js';

export const startCommand: CliCommand = {
  summary: 'Run Switchboard: connect to ARI and answer calls.',
  usage: [
    'Usage: switchboard start [options]',
    '',
    '  --agent NAME        agent that answers calls unless the dialplan picks one (default: echo)',
    '  --format FMT        ExternalMedia format: ulaw | alaw | slin16 (default: ulaw)',
    '  --instance NAME     sandbox PBX whose generated credentials to use (default: default)',
    '  --max-calls N       admission limit; callers past it go to the overflow target (default: 250)',
    '  --http-port N       port for /metrics and /health on 127.0.0.1 (default: 9464; 0 = off)',
    '',
    'ARI_URL, ARI_USERNAME and ARI_PASSWORD override the sandbox credentials file.',
  ].join('\n'),
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        agent: { type: 'string', default: 'echo' },
        format: { type: 'string', default: 'ulaw' },
        instance: { type: 'string', default: process.env.SWITCHBOARD_PBX_INSTANCE ?? 'default' },
        'max-calls': { type: 'string', default: '250' },
        'http-port': { type: 'string', default: '9464' },
      },
      strict: true,
    });
    const { startSwitchboard, resolveAriCredentials } = await import('../app.js');
    const format = values.format;
    if (format !== 'ulaw' && format !== 'alaw' && format !== 'slin16') {
      console.error(`switchboard start: --format must be ulaw, alaw or slin16 (got "${format}")`);
      return 2;
    }
    const maxCalls = Number(values['max-calls']);
    const httpPort = Number(values['http-port']);
    if (!Number.isInteger(maxCalls) || maxCalls < 1) {
      console.error('switchboard start: --max-calls must be a positive integer');
      return 2;
    }
    if (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535) {
      console.error('switchboard start: --http-port must be a port number');
      return 2;
    }
    const ari = await resolveAriCredentials(values.instance);
    const app = await startSwitchboard({ ari, defaultAgent: values.agent, format, maxCalls, httpPort });
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await app.stop();
    return 0;
  },
};
