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
 * May"), upper, lower, capitalize.
 */
import { spokenDate } from './dates.js';

export const TEMPLATE_FILTERS = ['digits', 'date', 'upper', 'lower', 'capitalize'] as const;
export type TemplateFilter = (typeof TEMPLATE_FILTERS)[number];

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
  for (const f of filterSrc) {
    if (!(TEMPLATE_FILTERS as readonly string[]).includes(f)) {
      throw new TemplateSyntaxError(`unknown filter "${f}" (filters: ${TEMPLATE_FILTERS.join(', ')})`);
    }
    filters.push(f as TemplateFilter);
  }
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
    const s = scalarText(v);
    switch (f) {
      case 'digits':
        v = s.replace(/\s+/g, '').split('').join(' ');
        break;
      case 'date':
        v = spokenDate(s) ?? s;
        break;
      case 'upper':
        v = s.toUpperCase();
        break;
      case 'lower':
        v = s.toLowerCase();
        break;
      case 'capitalize':
        v = s.replace(/(^|\s)(\p{L})/gu, (_m, sp: string, c: string) => sp + c.toUpperCase());
        break;
    }
  }
  return v;
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
  if (Array.isArray(v)) {
    const items = v.map(speakable).filter(Boolean);
    if (items.length <= 1) return items.join('');
    return `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}`;
  }
  return '';
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
