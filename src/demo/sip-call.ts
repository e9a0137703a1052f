/**
 * Command line for the scripted caller: place one call, hold a scripted conversation, report.
 *
 *   npx tsx src/demo/sip-call.ts --port 25160 --extension 100 \
 *       --say "I want to book a service" --say "Tomorrow at ten" [--no-greeting] [--json] [--record call.wav]
 *
 * Waits for the far end's greeting (unless --no-greeting), then for each --say line: says it and
 * waits for the far end's reply. Hangs up at the end unless the far end already did. Prints each
 * turn's wire latency (our last speech packet -> its first) and how the call ended; --json prints
 * one JSON object instead. Exit status 0 when the script ran to its end, 1 otherwise.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CallEndedError, CallerTimeoutError, SipCaller, type AgentTurn, type SipCallerOptions } from './sip-caller.js';

const USAGE = `usage: sip-call --port N --extension EXT [--host IP] [--from USER] [--username U --password P]
                [--say LINE]... [--no-greeting] [--turn-timeout MS] [--end-silence MS]
                [--record FILE.wav] [--json] [--trace]`;

interface TurnReport {
  turn: number;
  after: string | undefined;
  startedAtMs: number;
  speechMs: number;
  latencyMs: number | undefined;
}

function report(t: AgentTurn, t0: number): TurnReport {
  return {
    turn: t.index,
    after: t.callerLine?.text,
    startedAtMs: Math.round(t.startedAt - t0),
    speechMs: Math.round(t.speechMs),
    latencyMs: t.latencyMs === undefined ? undefined : Math.round(t.latencyMs),
  };
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      extension: { type: 'string' },
      from: { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      say: { type: 'string', multiple: true, default: [] },
      'no-greeting': { type: 'boolean', default: false },
      'turn-timeout': { type: 'string', default: '15000' },
      'end-silence': { type: 'string' },
      record: { type: 'string' },
      json: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = Number(values.port);
  const turnTimeoutMs = Number(values['turn-timeout']);
  const endSilence = values['end-silence'] === undefined ? undefined : Number(values['end-silence']);
  if (!values.extension || !Number.isInteger(port) || !(turnTimeoutMs > 0) || (endSilence !== undefined && !(endSilence > 0))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const log = (line: string): void => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };
  const opts: SipCallerOptions = {
    host: values.host,
    port,
    extension: values.extension,
    ...(values.from ? { from: values.from } : {}),
    ...(values.username ? { username: values.username } : {}),
    ...(values.password ? { password: values.password } : {}),
    ...(endSilence ? { turn: { endOfTurnSilenceMs: endSilence } } : {}),
    ...(values.trace ? { trace: (e) => process.stderr.write(`--- ${e.direction === 'in' ? 'from' : 'to'} ${e.remote.address}:${e.remote.port}${e.error ? ` (${e.error})` : ''}\n${e.text}\n`) } : {}),
  };

  const t0 = performance.now();
  const call = await SipCaller.dial(opts);
  log(`answered after ${Math.round((call.answeredAt ?? t0) - t0)} ms`);
  const turns: TurnReport[] = [];
  let failure: string | undefined;
  const waitTurn = async (): Promise<boolean> => {
    try {
      const t = await call.waitForAgentTurn({ timeoutMs: turnTimeoutMs });
      const r = report(t, t0);
      turns.push(r);
      log(`  far end spoke ${r.speechMs} ms${r.latencyMs === undefined ? '' : `, ${r.latencyMs} ms after our last speech packet`}`);
      return true;
    } catch (err) {
      if (err instanceof CallEndedError) return false;
      if (err instanceof CallerTimeoutError) {
        failure = err.message;
        return false;
      }
      throw err;
    }
  };
  let completed = false;
  try {
    let going = values['no-greeting'] || (await waitTurn());
    for (const line of values.say) {
      if (!going) break;
      log(`> ${line}`);
      await call.say(line);
      going = await waitTurn();
    }
    completed = going;
  } catch (err) {
    // A line cut short by the far end's hang-up is the far end's choice, not a failure.
    if (!(err instanceof CallEndedError)) failure = err instanceof Error ? err.message : String(err);
  }
  const end = call.isEnded ? await call.ended : await call.hangup();
  if (values.record) await writeFile(values.record, call.recordingWav());
  if (!completed && failure === undefined && end.reason === 'remote-bye') log('the far end hung up before the script ended');
  log(`ended: ${end.reason}${end.byeStatus === undefined ? '' : ` (BYE ${end.byeStatus})`} after ${Math.round(end.durationMs)} ms`);
  if (failure) log(`failed: ${failure}`);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ turns, ended: { reason: end.reason, byeStatus: end.byeStatus, durationMs: Math.round(end.durationMs), error: end.error?.message }, failure })}\n`,
    );
  }
  return failure === undefined && !end.error ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sip-call: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
