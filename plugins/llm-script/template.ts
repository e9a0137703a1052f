/**
 * Templates in scenario lines and tool arguments: `{{order_id}}`, `{{var.caller}}`,
 * `{{result.status}}`, `{{error}}`, `{{input}}`, with filters: `{{order_id | digits}}`.
 *
 * Roots:
 *  - a bare name is a slot (`{{order_id}}`);
 *  - `var.NAME` a call variable (the session's variables, plus those the scenario `set`);
 *  - `result.PATH` the data of the most recent tool result (`result.items.0.name`);
 *  - `error` the error text of the most recent failed tool result;
 *  - `input` the caller's most recent utterance as heard.
 * Filters: digits ("427" -> "4 2 7", so TTS reads digits), date (ISO -> "Tuesday the 5th of
 * May"), time ("14:30" -> "2:30 PM"), upper, lower, capitalize; on a list these apply to
 * every item. List filters: `take:N` (the first N items), `pluck:FIELD` (that field of every
 * item), `first` / `last` (an item; of a text, its first / last word), `or` (join the items
 * with "or" instead of "and").
 */
import { spokenDate, spokenTime } from './dates.js';

export const TEMPLATE_FILTERS = ['digits', 'date', 'time', 'upper', 'lower', 'capitalize', 'take', 'pluck', 'first', 'last', 'or'] as const;
export type TemplateFilterName = (typeof TEMPLATE_FILTERS)[number];
/** Filters that take an argument (`take:3`, `pluck:service`); the others take none. */
const FILTERS_WITH_ARG: ReadonlySet<TemplateFilterName> = new Set(['take', 'pluck']);

export interface TemplateFilter {
  name: TemplateFilterName;
  arg?: string;
}

export type TemplateRoot = 'slot' | 'var' | 'result' | 'error' | 'input';

export interface TemplateExpr {
  root: TemplateRoot;
  /** Slot name, variable name, or the path inside the result. */
  path: string[];
  filters: TemplateFilter[];
}

export type TemplatePart = { literal: string } | { expr: TemplateExpr };

export class TemplateSyntaxError extends Error {
  override readonly name = 'TemplateSyntaxError';
}

const EXPR_RE = /\{\{([^{}]*)\}\}/g;
const PATH_PART = /^[A-Za-z0-9_-]+$/;

export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of template.matchAll(EXPR_RE)) {
    if (m.index > last) parts.push({ literal: template.slice(last, m.index) });
    parts.push({ expr: parseExpr(m[1]!) });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  for (const p of parts) {
    if ('literal' in p && (p.literal.includes('{{') || p.literal.includes('}}'))) {
      throw new TemplateSyntaxError(`unbalanced "{{" or "}}" in ${JSON.stringify(template)}`);
    }
  }
  return parts;
}

function parseExpr(src: string): TemplateExpr {
  const [head, ...filterSrc] = src.split('|').map((s) => s.trim());
  if (!head) throw new TemplateSyntaxError(`empty expression "{{${src}}}"`);
  const filters: TemplateFilter[] = [];
  for (const f of filterSrc) filters.push(parseFilter(f, src));
  const segments = head.split('.');
  if (segments.some((s) => !PATH_PART.test(s))) throw new TemplateSyntaxError(`bad expression "{{${src}}}"`);
  const [first, ...rest] = segments as [string, ...string[]];
  if (first === 'var') {
    if (rest.length !== 1) throw new TemplateSyntaxError(`"{{${head}}}": write var.NAME`);
    return { root: 'var', path: rest, filters };
  }
  if (first === 'result') return { root: 'result', path: rest, filters };
  if (first === 'error' || first === 'input') {
    if (rest.length) throw new TemplateSyntaxError(`"{{${head}}}": ${first} has no fields`);
    return { root: first, path: [], filters };
  }
  if (rest.length) throw new TemplateSyntaxError(`"{{${head}}}": a slot has no fields (roots: slot names, var., result., error, input)`);
  return { root: 'slot', path: [first], filters };
}

function parseFilter(f: string, src: string): TemplateFilter {
  const colon = f.indexOf(':');
  const name = (colon < 0 ? f : f.slice(0, colon)).trim();
  const arg = colon < 0 ? undefined : f.slice(colon + 1).trim();
  if (!(TEMPLATE_FILTERS as readonly string[]).includes(name)) {
    throw new TemplateSyntaxError(`unknown filter "${name}" (filters: ${TEMPLATE_FILTERS.join(', ')})`);
  }
  const n = name as TemplateFilterName;
  if (!FILTERS_WITH_ARG.has(n)) {
    if (arg !== undefined) throw new TemplateSyntaxError(`filter "${n}" takes no argument in "{{${src}}}"`);
    return { name: n };
  }
  if (!arg) throw new TemplateSyntaxError(`filter "${n}" needs an argument ("${n}:${n === 'take' ? '3' : 'field'}") in "{{${src}}}"`);
  if (n === 'take' && !/^[1-9]\d{0,2}$/.test(arg)) throw new TemplateSyntaxError(`"take" needs a count from 1, e.g. "take:3", in "{{${src}}}"`);
  if (n === 'pluck' && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(arg)) throw new TemplateSyntaxError(`"pluck" needs a field name, e.g. "pluck:service", in "{{${src}}}"`);
  return { name: n, arg };
}

