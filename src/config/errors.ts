/**
 * ConfigError: everything wrong with a config file, reported at once. Each problem names the
 * dotted path into the YAML ("agents.support.vad.threshold"), the line and column in the file
 * when the path can be found there, what is wrong and, when there is one, what to do about it.
 * Messages never contain secret values.
 */

export type ConfigProblemKind =
  /** The file cannot be read. */
  | 'file'
  /** YAML syntax. */
  | 'yaml'
  /** `${ENV_VAR}` expansion. */
  | 'env'
  /** A secret written literally in the file. */
  | 'secret'
  /** The schema of switchboard.yaml. */
  | 'schema'
  /** A name that refers to nothing (agent, plugin, transfer destination, tool). */
  | 'reference'
  /** A plugin that cannot be loaded or whose config its own schema refuses. */
  | 'plugin';

export interface ConfigProblem {
  kind: ConfigProblemKind;
  /** Dotted path into the config, e.g. "agents.support.tools[2]"; "" for the whole file. */
  path: string;
  /** What is wrong (without the path, which the report prints in front of it). */
  message: string;
  hint?: string;
  /** 1-based position in the file, when the path (or its nearest parent) was found there. */
  line?: number;
  column?: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];

  /**
   * @param file the config file as the user named it (printed in front of every problem)
   * @param problems at least one; sorted by position in the file, unplaced ones last
   */
  constructor(
    readonly file: string,
    problems: readonly ConfigProblem[],
  ) {
    const sorted = sortProblems(problems);
    super(formatReport(file, sorted));
    this.problems = sorted;
  }
}

export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/** "file:12:5: agents.support.greetting: unknown key ..." with the hint on the next line. */
export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
  const head = `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
  return p.hint ? `${head}\n      hint: ${p.hint}` : head;
}

export function formatReport(file: string, problems: readonly ConfigProblem[]): string {
  const n = problems.length;
  return [`${file}: ${n} configuration error${n === 1 ? '' : 's'}:`, ...problems.map((p) => `  - ${formatProblem(file, p)}`)].join('\n');
}
