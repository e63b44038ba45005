import { z } from 'zod';
import type { ZodOpenApiOverrideContext } from 'zod-openapi';
import { CATALOG_SORTS, DEFAULT_CATALOG_SORT, type CatalogQuery, type CatalogSortName } from '../../catalog/catalog-query.js';
import { MAX_TERMS, PAGE_SIZE } from '../../catalog/catalog.service.js';
import { FACETS, facetValuesProblem, normalizeText, textProblem, type CatalogFilter, type Facet } from '../../catalog/filter.js';
import { STAFF_FACETS, type StaffFacet } from '../../catalog/slides-table.js';
import { once } from '../params.js';

/**
 * The catalog filter as query parameters (`GET /api/slides`, and wherever a
 * filter is given the same way): each facet repeatable and/or
 * comma-separated, `q` once; empty values, as an untouched form field sends
 * them, are ignored. It gives the same `CatalogFilter`, under the same limits,
 * as the filter expression (catalog/filter.ts).
 */

function facetQuery(facet: Facet | StaffFacet, description = `${facet} codes, OR-ed: repeat the parameter or separate codes with commas`) {
  return z
    .union([z.string(), z.array(z.string())], { error: `${facet} must be text` })
    .optional()
    .transform((given, ctx) => {
      if (given === undefined) return undefined;
      const pieces = (Array.isArray(given) ? given : [given]).flatMap((value) => value.split(','));
      const values = [...new Set(pieces.map((value) => value.trim()).filter((value) => value !== ''))];
      const problem = facetValuesProblem(facet, values);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return values.length > 0 ? values : undefined;
    })
    .meta({
      description,
      override: ({ jsonSchema }: ZodOpenApiOverrideContext) => {
        delete jsonSchema.anyOf;
        Object.assign(jsonSchema, { type: 'array', items: { type: 'string' } });
      },
    });
}

const text = once('q')
  .optional()
  .transform((given, ctx) => {
    const normal = given === undefined ? '' : normalizeText(given);
    if (normal === '') return undefined;
    const problem = textProblem(normal);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return normal;
  })
  .meta({
    description:
      'Words that must each match: the start of a word of the name or the pathology information, in any case (a word with other characters than letters and digits in it, such as 3+4=7, must also appear as typed), or part of a vocabulary name',
  });

/** The filter's parameters, for a query schema to spread; `filterOf` makes the `CatalogFilter` of what they parse to. */
export const catalogFilterShape = {
  ...(Object.fromEntries(FACETS.map((facet) => [facet, facetQuery(facet)])) as Record<Facet, ReturnType<typeof facetQuery>>),
  q: text,
};

export function filterOf(parsed: { [F in Facet]?: string[] | undefined } & { q?: string | undefined }): CatalogFilter {
  const filter: CatalogFilter = {};
  for (const facet of FACETS) {
    const values = parsed[facet];
    if (values) filter[facet] = values;
  }
  if (parsed.q !== undefined) filter.q = parsed.q;
  return filter;
}

const SORT_NAMES = Object.keys(CATALOG_SORTS) as [CatalogSortName, ...CatalogSortName[]];

const sort = once('sort')
  .pipe(z.enum(SORT_NAMES, { error: (issue) => `sort must be one of ${SORT_NAMES.join(', ')}, not "${String(issue.input)}"` }))
  .optional()
  .meta({ description: `Order, descending with a leading -; default ${DEFAULT_CATALOG_SORT}`, override: { type: 'string', enum: SORT_NAMES } });

/** A whole number of the page or window; undefined when absent, since which of the two a search gives matters. */
function windowNumber(name: string, min: number, max: number, description?: string) {
  return once(name)
    .transform((given, ctx) => {
      const value = /^\d{1,10}$/.test(given) ? Number(given) : NaN;
      if (value >= min && value <= max) return value;
      ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${min} to ${max}, not "${given}"` });
      return z.NEVER;
    })
    .optional()
    .meta({
      ...(description ? { description } : {}),
      override: ({ jsonSchema }: ZodOpenApiOverrideContext) => {
        Object.assign(jsonSchema, { type: 'integer', minimum: min, maximum: max });
      },
    });
}

/**
 * A catalog search: the filter, `sort`, and either a page (`page`, 1-based,
 * and `pageSize`) or a window (`offset` and `limit`); unknown parameters
 * are refused, and every problem is named at once.
 */
export const catalogQuery = z
  .strictObject({
    ...catalogFilterShape,
    ...(Object.fromEntries(
      STAFF_FACETS.map((facet) => [facet, facetQuery(facet, `Staff only (403 staff_only_filter for anyone else): ${facet} values as staffFacets lists them, OR-ed`)]),
    ) as Record<StaffFacet, ReturnType<typeof facetQuery>>),
    q: text.refine((given) => given === undefined || given.split(' ').length <= MAX_TERMS, {
      error: (issue) => `q has ${String(issue.input).split(' ').length} words; at most ${MAX_TERMS} are searched for`,
    }),
    sort,
    page: windowNumber('page', 1, 1_000_000_000),
    pageSize: windowNumber('pageSize', 1, PAGE_SIZE.max, `Default ${PAGE_SIZE.default}`),
    offset: windowNumber('offset', 0, 1_000_000_000),
    limit: windowNumber('limit', 1, PAGE_SIZE.max),
  })
  .superRefine(({ page, pageSize, offset, limit }, ctx) => {
    if ((page !== undefined || pageSize !== undefined) && (offset !== undefined || limit !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['offset'], message: 'give either page and pageSize or offset and limit, not both' });
    }
  })
  .transform(({ sort: sortName, page, pageSize, offset, limit, scannerVendor, originalFormat, ...filter }): CatalogQuery => {
    const window =
      offset !== undefined || limit !== undefined
        ? { offset: offset ?? 0, limit: limit ?? PAGE_SIZE.default }
        : { offset: ((page ?? 1) - 1) * (pageSize ?? PAGE_SIZE.default), limit: pageSize ?? PAGE_SIZE.default };
    const origins = { ...(scannerVendor ? { scannerVendor } : {}), ...(originalFormat ? { originalFormat } : {}) };
    return { filter: filterOf(filter), ...(Object.keys(origins).length > 0 ? { origins } : {}), sort: CATALOG_SORTS[sortName ?? DEFAULT_CATALOG_SORT], ...window };
  });
