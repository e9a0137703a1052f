/**
 * Turn zod issues into config errors a person can act on: the dotted path into the YAML
 * file, what is wrong, and a hint (the keys that are allowed, the values that are).
 */
import type { z } from 'zod';

export interface ConfigIssue {
  /** Dotted path, e.g. "agents.support.vad.threshold". */
  path: string;
  message: string;
  hint?: string;
}

export function issuePath(prefix: string, path: readonly PropertyKey[]): string {
  const parts = [prefix, ...path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))].filter((p) => p !== '');
  return parts.join('.').replace(/\.\[/g, '[');
}

export function formatZodIssues(error: z.ZodError, prefix = ''): (ConfigIssue & { message: string })[] {
  return error.issues.map((issue) => {
    const path = issuePath(prefix, issue.path);
    const where = path || '(top level)';
    switch (issue.code) {
      case 'unrecognized_keys':
        return {
          path,
          message: `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`,
          hint: 'check the spelling; unknown keys are refused so a typo never goes unnoticed',
        };
      case 'invalid_value':
        return { path, message: `${where}: ${issue.message}`, hint: `allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` };
      case 'invalid_type':
        return { path, message: `${where}: expected ${issue.expected}${issue.input === undefined ? ', but it is missing' : `, got ${describe(issue.input)}`}` };
      default:
        return { path, message: `${where}: ${issue.message}` };
    }
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the text ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
