import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { badRequest, notFound } from '../errors.js';
import type { Vocabulary } from '../ingest/types.js';
import type { CatalogCriteria, CatalogRepository, CatalogSlide, CatalogSort, AnnotationSummary, TextTerm } from './catalog.repository.js';
import type { SlideRelease } from './slide-release.js';
import { FACETS, FILTER_KEYS, FilterError, filterFromQuery, withoutFacet, type CatalogFilter, type Facet, type QueryParameters } from './filter.js';
import { thumbnailPath, THUMBNAIL_SIZES, type ThumbnailSize } from './thumbnails.js';

export interface SlideItem {
  id: number;
  name: string;
  organ: string | null;
  organName: string | null;
  histology: string | null;
  histologyName: string | null;
  stain: string | null;
  stainName: string | null;
  marker: string | null;
  markerName: string | null;
  differentiation: string | null;
  differentiationName: string | null;
  annotationMethod: string | null;
  annotationMethodName: string | null;
  dataset: string | null;
  pathologyInfo: string | null;
  width: number;
  height: number;
  levelCount: number;
  /** Microns per pixel at full resolution. */
  mpp: { x: number | null; y: number | null } | null;
  objectivePower: number | null;
  fileSize: number;
  sha256: string | null;
  hasAnnotation: boolean;
  annotation: AnnotationSummary | null;
  createdAt: string;
  thumbnails: Record<ThumbnailSize, string>;
  tiles: string;
}

export interface FacetCount {
  value: string;
  name: string;
  count: number;
}

export interface SearchResult {
  items: SlideItem[];
  total: number;
  /** 1-based; null when offset/limit asked for a window that is not a whole page. */
  page: number | null;
  pageSize: number;
  offset: number;
  limit: number;
  /** Each facet's counts under the search's other conditions, so a ticked value does not hide its siblings. */
  facets: Record<Facet, FacetCount[]>;
}

export interface CountCell {
  value: string | null;
  name: string | null;
  count: number;
  /** count / the row's count, to 4 decimals. */
  share: number;
}

/** The seed paper's Table 1 (slides by organ and histology) and Table 2 (organ × annotation method), over published slides. */
export interface CatalogSummary {
  total: number;
  organHistology: {
    rows: { organ: string | null; organName: string | null; histology: string | null; histologyName: string | null; count: number }[];
    total: number;
  };
  organAnnotationMethod: {
    methods: { value: string | null; name: string | null }[];
    rows: { organ: string | null; organName: string | null; count: number; methods: CountCell[] }[];
    totals: CountCell[];
    total: number;
  };
}

export interface ThumbnailFile {
  file: string;
  etag: string;
  length: number;
}

export const PAGE_SIZE = { default: 24, max: 200 } as const;
const MAX_TERMS = 10;

const SORTS: Record<string, CatalogSort> = {
  name: { key: 'name', direction: 'asc' },
  '-name': { key: 'name', direction: 'desc' },
  created: { key: 'created', direction: 'asc' },
  '-created': { key: 'created', direction: 'desc' },
  size: { key: 'size', direction: 'asc' },
  '-size': { key: 'size', direction: 'desc' },
};
const DEFAULT_SORT = '-created';
const SEARCH_PARAMETERS = new Set([...FILTER_KEYS, 'sort', 'page', 'pageSize', 'offset', 'limit']);

interface SearchRequest {
  filter: CatalogFilter;
  sort: CatalogSort;
  offset: number;
  limit: number;
}

interface Problem {
  parameter: string;
  message: string;
}

/**
 * The catalog as researchers search it: parses and checks search requests,
 * turns vocabulary codes into display names, counts facets, and finds
 * thumbnails. Only published slides exist here.
 */
export class CatalogService {
  private readonly names: DisplayNames;
  /** Content hashes of thumbnail files, by file identity, so that a request only reads a file the first time. */
  private readonly etags = new LRUCache<string, string>({ max: 10_000 });

  constructor(
    private readonly catalog: CatalogRepository,
    vocabulary: Vocabulary,
    private readonly thumbnailsDir: string,
    /** Thumbnails are the slide's pixels: sent only while the slide may leave. */
    private readonly release: Pick<SlideRelease, 'assertMayLeave'>,
  ) {
    this.names = new DisplayNames(vocabulary);
  }