export interface TemplateContext {
  slots: Readonly<Record<string, string | number>>;
  vars: Readonly<Record<string, string>>;
  result: unknown;
  error: string | undefined;
  input: string;
}

function lookup(expr: TemplateExpr, ctx: TemplateContext): unknown {
  switch (expr.root) {
    case 'slot':
      return ctx.slots[expr.path[0]!];
    case 'var':
      return ctx.vars[expr.path[0]!];
    case 'error':
      return ctx.error;
    case 'input':
      return ctx.input;
    case 'result': {
      let v: unknown = ctx.result;
      for (const p of expr.path) {
        if (v === null || typeof v !== 'object') return undefined;
        v = (v as Record<string, unknown>)[p];
      }
      return v;
    }
  }
}

/** Value at a dotted path inside a tool result ("status", "items.0.name"). */
export function resultField(data: unknown, path: string): unknown {
  return lookup({ root: 'result', path: path.split('.'), filters: [] }, { slots: {}, vars: {}, result: data, error: undefined, input: '' });
}

function applyFilters(value: unknown, filters: readonly TemplateFilter[]): unknown {
  let v = value;
  for (const f of filters) {
    if (v === undefined || v === null) return v;
    v = applyFilter(v, f);
  }
  return v;
}

/** A filter that works on one value; on a list it applies to every item. */
function scalarFilter(v: unknown, name: TemplateFilterName): unknown {
  if (Array.isArray(v)) return (v as unknown[]).map((x): unknown => (x === undefined || x === null ? x : scalarFilter(x, name)));
  const s = scalarText(v);
  switch (name) {
    case 'digits':
      return s.replace(/\s+/g, '').split('').join(' ');
    case 'date':
      return spokenDate(s) ?? s;
    case 'time':
      return spokenTime(s) ?? s;
    case 'upper':
      return s.toUpperCase();
    case 'lower':
      return s.toLowerCase();
    case 'capitalize':
      return s.replace(/(^|\s)(\p{L})/gu, (_m, sp: string, c: string) => sp + c.toUpperCase());
    default:
      return v;
  }
}

function applyFilter(v: unknown, f: TemplateFilter): unknown {
  switch (f.name) {
    case 'take':
      return Array.isArray(v) ? v.slice(0, Number(f.arg)) : v;
    case 'pluck':
      return Array.isArray(v) ? v.map((x) => resultField(x, f.arg!)) : resultField(v, f.arg!);
    case 'first':
    case 'last': {
      if (Array.isArray(v)) return f.name === 'first' ? v[0] : v.at(-1);
      if (typeof v !== 'string') return v;
      const words = v.trim().split(/\s+/).filter(Boolean);
      return f.name === 'first' ? words[0] : words.at(-1);
    }
    case 'or':
      return Array.isArray(v) ? joinList(v.map(speakable).filter(Boolean), 'or') : v;
    default:
      return scalarFilter(v, f.name);
  }
}

/** A value as text: scalars as they are, anything else as JSON. */
function scalarText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? '';
}

/** How a value reads in a spoken line: "out_for_delivery" -> "out for delivery", lists joined. */
function speakable(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v.replace(/_/g, ' ');
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return joinList(v.map(speakable).filter(Boolean), 'and');
  return '';
}

/** "a", "a and b", "a, b and c" (or "or"). */
function joinList(items: readonly string[], conjunction: 'and' | 'or'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conjunction} ${items.at(-1)!}`;
}

/** Render for speech: missing values are empty, whitespace is tidied. */
export function renderSpeech(parts: readonly TemplatePart[], ctx: TemplateContext): string {
  let out = '';
  for (const p of parts) out += 'literal' in p ? p.literal : speakable(applyFilters(lookup(p.expr, ctx), p.expr.filters));
  return out
    .replace(/\s+/g, ' ')
    .replace(/\s+([,.?!;:])/g, '$1')
    .trim();
}

/**
 * Render a tool argument: a template that is exactly one expression keeps the value's type
 * (a number stays a number); anything else is a string. Missing values are `undefined`.
 */
export function renderValue(parts: readonly TemplatePart[], ctx: TemplateContext): unknown {
  if (parts.length === 1 && 'expr' in parts[0]!) {
    const v = applyFilters(lookup(parts[0].expr, ctx), parts[0].expr.filters);
    return v === null ? undefined : v;
  }
  let out = '';
  for (const p of parts) {
    if ('literal' in p) {
      out += p.literal;
      continue;
    }
    const v = applyFilters(lookup(p.expr, ctx), p.expr.filters);
    if (v !== undefined && v !== null) out += scalarText(v);
  }
  return out.trim();
}
