/** ${ENV_VAR} references: values, defaults, the $${ escape, and every malformed form. */
import { describe, expect, test } from 'vitest';
import { expandEnv, isBareEnvReference, suggestEnvName } from '../../src/config/env.js';

describe('expandEnv', () => {
  const env = { HOST: 'pbx.local', PORT: '8088', EMPTY: '' };

  test('replaces references anywhere in the text', () => {
    const r = expandEnv('http://${HOST}:${PORT}/ari', env);
    expect(r).toEqual({ value: 'http://pbx.local:8088/ari', missing: [], invalid: [], references: 2, whole: false });
  });

  test('a string that is exactly one reference is marked whole', () => {
    expect(expandEnv('${PORT}', env)).toMatchObject({ value: '8088', whole: true });
    expect(expandEnv(' ${PORT}', env).whole).toBe(false);
    expect(expandEnv('${PORT}${PORT}', env).whole).toBe(false);
    expect(expandEnv('${NOPE:-7}', env)).toMatchObject({ value: '7', whole: true });
  });

  test('defaults apply when the variable is unset or empty, like the shell', () => {
    expect(expandEnv('${NOPE:-fallback}', env).value).toBe('fallback');
    expect(expandEnv('${EMPTY:-fallback}', env).value).toBe('fallback');
    expect(expandEnv('${HOST:-fallback}', env).value).toBe('pbx.local');
    expect(expandEnv('${NOPE:-}', env)).toMatchObject({ value: '', missing: [] });
    expect(expandEnv('${NOPE:-a b: c-d}', env).value).toBe('a b: c-d');
  });

  test('an empty variable without default is empty, an unset one is missing (each named once)', () => {
    expect(expandEnv('[${EMPTY}]', env)).toMatchObject({ value: '[]', missing: [] });
    const r = expandEnv('${A} ${B} ${A}', env);
    expect(r.missing).toEqual(['A', 'B']);
  });

  test('$${ is a literal ${ and is not expanded', () => {
    expect(expandEnv('$${HOST}', env)).toMatchObject({ value: '${HOST}', references: 0, missing: [] });
    expect(expandEnv('a $${HOST} b ${HOST}', env).value).toBe('a ${HOST} b pbx.local');
    // Scanned left to right: "$" then the escape "$${".
    expect(expandEnv('$$${NOPE}', env)).toMatchObject({ value: '$${NOPE}', missing: [] });
    expect(expandEnv('price $5, $HOST', env).value).toBe('price $5, $HOST');
  });

  test('malformed references are reported, never passed on', () => {
    expect(expandEnv('${ARI PASSWORD}', env).invalid).toEqual([{ ref: '${ARI PASSWORD}', reason: '"ARI PASSWORD" is not a variable name (letters, digits and "_")' }]);
    expect(expandEnv('${}', env).invalid[0]?.reason).toBe('names no variable');
    expect(expandEnv('${1ABC}', env).invalid).toHaveLength(1);
    expect(expandEnv('${HOST', env).invalid).toEqual([{ ref: '${HOST', reason: 'has no closing "}"' }]);
    expect(expandEnv('${A:-${B}}', env).invalid[0]?.reason).toBe('a default cannot contain another reference');
    expect(expandEnv('${HOST-x}', env).invalid).toHaveLength(1);
  });
});

test('isBareEnvReference accepts only ${NAME}', () => {
  expect(isBareEnvReference('${ARI_PASSWORD}')).toBe(true);
  expect(isBareEnvReference('${ARI_PASSWORD:-x}')).toBe(false);
  expect(isBareEnvReference('pre${ARI_PASSWORD}')).toBe(false);
  expect(isBareEnvReference('$${ARI_PASSWORD}')).toBe(false);
  expect(isBareEnvReference('hunter2')).toBe(false);
});

test('suggestEnvName turns a config path into a variable name', () => {
  expect(suggestEnvName(['ari', 'password'])).toBe('ARI_PASSWORD');
  expect(suggestEnvName(['plugins', 'llm-openai', 'config', 'apiKey'])).toBe('LLM_OPENAI_API_KEY');
});
