import { badRequest } from '../errors.js';
import { FILTER_KEYS, FilterError, filterFromQuery, formatFilter, parseFilter, type CatalogFilter, type QueryParameters } from '../catalog/filter.js';

/**
 * Which slides a bundle or a manifest is for: slide ids, or a catalog
 * filter (the expression of filter.ts, or for the manifest also the catalog's
 * own query parameters, so that a search page's URL carries over).
 */
export type Selection = { kind: 'slides'; ids: number[] } | { kind: 'filter'; filter: CatalogFilter };

export type ManifestFormat = 'json' | 'tsv';

const MAX_ID = 2 ** 31 - 1;
const MAX_EXPRESSION = 4000;
const BUNDLE_USAGE = 'Send JSON {"slides": [1, 2]} or {"filter": "organ=CO;stain=IHC"}';

/** `POST /api/downloads` body. */
export function parseBundleRequest(body: unknown): Selection {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid_selection', `${BUNDLE_USAGE}`);
  const keys = Object.keys(body);
  const unknown = keys.filter((key) => key !== 'slides' && key !== 'filter');
  if (unknown.length > 0) throw badRequest('invalid_selection', `${unknown.join(', ')}: not a selection field. ${BUNDLE_USAGE}`);
  const { slides, filter } = body as { slides?: unknown; filter?: unknown };
  if (slides !== undefined && filter !== undefined) throw badRequest('invalid_selection', `Give either slides or filter, not both. ${BUNDLE_USAGE}`);
  if (slides !== undefined) {
    if (!Array.isArray(slides)) throw badRequest('invalid_selection', `slides must be a list of slide ids. ${BUNDLE_USAGE}`);
    const bad = slides.filter((id) => !(typeof id === 'number' && Number.isInteger(id) && id >= 1 && id <= MAX_ID));
    if (bad.length > 0) throw badRequest('invalid_selection', `slides must hold slide ids (whole numbers from 1); not ${JSON.stringify(bad.slice(0, 5))}`);
    return { kind: 'slides', ids: [...new Set(slides as number[])] };
  }
  if (filter !== undefined) {
    if (typeof filter !== 'string') throw badRequest('invalid_selection', `filter must be a filter expression string. ${BUNDLE_USAGE}`);
    return { kind: 'filter', filter: expression(filter) };
  }
  throw badRequest('invalid_selection', `Nothing was selected. ${BUNDLE_USAGE}`);
}

const MANIFEST_USAGE = 'Give slides=1,2,3, filter=<expression>, or the catalog search parameters (organ=CO&stain=IHC); format=json (default) or tsv';

/** `GET /api/downloads/manifest` query. */
export function parseManifestQuery(query: QueryParameters): { selection: Selection; format: ManifestFormat } {
  const allowed = new Set(['slides', 'filter', 'format', ...FILTER_KEYS]);
  const unknown = Object.keys(query).filter((key) => !allowed.has(key));
  if (unknown.length > 0) throw badRequest('invalid_query', `${unknown.join(', ')}: not a manifest parameter. ${MANIFEST_USAGE}`);
  const once = (key: string): string | undefined => {
    const value = query[key];
    if (Array.isArray(value)) throw badRequest('invalid_query', `${key} is given ${value.length} times; give it once`);
    return value;
  };

  const format = once('format') ?? 'json';
  if (format !== 'json' && format !== 'tsv') throw badRequest('invalid_query', `format must be json or tsv, not "${format}"`);

  const slides = once('slides');
  const filter = once('filter');
  const facets = Object.keys(query).some((key) => FILTER_KEYS.includes(key));
  const forms = [slides !== undefined, filter !== undefined, facets].filter(Boolean).length;
  if (forms === 0) throw badRequest('invalid_query', `Nothing was selected. ${MANIFEST_USAGE}`);
  if (forms > 1) throw badRequest('invalid_query', `Give one of slides, filter or the search parameters. ${MANIFEST_USAGE}`);

  if (slides !== undefined) {
    const pieces = slides.split(',').map((piece) => piece.trim()).filter((piece) => piece !== '');
    const bad = pieces.filter((piece) => !/^[1-9]\d{0,9}$/.test(piece) || Number(piece) > MAX_ID);
    if (bad.length > 0) throw badRequest('invalid_query', `slides must be slide ids separated by commas; not ${bad.slice(0, 5).map((b) => `"${b}"`).join(', ')}`);
    return { selection: { kind: 'slides', ids: [...new Set(pieces.map(Number))] }, format };
  }
  if (filter !== undefined) return { selection: { kind: 'filter', filter: expression(filter) }, format };
  return { selection: { kind: 'filter', filter: filterFromQuery(query) }, format };
}

function expression(text: string): CatalogFilter {
  if (text.length > MAX_EXPRESSION) throw new FilterError(`The filter expression is ${text.length} characters long; at most ${MAX_EXPRESSION} are allowed`);
  return parseFilter(text);
}

/** How a selection is written down in the README, the manifest and the audit log. */
export function describeSelection(selection: Selection): { filter: string } | { slides: number[] } {
  return selection.kind === 'filter' ? { filter: formatFilter(selection.filter) } : { slides: selection.ids };
}
