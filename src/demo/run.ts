/**
 * `npm run demo`: one command that starts the sandbox PBX if needed, starts Switchboard with
 * the offline plugins and the call-centre scenario, places scripted calls through the PBX and
 * prints each conversation as a two-sided transcript with per-turn latency. Exit code 0 only
 * if every conversation reached its goal. `--live` keeps everything running afterwards and
 * prints how to call in from a softphone.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CallSummary } from '../call/call-session.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { pbxDown, pbxUp } from '../pbx/instance.js';
import { startFromConfig } from '../runtime.js';
import { createCallerVoice } from './caller-voice.js';
import { ConversationRecorder, formatTranscript, runScriptedCall } from './scripted-call.js';
import { DEMO_SCRIPTS } from './scripts.js';

const REPO = resolve(import.meta.dirname, '../..');

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      live: { type: 'boolean', default: false },
      script: { type: 'string', multiple: true },
      verbose: { type: 'boolean', default: false },
      instance: { type: 'string', default: process.env.SWITCHBOARD_DEMO_INSTANCE ?? 'demo' },
      config: { type: 'string', default: join(REPO, 'demo/switchboard.demo.yaml') },
    },
  });
  const scripts = values.script?.length ? DEMO_SCRIPTS.filter((s) => values.script!.includes(s.name)) : DEMO_SCRIPTS;
  if (scripts.length === 0) {
    console.error(`unknown script; available: ${DEMO_SCRIPTS.map((s) => s.name).join(', ')}`);
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
  const summaries: CallSummary[] = [];
  const waiters: { pred: (s: CallSummary) => boolean; resolve: (s: CallSummary) => void }[] = [];
  const recorder = new ConversationRecorder();
  const logger = createLogger({ level: values.verbose ? 'info' : 'warn', destination: process.stderr });

  say('Starting Switchboard: stt-pocketsphinx, llm-script (scenarios/call-centre.yaml), tts-flite, tools-crm (embedded PostgreSQL)...');
  const loaded = await loadConfig(values.config);
  const sb = await startFromConfig(loaded, {
    ari: { url: c.ariUrl, username: c.ariUsername, password: c.ariPassword, app: c.ariApp },
    logger,
    observerFor: recorder.observerFor,
    onCallEnded: (s) => {
      summaries.push(s);
      for (const w of waiters.splice(0)) if (w.pred(s)) w.resolve(s);
      else waiters.push(w);
    },
  });
  const summaryFor = (pred: (s: CallSummary) => boolean, timeoutMs: number): Promise<CallSummary | undefined> => {
    const found = summaries.find(pred);
    if (found) {
      summaries.splice(summaries.indexOf(found), 1);
      return Promise.resolve(found);
    }
    return new Promise((resolveSummary) => {
      const t = setTimeout(() => resolveSummary(undefined), timeoutMs);
      waiters.push({
        pred,
        resolve: (s) => {
          clearTimeout(t);
          summaries.splice(summaries.indexOf(s), 1);
          resolveSummary(s);
        },
      });
    });
  };

  const callerVoice = await createCallerVoice(logger, REPO);

  let failures = 0;
  try {
    for (const script of scripts) {
      say('');
      say(`=== ${script.name}: ${script.description}`);
      try {
        const result = await runScriptedCall(script, {
          sip: { host: '127.0.0.1', port: ports.sipPort },
          recorder,
          summaryFor,
          voice: (text) => callerVoice.render(text),
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
    say('');
    say(failures === 0 ? `All ${scripts.length} conversations reached their goal.` : `${failures} of ${scripts.length} conversations did not reach their goal.`);

    if (values.live) {
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
    await callerVoice.close();
    if (startedPbx) await pbxDown({ instance });
  }
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
