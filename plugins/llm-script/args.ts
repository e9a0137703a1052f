/**
 * Fit rendered tool arguments to the tool's JSON Schema (from `LlmRequest.tools`): the loop
 * validates what a model sends, and a script must not send what a model would be refused for.
 * Types are coerced where the meaning is unambiguous ("427" for an integer property -> 427,
 * 427 for a string property -> "427"); empty optional values are left out; a missing required
 * value, a value outside an enum, or a string that fails its pattern is an error.
 */

type JsonSchema = Record<string, unknown>;

export type CoerceResult = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

function typesOf(schema: JsonSchema): string[] {
  const t = schema.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  return [];
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

function coerceValue(value: unknown, schema: JsonSchema, name: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const types = typesOf(schema);
  let v = value;
  const want = types.filter((t) => t !== 'null');
  if (want.length > 0 && !want.some((t) => matchesType(v, t))) {
    let converted = false;
    for (const t of want) {
      const c = convert(v, t);
      if (c !== undefined) {
        v = c;
        converted = true;
        break;
      }
    }
    if (!converted) return { ok: false, error: `argument "${name}" should be ${want.join(' or ')}` };
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === v)) {
    return { ok: false, error: `argument "${name}" must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}` };
  }
  if (schema.const !== undefined && schema.const !== v) return { ok: false, error: `argument "${name}" must be ${JSON.stringify(schema.const)}` };
  if (typeof v === 'string') {
    if (typeof schema.minLength === 'number' && v.length < schema.minLength) return { ok: false, error: `argument "${name}" is too short` };
    if (typeof schema.maxLength === 'number' && v.length > schema.maxLength) return { ok: false, error: `argument "${name}" is too long` };
    if (typeof schema.pattern === 'string') {
      let re: RegExp | undefined;
      try {
        re = new RegExp(schema.pattern, 'u');
      } catch {
        re = undefined; // a pattern JavaScript cannot compile is the tool's problem, not a reason to refuse
      }
      if (re && !re.test(v)) return { ok: false, error: `argument "${name}" has the wrong format` };
    }
  }
  if (typeof v === 'number') {
    if (typeof schema.minimum === 'number' && v < schema.minimum) return { ok: false, error: `argument "${name}" is too small` };
    if (typeof schema.maximum === 'number' && v > schema.maximum) return { ok: false, error: `argument "${name}" is too large` };
  }
  return { ok: true, value: v };
}

function matchesType(v: unknown, t: string): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'null':
      return v === null;
    default:
      return true;
  }
}

function convert(v: unknown, t: string): unknown {
  switch (t) {
    case 'string':
      return typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
    case 'integer':
      return typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : undefined;
    case 'number':
      return typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
    case 'boolean':
      if (typeof v === 'string') {
        const s = v.trim().toLowerCase();
        if (s === 'true' || s === 'yes') return true;
        if (s === 'false' || s === 'no') return false;
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Coerce `args` to `schema`. With `dropUnknown` (built-in calls the script composes itself),
 * properties the schema does not declare are left out; without it they are an error, since a
 * scenario argument the tool does not take is a scenario mistake.
 */
export function coerceArgs(args: Readonly<Record<string, unknown>>, schema: JsonSchema | undefined, opts: { dropUnknown?: boolean } = {}): CoerceResult {
  const props = (schema?.properties ?? undefined) as Record<string, JsonSchema> | undefined;
  const required = Array.isArray(schema?.required) ? (schema.required as unknown[]).filter((r): r is string => typeof r === 'string') : [];
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    const prop = props?.[name];
    if (props && !prop) {
      if (opts.dropUnknown) continue;
      if (schema?.additionalProperties !== true) return { ok: false, error: `the tool takes no argument "${name}"` };
    }
    if (isEmpty(value)) continue;
    if (!prop) {
      out[name] = value;
      continue;
    }
    const c = coerceValue(value, prop, name);
    if (!c.ok) return c;
    out[name] = c.value;
  }
  for (const r of required) {
    if (!(r in out)) return { ok: false, error: `missing the required argument "${r}"` };
  }
  return { ok: true, value: out };
}

/** Whether `value` is allowed for property `prop` of `schema` (enum / const), for a pre-check. */
export function allowedValue(schema: JsonSchema | undefined, prop: string, value: string): boolean {
  const p = (schema?.properties as Record<string, JsonSchema> | undefined)?.[prop];
  if (!p) return true;
  if (Array.isArray(p.enum)) return p.enum.includes(value);
  if (p.const !== undefined) return p.const === value;
  return true;
}
