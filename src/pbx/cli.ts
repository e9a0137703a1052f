/**
 * `switchboard pbx up | down | status [--json] | logs [-f]` — the sandboxed Asterisk 22.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliCommand } from '../cli/main.js';
import { pbxDown, pbxLogPath, pbxStatus, pbxUp, tailFile, type PbxStatus } from './instance.js';
import { PORT_ENV, INSTANCE_ENV, type PbxPortOptions } from './options.js';

const USAGE = `Usage: switchboard pbx <up|down|status|logs> [options]

  up        build the Asterisk rootfs once (cached), start the instance, wait for ARI
  down      stop the instance; nothing of it is left running
  status    show the instance (exit 0 running, 3 stopped); --json for machine-readable
  logs      print the instance's Asterisk messages log; -f to follow, -n LINES (default 200)

Options:
  --instance NAME     instance name (default: $${INSTANCE_ENV} or "default")
  --sip-port N        SIP/UDP port            ($${PORT_ENV.sip}, default 5060)
  --http-port N       HTTP/ARI port           ($${PORT_ENV.http}, default 8088)
  --ami-port N        AMI port                ($${PORT_ENV.ami}, default 5038)
  --rtp-start N       first RTP port          ($${PORT_ENV.rtpStart}, default 10000)
  --rtp-end N         last RTP port           ($${PORT_ENV.rtpEnd}, default 14999)
  --timeout SECONDS   up: how long to wait for ARI (default 90)
  --config-dir DIR    up: load this Asterisk configuration instead of asterisk-config/
  --json              up/down/status: print JSON on stdout
  -q, --quiet         no progress messages

Everything listens on 127.0.0.1. Credentials: .switchboard/pbx-<instance>.json (mode 0600).
The rootfs cache: $SWITCHBOARD_CACHE_DIR or $XDG_CACHE_HOME/switchboard or ~/.cache/switchboard.`;

function intFlag(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} needs an integer, got "${raw}"`);
  return n;
}

class UsageError extends Error {}

function printStatus(s: PbxStatus): void {
  const lines = [
    `instance:     ${s.instance}`,
    `running:      ${s.running ? `yes (pid ${s.pid}${s.started_at ? `, since ${s.started_at}` : ''})` : 'no'}`,
    `ARI:          ${s.ari_url}  (events ${s.ari_ws_url})`,
    `SIP (udp):    ${s.sip}`,
    `AMI:          ${s.ami}`,
    `RTP:          ${s.rtp.start}-${s.rtp.end}`,
    `credentials:  ${s.credentials_file}`,
    `config:       ${s.config_dir}`,
    `log:          ${s.log_file}`,
    `asterisk:     ${s.asterisk_version ?? '(rootfs not built yet)'}`,
  ];
  console.log(lines.join('\n'));
}

export const pbxCommand: CliCommand = {
  summary: 'sandboxed Asterisk 22 for development and tests (up | down | status [--json] | logs)',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        strict: true,
        options: {
          instance: { type: 'string' },
          'sip-port': { type: 'string' },
          'http-port': { type: 'string' },
          'ami-port': { type: 'string' },
          'rtp-start': { type: 'string' },
          'rtp-end': { type: 'string' },
          timeout: { type: 'string' },
          'config-dir': { type: 'string' },
          json: { type: 'boolean', default: false },
          quiet: { type: 'boolean', short: 'q', default: false },
          follow: { type: 'boolean', short: 'f', default: false },
          lines: { type: 'string', short: 'n' },
        },
      });
    } catch (err) {
      console.error(`switchboard pbx: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    const { values: v, positionals } = parsed;
    const sub = positionals[0];
    if (!sub || positionals.length > 1) {
      console.error(`switchboard pbx: ${sub ? `unexpected argument "${positionals[1]}"` : 'missing subcommand'}\n\n${USAGE}`);
      return 2;
    }
    const log = v.quiet ? undefined : (m: string): void => void process.stderr.write(`pbx: ${m}\n`);
    try {
      const ports: PbxPortOptions = {
        sipPort: intFlag('sip-port', v['sip-port']),
        httpPort: intFlag('http-port', v['http-port']),
        amiPort: intFlag('ami-port', v['ami-port']),
        rtpStart: intFlag('rtp-start', v['rtp-start']),
        rtpEnd: intFlag('rtp-end', v['rtp-end']),
      };
      const common = { ...(v.instance !== undefined ? { instance: v.instance } : {}), ...(log ? { log } : {}) };
      switch (sub) {
        case 'up': {
          const timeout = intFlag('timeout', v.timeout);
          const r = await pbxUp({
            ...common,
            ...ports,
            ...(timeout !== undefined ? { startTimeoutMs: timeout * 1000 } : {}),
            ...(v['config-dir'] !== undefined ? { configSource: resolve(v['config-dir']) } : {}),
          });
          for (const m of r.startupMessages) process.stderr.write(`pbx: asterisk: ${m}\n`);
          if (v.json) {
            console.log(JSON.stringify({ ...r.status, already_running: r.alreadyRunning, rootfs_built: r.rootfsBuilt, timings_ms: r.timings }, null, 2));
          } else {
            printStatus(r.status);
            console.log(`up in ${(r.timings.totalMs / 1000).toFixed(1)} s${r.rootfsBuilt ? ' (rootfs built)' : ''}${r.alreadyRunning ? ' (already running)' : ''}`);
          }
          return 0;
        }
        case 'down': {
          const r = await pbxDown(common);
          if (v.json) console.log(JSON.stringify({ instance: r.instance, was_running: r.wasRunning, killed: r.killed }));
          else console.log(r.wasRunning ? `instance "${r.instance}" stopped` : `instance "${r.instance}" was not running`);
          return 0;
        }
        case 'status': {
          const s = await pbxStatus({ ...common, ...ports });
          if (v.json) console.log(JSON.stringify(s, null, 2));
          else printStatus(s);
          return s.running ? 0 : 3;
        }
        case 'logs': {
          const path = pbxLogPath(common);
          const n = intFlag('lines', v.lines) ?? 200;
          const exists = await stat(path).then(
            () => true,
            () => false,
          );
          if (!exists && !v.follow) {
            console.error(`switchboard pbx: no log yet at ${path} (has the instance been started?)`);
            return 1;
          }
          if (v.follow) {
            // tail -F follows across truncation/recreation (every `up` may rotate nothing, but a
            // rebuilt rootfs recreates the file).
            return await new Promise<number>((resolve) => {
              const child = spawn('tail', ['-n', String(n), '-F', path], { stdio: 'inherit' });
              child.on('exit', (code) => resolve(code ?? 0));
              child.on('error', (err) => {
                console.error(`switchboard pbx: cannot run tail: ${err.message}`);
                resolve(1);
              });
            });
          }
          const text = await tailFile(path, n);
          if (text) console.log(text);
          return 0;
        }
        default:
          console.error(`switchboard pbx: unknown subcommand "${sub}"\n\n${USAGE}`);
          return 2;
      }
    } catch (err) {
      if (err instanceof UsageError) {
        console.error(`switchboard pbx: ${err.message}\n\n${USAGE}`);
        return 2;
      }
      console.error(`switchboard pbx ${sub}: ${(err as Error).message}`);
      return 1;
    }
  },
};
