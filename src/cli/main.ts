/**
 * `switchboard` command line. Each subcommand lives in its own module and is loaded lazily,
 * so `switchboard --help` costs nothing and a broken subcommand cannot break the others.
 */
export interface CliCommand {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

type Loader = () => Promise<CliCommand>;

const COMMANDS: Record<string, Loader> = {
  calls: async () => (await import('./calls.js')).callsCommand,
  config: async () => (await import('./config.js')).configCommand,
  pbx: async () => (await import('../pbx/cli.js')).pbxCommand,
  start: async () => (await import('./start.js')).startCommand,
};

const SUMMARIES: Record<string, string> = {
  calls: 'recorded calls: list | show ID | stats (from the running Switchboard, or --database)',
  config: 'check a config file and report every problem in it (check [FILE])',
  pbx: 'sandboxed Asterisk 22 for development and tests (up | down | status [--json] | logs)',
  start: 'run Switchboard: connect to ARI and answer calls (--agent echo)',
};

export function helpText(): string {
  const lines = [
    'Usage: switchboard <command> [options]',
    '',
    'Commands:',
    ...Object.keys(COMMANDS).map((name) => `  ${name.padEnd(10)} ${SUMMARIES[name] ?? ''}`),
    '',
    'Run `switchboard <command> --help` for a command\'s options.',
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(helpText());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`switchboard: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${cmd.usage}\n\n${cmd.summary}`);
    return 0;
  }
  return cmd.run(rest);
}
