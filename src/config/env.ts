/**
 * `${ENV_VAR}` references in config strings.
 *
 *   ${NAME}            the variable's value; an error when it is not set
 *   ${NAME:-default}   the value, or `default` when the variable is unset or empty
 *   $${...}            a literal "${...}" (the escape)
 *
 * NAME is letters, digits and "_", not starting with a digit. A default runs to the first
 * "}" and cannot contain another reference. Anything else that starts with "${" is an error,
 * so a typo such as "${ARI PASSWORD}" is never passed on as text.
 *
 * This module only does text. The loader (load.ts) applies it to every string value in the
 * YAML document and types a value that is exactly one reference by what its field needs.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvExpansion {
  value: string;
  /** Variables referenced without a default that are not set (in order, no repeats). */
  missing: string[];
  /** Malformed references: the reference text and what is wrong with it. */
  invalid: { ref: string; reason: string }[];
  /** Number of references expanded (escapes not counted). */
  references: number;
  /** The whole string is exactly one reference (so its value may be typed, e.g. a port). */
  whole: boolean;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BODY = /^([^:]*)(?::-([\s\S]*))?$/;

export function expandEnv(text: string, env: Env): EnvExpansion {
  let value = '';
  const missing: string[] = [];
  const invalid: EnvExpansion['invalid'] = [];
  let references = 0;
  let whole = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      value += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      value += text[i];
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      invalid.push({ ref: text.slice(i), reason: 'has no closing "}"' });
      value += text.slice(i);
      break;
    }
    const ref = text.slice(i, close + 1);
    const body = text.slice(i + 2, close);
    const m = BODY.exec(body);
    const name = m?.[1] ?? '';
    const fallback = m?.[2];
    if (!NAME.test(name)) {
      invalid.push({ ref, reason: name === '' ? 'names no variable' : `"${name}" is not a variable name (letters, digits and "_")` });
    } else if (fallback?.includes('${')) {
      invalid.push({ ref, reason: 'a default cannot contain another reference' });
    } else {
      references += 1;
      const v = env[name];
      if (fallback !== undefined && (v === undefined || v === '')) {
        value += fallback;
      } else if (v === undefined) {
        if (!missing.includes(name)) missing.push(name);
      } else {
        value += v;
      }
      whole = i === 0 && close === text.length - 1;
    }
    i = close + 1;
  }
  return { value, missing, invalid, references, whole };
}

/** True when `text` is exactly one `${NAME}` reference with no default (how secrets are written). */
export function isBareEnvReference(text: string): boolean {
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(text);
}

/** A variable name for a config path: ["ari", "password"] -> "ARI_PASSWORD". */
export function suggestEnvName(path: readonly (string | number)[]): string {
  return path
    .filter((p): p is string => typeof p === 'string' && p !== 'config' && p !== 'plugins')
    .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]+/g, '_'))
    .join('_')
    .toUpperCase();
}
