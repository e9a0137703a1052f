/**
 * `switchboard config check [FILE]`: validate a config file without starting anything (no
 * ARI connection, no plugin factory: plugins are imported and their config validated).
 * Exit 0 when valid, 1 with every problem listed when not, 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import type { LoadedConfig } from '../config/load.js';
import type { CliCommand } from './main.js';

const USAGE = [
  'Usage: switchboard config check [FILE] [--config FILE] [--plugins-dir DIR]',
  '',
  '  FILE, --config FILE  the config to check (default: $SWITCHBOARD_CONFIG, else ./switchboard.yaml)',
  '  --plugins-dir DIR    where plugin folders are (default: the plugins/ folder of this install)',
  '',
  'Checks the YAML, ${ENV_VAR} references (against this environment), the schema, the names',
  'agents refer to, and every enabled plugin (imported, config validated by its own schema).',
  'Tool allowlists are checked against tools plugins when Switchboard starts.',
].join('\n');

function usageError(message: string): number {
  console.error(`switchboard config: ${message}\n\n${USAGE}`);
  return 2;
}

export const configCommand: CliCommand = {
  summary: 'Check a config file and report every problem in it (check [FILE]).',
  usage: USAGE,
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        options: { config: { type: 'string' }, 'plugins-dir': { type: 'string' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (err) {
      return usageError((err as Error).message);
    }
    const [sub, ...files] = parsed.positionals;
    if (sub === undefined) return usageError('missing subcommand (check)');
    if (sub !== 'check') return usageError(`unknown subcommand "${sub}"`);
    if (files.length > 1) return usageError(`one file at a time (got ${files.length})`);
    if (files.length === 1 && parsed.values.config !== undefined) return usageError('give the file either as an argument or with --config, not both');

    const { loadConfig, resolveConfigPath } = await import('../config/load.js');
    const { ConfigError } = await import('../config/errors.js');
    const file = resolveConfigPath(files[0] ?? parsed.values.config);
    try {
      const pluginsDir = parsed.values['plugins-dir'];
      const loaded = await loadConfig(file, { env: process.env, ...(pluginsDir !== undefined ? { pluginsDir } : {}) });
      console.log(summarise(file, loaded));
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(err.message);
      return 1;
    }
  },
};

function summarise(file: string, loaded: LoadedConfig): string {
  const agents = Object.keys(loaded.config.agents);
  const plugins = loaded.inspectedPlugins.map((p) => `${p.name} (${p.kind} ${p.version})`);
  const disabled = Object.entries(loaded.config.plugins)
    .filter(([, e]) => !e.enabled)
    .map(([n]) => n);
  return (
    `OK: ${file}: ${agents.length} agent${agents.length === 1 ? '' : 's'} (${agents.join(', ')}; default ${loaded.config.defaultAgent}), ` +
    `plugins: ${plugins.length ? plugins.join(', ') : 'none'}${disabled.length ? `; disabled: ${disabled.join(', ')}` : ''}`
  );
}
