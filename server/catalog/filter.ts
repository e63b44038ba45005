import { AppError } from '../errors.js';

/**
 * The catalog filter: which published slides a search, a download or a
 * dataset means. It comes either as query parameters (`GET /api/slides`,
 * parsed by the route's schema, http/schemas/catalog.ts) or as one string,
 * the filter expression, for the places that take a filter as a single value
 * (`dataset create NAME --filter EXPR`, saved searches):
 *
 *     expression := '' | clause (';' clause)*
 *     clause     := facet '=' value (',' value)* | 'q=' text
 *     facet      := organ | histology | stain | marker | differentiation
 *                 | annotationMethod | dataset
 *
 * e.g. `organ=CO,LV;stain=IHC;q=adeno`. Values are OR-ed within a facet and
 * facets AND-ed with each other and with `q`. A value containing `%`, `;` or
 * `,` (and a `q` containing `%` or `;`) writes it percent-encoded, as
 * `formatFilter` does; spaces around clauses, keys and values are ignored.
 * Each key may appear once. Both forms produce the same `CatalogFilter`,
 * held to the same limits (`facetValuesProblem`, `textProblem`).
 *
 * This module checks the shape only; the catalog service maps codes onto the
 * vocabulary (`lv` is `LV`).
 */

export const FACETS = ['organ', 'histology', 'stain', 'marker', 'differentiation', 'annotationMethod', 'dataset'] as const;
export type Facet = (typeof FACETS)[number];

export type CatalogFilter = { [F in Facet]?: string[] } & {
  /** Free text, trimmed and with runs of white space made one space. */
  q?: string;
};

export const FILTER_KEYS: readonly string[] = [...FACETS, 'q'];

export const FILTER_LIMITS = { valueLength: 100, valuesPerFacet: 100, textLength: 200 } as const;

/** A filter that cannot be understood: a 400 in HTTP, a plain message in the CLI. */
export class FilterError extends AppError {
  constructor(message: string, readonly parameter?: string) {
    super(400, 'invalid_filter', message, { details: parameter === undefined ? undefined : { parameter } });
  }
}

/** Parse a filter expression (see above). The empty expression is the filter that keeps everything. */
export function parseFilter(expression: string): CatalogFilter {
  const filter: CatalogFilter = {};
  if (expression.trim() === '') return filter;
  const seen = new Set<string>();
  for (const [index, raw] of expression.split(';').entries()) {
    const clause = raw.trim();
    if (clause === '') throw new FilterError(`Clause ${index + 1} of the filter is empty (clauses are separated by one ";")`);
    const equals = clause.indexOf('=');
    if (equals < 0) throw new FilterError(`"${clause}" is not key=value (for example organ=LV)`);
    const key = clause.slice(0, equals).trim();
    const value = clause.slice(equals + 1);
    if (!isFilterKey(key)) throw new FilterError(`"${key}" is not a filter key; use ${FILTER_KEYS.join(', ')}`, key);
    if (seen.has(key)) throw new FilterError(`${key} is given twice; list its values with commas instead (${key}=A,B)`, key);
    seen.add(key);
    if (key === 'q') {
      const text = normalizeText(decode(value, key));
      if (text === '') throw new FilterError('q is empty', key);
      const problem = textProblem(text);
      if (problem) throw new FilterError(problem, key);
      filter.q = text;
      continue;
    }
    const values = value.split(',').map((piece) => decode(piece, key).trim());
    if (values.some((v) => v === '')) {
      throw new FilterError(value.trim() === '' ? `${key} has no value` : `${key} has an empty value in "${value.trim()}"`, key);
    }
    const unique = [...new Set(values)];
    const problem = facetValuesProblem(key, unique);
    if (problem) throw new FilterError(problem, key);
    filter[key] = unique;
  }
  return filter;
}

/** The canonical expression of a filter: keys in the order of FACETS then q, reserved characters percent-encoded. */
export function formatFilter(filter: CatalogFilter): string {
  const clauses: string[] = [];
  for (const facet of FACETS) {
    const values = filter[facet];
    if (values && values.length > 0) clauses.push(`${facet}=${values.map((v) => encode(v, /[%;,]/g)).join(',')}`);
  }
  if (filter.q) clauses.push(`q=${encode(filter.q, /[%;]/g)}`);
  return clauses.join(';');
}

export function isFilterKey(key: string): key is Facet | 'q' {
  return FILTER_KEYS.includes(key);
}

/** The filter without one facet's condition: what that facet's counts are computed under. */
export function withoutFacet(filter: CatalogFilter, facet: Facet): CatalogFilter {
  const { [facet]: _dropped, ...rest } = filter;
  return rest;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What is wrong with a facet's values (distinct, trimmed, none empty), or undefined when nothing is. */
export function facetValuesProblem(facet: string, values: readonly string[]): string | undefined {
  if (values.length > FILTER_LIMITS.valuesPerFacet) return `${facet} lists ${values.length} values; at most ${FILTER_LIMITS.valuesPerFacet} are allowed`;
  for (const value of values) {
    if (value.length > FILTER_LIMITS.valueLength) return `A ${facet} value is ${value.length} characters long; at most ${FILTER_LIMITS.valueLength} are allowed`;
    if (CONTROL.test(value)) return `A ${facet} value contains a control character`;
  }
  return undefined;
}

/** What is wrong with `q` (normalised), or undefined when nothing is. */
export function textProblem(text: string): string | undefined {
  if (text.length > FILTER_LIMITS.textLength) return `q is ${text.length} characters long; at most ${FILTER_LIMITS.textLength} are allowed`;
  if (CONTROL.test(text)) return 'q contains a control character';
  return undefined;
}

/** Free text as the filter keeps it: trimmed, runs of white space one space. */
export function normalizeText(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

function decode(text: string, key: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new FilterError(`${key} has a malformed percent-encoding in "${text.trim()}" (write % itself as %25)`, key);
  }
}

function encode(text: string, reserved: RegExp): string {
  return text.replace(reserved, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
