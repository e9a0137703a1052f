/**
 * `npm run demo`: one command that starts the sandbox PBX if needed, starts Switchboard with
 * the offline plugins and a scenario pack, places scripted calls through the PBX and prints
 * each conversation as a two-sided transcript with per-turn latency. Exit code 0 only if every
 * conversation reached its goal. `--live` keeps everything running afterwards and prints how
 * to call in from a softphone.
 *
 *   npm run demo                          # the call-centre pack (order status, complaint, barge-in)
 *   npm run demo -- --pack car-service    # booking / moving / cancelling service appointments
 *   npm run demo -- --pack micromobility  # trip, lock and red-zone support line
 *   npm run demo -- --pack all            # the three, one after the other
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { pbxDown, pbxUp } from '../pbx/instance.js';
import { startFromConfig } from '../runtime.js';
import { createCallerVoice } from './caller-voice.js';
import { ConversationRecorder, formatTranscript, runScriptedCall, SummaryInbox } from './scripted-call.js';
import { CrmConfigSchema } from '../../plugins/tools-crm/config.js';
import type { LoadedConfig } from '../config/load.js';
import { carServiceScripts } from './scenario-scripts/car-service.js';
import { MICROMOBILITY_SCRIPTS } from './scenario-scripts/micromobility.js';
import type { DemoScript } from './scripted-call.js';
import { DEMO_SCRIPTS } from './scripts.js';

const REPO = resolve(import.meta.dirname, '../..');

interface DemoPack {
  config: string;
  plugins: string;
  scripts(loaded: LoadedConfig): readonly DemoScript[];
}

/** The seeds' three businesses, each a config + scenario + scripted callers. */
const PACKS: Record<string, DemoPack> = {
  'call-centre': {
    config: 'demo/switchboard.demo.yaml',
    plugins: 'stt-pocketsphinx, llm-script (scenarios/call-centre.yaml), tts-flite, tools-crm',
    scripts: () => DEMO_SCRIPTS,
  },
  'car-service': {
    config: 'scenarios/car-service.switchboard.yaml',
    plugins: 'stt-pocketsphinx (grammar), llm-script (scenarios/car-service.yaml), tts-flite, tools-crm',
    // The callers pick days the garage is open, two to six days from today.
    scripts: (loaded) => {
      const crm = CrmConfigSchema.parse(loaded.config.plugins['tools-crm']?.config ?? {});
      return Object.values(carServiceScripts({ timezone: crm.timezone, hours: crm.businessHours }));
    },
  },
  micromobility: {
    config: 'scenarios/micromobility.switchboard.yaml',
    plugins: 'stt-pocketsphinx (grammar), llm-script (scenarios/micromobility.yaml), tts-flite, tools-micromobility',
    scripts: () => MICROMOBILITY_SCRIPTS,
  },
};

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      live: { type: 'boolean', default: false },
      script: { type: 'string', multiple: true },
      verbose: { type: 'boolean', default: false },
      instance: { type: 'string', default: process.env.SWITCHBOARD_DEMO_INSTANCE ?? 'demo' },
      pack: { type: 'string', default: 'call-centre' },
      config: { type: 'string' },
    },
  });
  const packNames = values.pack === 'all' ? Object.keys(PACKS) : [values.pack];
  const unknown = packNames.filter((p) => !PACKS[p]);
  if (unknown.length > 0) {
    console.error(`unknown pack "${unknown.join(', ')}"; available: ${Object.keys(PACKS).join(', ')}, all`);
    return 2;
  }
  if (values.config && packNames.length > 1) {
    console.error('--config needs a single --pack');
    return 2;
  }
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const instance = values.instance;
  const ports = {
    sipPort: Number(process.env.SWITCHBOARD_DEMO_SIP_PORT ?? 25190),
    httpPort: Number(process.env.SWITCHBOARD_DEMO_HTTP_PORT ?? 28190),
    amiPort: Number(process.env.SWITCHBOARD_DEMO_AMI_PORT ?? 25290),
    rtpStart: 44000,
    rtpEnd: 44999,
  };

  say(`Starting the sandbox PBX "${instance}" (the first run builds Asterisk; later runs take seconds)...`);
  const pbx = await pbxUp({ instance, ...ports, log: values.verbose ? (m) => say(`  [pbx] ${m}`) : () => undefined });
  const startedPbx = !pbx.alreadyRunning;
  const c = pbx.connection;
  const inbox = new SummaryInbox();
  const recorder = new ConversationRecorder();
  const logger = createLogger({ level: values.verbose ? 'info' : 'warn', destination: process.stderr });

  const callerVoice = await createCallerVoice(logger, REPO);
  let failures = 0;
  let ran = 0;
  try {
    for (const packName of packNames) {
      const pack = PACKS[packName]!;
      say('');
      say(`##### ${packName}: Switchboard with ${pack.plugins} (embedded PostgreSQL)...`);
      const loaded = await loadConfig(values.config ?? join(REPO, pack.config));
      const all = pack.scripts(loaded);
      const scripts = values.script?.length ? all.filter((s) => values.script!.includes(s.name)) : all;
      if (scripts.length === 0) {
        say(`  no script of this pack is named ${values.script!.join(', ')}; available: ${all.map((s) => s.name).join(', ')}`);
        continue;
      }
      const sb = await startFromConfig(loaded, {
        ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
        logger,
        observerFor: recorder.observerFor,
        onCallEnded: inbox.onCallEnded,
      });
      try {
        for (const script of scripts) {
          ran++;
          say('');
          say(`=== ${script.name}: ${script.description}`);
          try {
            const result = await runScriptedCall(script, {
              sip: { host: '127.0.0.1', port: ports.sipPort },
              recorder,
              summaryFor: inbox.summaryFor,
              voice: (text) => callerVoice.render(text),
              // The micromobility red-zone call waits a real 10 s geofence re-check.
              turnTimeoutMs: 60_000,
              log: values.verbose ? (l) => say(`  . ${l}`) : undefined,
            });
            say(formatTranscript(result));
            const goal = script.goal(result);
            say(`  goal ${goal.ok ? 'REACHED' : 'NOT REACHED'}: ${goal.why}`);
            if (!goal.ok) failures++;
          } catch (err) {
            failures++;
            say(`  the call failed: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        if (values.live && packName === packNames.at(-1)) {
          const phone = c.sip?.accounts.find((a) => a.username === '6001');
          say('');
          say('Switchboard is running. Call it from a softphone on this machine:');
          say(`  SIP server 127.0.0.1:${ports.sipPort} (UDP), dial 100 (the agent), 600 (echo test), 7000 (operator)`);
          if (phone) say(`  account ${phone.username} / password ${phone.password}   (generated; also in ${c.credentialsFile ?? '.switchboard/'})`);
          say('  or without an account from 127.0.0.1 (the sandbox accepts local unauthenticated calls)');
          say('Press Ctrl-C to stop.');
          await new Promise<void>((r) => {
            process.once('SIGINT', r);
            process.once('SIGTERM', r);
          });
        }
      } finally {
        await sb.stop();
      }
    }
    say('');
    say(failures === 0 ? `All ${ran} conversations reached their goal.` : `${failures} of ${ran} conversations did not reach their goal.`);
  } finally {
    await callerVoice.close();
    if (startedPbx) await pbxDown({ instance });
  }
  if (ran === 0) return 2;
  return failures === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runDemo(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(1);
    },
  );
}
