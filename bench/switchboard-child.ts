/**
 * Switchboard for the latency benchmark: what `switchboard start` runs (same options,
 * same startSwitchboard()), plus one log line per ended call ("call summary") carrying the
 * call's turn and barge-in records, including the VAD decision times the CLI does not log.
 *
 *   node --import tsx bench/switchboard-child.ts --instance NAME --agent echo --http-port N [--max-calls N]
 */
import { parseArgs } from 'node:util';
import { resolveAriCredentials, startSwitchboard } from '../src/app.js';
import { createLogger } from '../src/log.js';

const { values } = parseArgs({
  options: {
    instance: { type: 'string', default: 'default' },
    agent: { type: 'string', default: 'echo' },
    'http-port': { type: 'string', default: '9464' },
    'max-calls': { type: 'string', default: '250' },
  },
  strict: true,
});

const log = createLogger();
const app = await startSwitchboard({
  ari: await resolveAriCredentials(values.instance),
  defaultAgent: values.agent,
  maxCalls: Number(values['max-calls']),
  httpPort: Number(values['http-port']),
  logger: log,
  onCallEnded: (summary) => {
    log.info(
      {
        callId: summary.info.callId,
        outcome: summary.outcome,
        durationMs: summary.durationMs,
        turns: summary.turns,
        bargeIns: summary.bargeIns,
      },
      'call summary',
    );
  },
});
await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await app.stop();