  /** `GET /api/slides`: one page of matching slides, the total and the facet counts. */
  async search(query: QueryParameters): Promise<SearchResult> {
    const request = parseSearch(query);
    const criteria = this.criteria(request.filter);
    const [found, ...counts] = await Promise.all([
      this.catalog.search(criteria, request.sort, request.offset, request.limit),
      ...FACETS.map((facet) => this.catalog.facetCounts(facet, this.criteria(withoutFacet(request.filter, facet)))),
    ]);
    const facets = Object.fromEntries(
      FACETS.map((facet, i) => [facet, this.facetCounts(facet, counts[i]!, request.filter[facet] ?? [])]),
    ) as Record<Facet, FacetCount[]>;
    const { offset, limit } = request;
    return {
      items: found.slides.map((slide) => this.item(slide)),
      total: found.total,
      page: offset % limit === 0 ? offset / limit + 1 : null,
      pageSize: limit,
      offset,
      limit,
      facets,
    };
  }

  /** `GET /api/slides/:id`: one published slide. */
  async get(id: number): Promise<SlideItem> {
    const slide = await this.catalog.findPublished(id);
    if (!slide) throw slideNotFound(id);
    return this.item(slide);
  }

  /** `GET /api/slides/summary`. */
  async summary(): Promise<CatalogSummary> {
    const [byHistology, byMethod] = await Promise.all([
      this.catalog.countBy(['organ', 'histology']),
      this.catalog.countBy(['organ', 'annotationMethod']),
    ]);
    const total = byHistology.reduce((sum, group) => sum + group.count, 0);

    const histologyRows = byHistology
      .map(({ values: { organ, histology }, count }) => ({
        organ,
        organName: this.names.name('organ', organ),
        histology,
        histologyName: this.names.histologyName(histology, organ),
        count,
      }))
      .sort((a, b) => this.names.compare('organ', a.organ, b.organ) || this.names.compare('histology', a.histology, b.histology));

    const methodCodes = [...new Set(byMethod.map((group) => group.values.annotationMethod))].sort((a, b) =>
      this.names.compare('annotationMethod', a, b),
    );
    const cells = (counts: Map<string | null, number>, rowTotal: number): CountCell[] =>
      methodCodes.map((value) => {
        const count = counts.get(value) ?? 0;
        return { value, name: this.names.name('annotationMethod', value), count, share: share(count, rowTotal) };
      });
    const byOrgan = new Map<string | null, Map<string | null, number>>();
    for (const { values, count } of byMethod) {
      const row = byOrgan.get(values.organ) ?? new Map<string | null, number>();
      row.set(values.annotationMethod, count);
      byOrgan.set(values.organ, row);
    }
    const methodRows = [...byOrgan.entries()]
      .sort(([a], [b]) => this.names.compare('organ', a, b))
      .map(([organ, counts]) => {
        const count = [...counts.values()].reduce((sum, n) => sum + n, 0);
        return { organ, organName: this.names.name('organ', organ), count, methods: cells(counts, count) };
      });
    const methodTotals = new Map<string | null, number>();
    for (const { values, count } of byMethod) {
      methodTotals.set(values.annotationMethod, (methodTotals.get(values.annotationMethod) ?? 0) + count);
    }

    return {
      total,
      organHistology: { rows: histologyRows, total },
      organAnnotationMethod: {
        methods: methodCodes.map((value) => ({ value, name: this.names.name('annotationMethod', value) })),
        rows: methodRows,
        totals: cells(methodTotals, total),
        total,
      },
    };
  }

  /** A published slide's thumbnail file (`size` small, the default, or large) and its strong ETag. */
  async thumbnail(id: number, query: QueryParameters): Promise<ThumbnailFile> {
    const size = parseThumbnailSize(query);
    await this.release.assertMayLeave(id);
    const file = thumbnailPath(this.thumbnailsDir, id, size);
    let stats;
    try {
      stats = await stat(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      throw notFound('thumbnail_not_found', `Slide ${id} has no ${size} thumbnail`);
    }
    const identity = `${file}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
    let etag = this.etags.get(identity);
    if (etag === undefined) {
      etag = `"${createHash('sha256').update(await readFile(file)).digest('base64url').slice(0, 27)}"`;
      this.etags.set(identity, etag);
    }
    return { file, etag, length: stats.size };
  }

  /** The repository's criteria for a filter: codes as the vocabulary spells them, and `q` as terms with the codes whose names match. */
  private criteria(filter: CatalogFilter): CatalogCriteria {
    const facets: CatalogCriteria['facets'] = {};
    for (const facet of FACETS) {
      const values = filter[facet];
      if (values) facets[facet] = [...new Set(values.map((value) => this.names.canonical(facet, value)))];
    }
    const terms: TextTerm[] = (filter.q ?? '')
      .split(' ')
      .filter((text) => text !== '')
      .map((text) => ({ text, codes: this.names.matching(text) }));
    return { facets, terms };
  }

  /** Counted values in vocabulary order; a selected value the other conditions leave without slides stays, with 0. */
  private facetCounts(facet: Facet, counted: { value: string; count: number }[], selected: string[]): FacetCount[] {
    const counts = new Map(counted.map(({ value, count }) => [value, count]));
    for (const value of selected) {
      const code = this.names.canonical(facet, value);
      if (!counts.has(code)) counts.set(code, 0);
    }
    return [...counts.entries()]
      .sort(([a], [b]) => this.names.compare(facet, a, b))
      .map(([value, count]) => ({ value, name: this.names.name(facet, value) ?? value, count }));
  }

  private item(slide: CatalogSlide): SlideItem {
    const n = this.names;
    return {
      id: slide.id,
      name: slide.name,
      organ: slide.organ,
      organName: n.name('organ', slide.organ),
      histology: slide.histology,
      histologyName: n.histologyName(slide.histology, slide.organ),
      stain: slide.stain,
      stainName: n.name('stain', slide.stain),
      marker: slide.marker,
      markerName: n.name('marker', slide.marker),
      differentiation: slide.differentiation,
      differentiationName: n.name('differentiation', slide.differentiation),
      annotationMethod: slide.annotationMethod,
      annotationMethodName: n.name('annotationMethod', slide.annotationMethod),
      dataset: slide.dataset,
      pathologyInfo: slide.pathologyInfo,
      width: slide.width,
      height: slide.height,
      levelCount: slide.levelCount,
      mpp: slide.mppX === null && slide.mppY === null ? null : { x: slide.mppX, y: slide.mppY },
      objectivePower: slide.objectivePower,
      fileSize: slide.fileSize,
      sha256: slide.sha256,
      hasAnnotation: slide.hasAnnotation,
      annotation: slide.annotationSummary,
      createdAt: slide.createdAt.toISOString(),
      thumbnails: {
        small: `/api/slides/${slide.id}/thumbnail?size=small`,
        large: `/api/slides/${slide.id}/thumbnail?size=large`,
      },
      tiles: `/tiles/${slide.id}.dzi`,
    };
  }
}

/** A slide id from a path; anything but a positive whole number names no slide. */
export function parseSlideId(text: string | undefined): number {
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw notFound('slide_not_found', `There is no slide "${text ?? ''}"`);
  }
  return Number(text);
}

function slideNotFound(id: number) {
  return notFound('slide_not_found', `There is no published slide ${id}`);
}

function share(count: number, total: number): number {
  return total === 0 ? 0 : Math.round((count / total) * 10_000) / 10_000;
}

/** Check every search parameter, and report every problem at once. */
function parseSearch(query: QueryParameters): SearchRequest {
  const problems: Problem[] = [];
  for (const parameter of Object.keys(query)) {
    if (!SEARCH_PARAMETERS.has(parameter)) {
      problems.push({ parameter, message: `${parameter} is not a search parameter; use ${[...SEARCH_PARAMETERS].join(', ')}` });
    }
  }

  let filter: CatalogFilter = {};
  try {
    filter = filterFromQuery(query);
    const words = filter.q?.split(' ').length ?? 0;
    if (words > MAX_TERMS) problems.push({ parameter: 'q', message: `q has ${words} words; at most ${MAX_TERMS} are searched for` });
  } catch (error) {
    if (!(error instanceof FilterError)) throw error;
    problems.push({ parameter: error.parameter ?? 'q', message: error.message });
  }

  const single = (parameter: string): string | undefined => {
    const value = query[parameter];
    if (!Array.isArray(value)) return value;
    problems.push({ parameter, message: `${parameter} is given ${value.length} times; give it once` });
    return undefined;
  };
  const whole = (parameter: string, min: number, max: number): number | undefined => {
    const text = single(parameter);
    if (text === undefined) return undefined;
    const value = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) {
      problems.push({ parameter, message: `${parameter} must be a whole number from ${min} to ${max}, not "${text}"` });
      return undefined;
    }
    return value;
  };

  const sortText = single('sort') ?? DEFAULT_SORT;
  const sort = SORTS[sortText];
  if (!sort) problems.push({ parameter: 'sort', message: `sort must be one of ${Object.keys(SORTS).join(', ')}, not "${sortText}"` });

  const page = whole('page', 1, 1_000_000_000);
  const pageSize = whole('pageSize', 1, PAGE_SIZE.max);
  const offset = whole('offset', 0, 1_000_000_000);
  const limit = whole('limit', 1, PAGE_SIZE.max);
  const pages = 'page' in query || 'pageSize' in query;
  const window = 'offset' in query || 'limit' in query;
  if (pages && window) {
    problems.push({ parameter: 'offset', message: 'give either page and pageSize or offset and limit, not both' });
  }

  if (problems.length > 0 || !sort) {
    throw badRequest('invalid_query', problems.map((p) => p.message).join('; '), { problems });
  }
  if (window) return { filter, sort, offset: offset ?? 0, limit: limit ?? PAGE_SIZE.default };
  const size = pageSize ?? PAGE_SIZE.default;
  return { filter, sort, offset: ((page ?? 1) - 1) * size, limit: size };
}

function parseThumbnailSize(query: QueryParameters): ThumbnailSize {
  const sizes = Object.keys(THUMBNAIL_SIZES);
  const unknown = Object.keys(query).filter((parameter) => parameter !== 'size');
  if (unknown.length > 0) throw badRequest('invalid_query', `${unknown.join(', ')}: not a thumbnail parameter; use size`);
  const size = query.size ?? 'small';
  if (typeof size !== 'string' || !sizes.includes(size)) {
    throw badRequest('invalid_query', `size must be one of ${sizes.join(', ')}, not ${JSON.stringify(size)}`);
  }
  return size as ThumbnailSize;
}

type NamedFacet = Exclude<Facet, 'dataset'>;

/**
 * Display names and spellings from the vocabulary. A code the vocabulary
 * does not know is shown as itself, and sorts after the known ones.
 */
class DisplayNames {
  /** code → name, in vocabulary order (histologies of every organ, the first name for a code winning). */
  private readonly byFacet: Record<NamedFacet, Map<string, string>>;
  private readonly histologiesByOrgan: Map<string, Map<string, string>>;
  /** code → its place in the vocabulary. */
  private readonly position: Record<NamedFacet, Map<string, number>>;

  constructor(vocabulary: Vocabulary) {
    const map = (entries: { code: string; name: string }[]) => new Map(entries.map((e) => [e.code, e.name] as const));
    const histologies = new Map<string, string>();
    for (const organ of vocabulary.organs) {
      for (const h of organ.histologies) if (!histologies.has(h.code)) histologies.set(h.code, h.name);
    }
    this.byFacet = {
      organ: map(vocabulary.organs),
      histology: histologies,
      stain: map(vocabulary.stains),
      marker: map(vocabulary.markers),
      differentiation: map(vocabulary.differentiations),
      annotationMethod: map(vocabulary.annotationMethods),
    };
    this.histologiesByOrgan = new Map(vocabulary.organs.map((organ) => [organ.code, map(organ.histologies)]));
    this.position = Object.fromEntries(
      Object.entries(this.byFacet).map(([facet, names]) => [facet, new Map([...names.keys()].map((code, i) => [code, i]))]),
    ) as Record<NamedFacet, Map<string, number>>;
  }

  name(facet: Facet, code: string | null): string | null {
    if (code === null) return null;
    return facet === 'dataset' ? code : (this.byFacet[facet].get(code) ?? code);
  }

  /** A histology's name as its organ's entry spells it. */
  histologyName(code: string | null, organ: string | null): string | null {
    if (code === null) return null;
    return (organ === null ? undefined : this.histologiesByOrgan.get(organ)?.get(code)) ?? this.name('histology', code);
  }

  /** A code as the vocabulary spells it (`lv` → `LV`); a code it does not know is kept as given. */
  canonical(facet: Facet, value: string): string {
    if (facet === 'dataset') return value;
    const codes = this.byFacet[facet];
    if (codes.has(value)) return value;
    const lower = value.toLowerCase();
    return [...codes.keys()].find((code) => code.toLowerCase() === lower) ?? value;
  }

  /** The codes, per facet, whose display name contains a search word (any organ's name, for a histology) or that are the word. */
  matching(word: string): Partial<Record<Facet, string[]>> {
    const lower = word.toLowerCase();
    const codes: Partial<Record<Facet, string[]>> = {};
    for (const facet of Object.keys(this.byFacet) as NamedFacet[]) {
      const entries =
        facet === 'histology' ? [...this.histologiesByOrgan.values()].flatMap((names) => [...names]) : [...this.byFacet[facet]];
      const found = new Set(
        entries.filter(([code, name]) => name.toLowerCase().includes(lower) || code.toLowerCase() === lower).map(([code]) => code),
      );
      if (found.size > 0) codes[facet] = [...found];
    }
    return codes;
  }

  /** Vocabulary order first, then unknown codes alphabetically, missing values last. */
  compare(facet: Facet, a: string | null, b: string | null): number {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (facet !== 'dataset') {
      const ia = this.position[facet].get(a);
      const ib = this.position[facet].get(b);
      if (ia !== undefined || ib !== undefined) return ia === undefined ? 1 : ib === undefined ? -1 : ia - ib;
    }
    return a < b ? -1 : 1;
  }
}
