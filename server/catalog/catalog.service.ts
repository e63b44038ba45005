import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { AppError, notFound } from '../errors.js';
import type { Vocabulary } from '../ingest/types.js';
import type { CatalogQuery } from './catalog-query.js';
import type { CatalogCriteria, CatalogRepository, CatalogSlide, TextTerm } from './catalog.repository.js';
import type { SlideRelease } from './slide-release.js';
import { FACETS, type CatalogFilter, type Facet } from './filter.js';
import { STAFF_FACETS, type StaffFacet } from './slides-table.js';
import { thumbnailPath, type ThumbnailSize } from './thumbnails.js';
import type { AnnotationSummaryView, CatalogPage, CatalogSlideView, CatalogSummary, CountCell, FacetCount } from './views.js';

export type { CatalogQuery } from './catalog-query.js';
export type { CatalogFilter } from './filter.js';

export interface ThumbnailFile {
  file: string;
  etag: string;
  length: number;
}

export const PAGE_SIZE = { default: 24, max: 200 } as const;
/** The most words of `q` a search looks for (each is matched against names, text and the vocabulary). */
export const MAX_TERMS = 10;

/**
 * The catalog as researchers search it: runs searches, turns vocabulary
 * codes into display names, counts facets, and finds thumbnails. Only
 * published slides exist here.
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

  /**
   * `GET /api/slides`: one page of matching slides, the total and the facet
   * counts; for staff, also what the slides came from, which only staff may
   * filter by (403 staff_only_filter for anyone else).
   */
  async search(request: CatalogQuery, options: { staff?: boolean } = {}): Promise<CatalogPage> {
    const origins = Object.entries(request.origins ?? {}).filter(([, values]) => values !== undefined);
    if (origins.length > 0 && !options.staff) {
      throw new AppError(403, 'staff_only_filter', `Only staff may filter by ${origins.map(([facet]) => facet).join(' and ')}`);
    }
    const criteria = { ...this.criteria(request.filter), ...(origins.length > 0 ? { origins: request.origins } : {}) };
    // Counted first: the page is looked for knowing how many slides match.
    const counted = await this.catalog.counts(criteria);
    const slides = await this.catalog.page(criteria, request.sort, request.offset, request.limit, counted.total);
    const facets = Object.fromEntries(
      FACETS.map((facet) => [facet, this.facetCounts(facet, counted.facets[facet], request.filter[facet] ?? [])]),
    ) as Record<Facet, FacetCount[]>;
    const { offset, limit } = request;
    return {
      items: slides.map((slide) => this.item(slide)),
      total: counted.total,
      page: offset % limit === 0 ? offset / limit + 1 : null,
      pageSize: limit,
      offset,
      limit,
      facets,
      ...(options.staff ? { staffFacets: this.staffFacets(counted.facets, request.origins ?? {}) } : {}),
    };
  }

  /** Origin values are not vocabulary codes: shown as they are, most frequent first; a selected value without slides stays, with 0. */
  private staffFacets(counts: Record<StaffFacet, { value: string; count: number }[]>, selected: Partial<Record<StaffFacet, string[]>>): NonNullable<CatalogPage['staffFacets']> {
    const view = (facet: StaffFacet) => {
      const counted = [...counts[facet]];
      for (const value of selected[facet] ?? []) if (!counted.some((entry) => entry.value === value)) counted.push({ value, count: 0 });
      return counted.sort((a, b) => b.count - a.count || a.value.localeCompare(b.value)).map(({ value, count }) => ({ value, name: value, count }));
    };
    return Object.fromEntries(STAFF_FACETS.map((facet) => [facet, view(facet)])) as NonNullable<CatalogPage['staffFacets']>;
  }

  /**
   * The ids of the published slides a filter selects, read as the search
   * reads it, sorted by name: what a download or a dataset takes. Null ids
   * (with the total) when more than `limit` match.
   */
  publishedIds(filter: CatalogFilter, limit: number): Promise<{ ids: number[] | null; total: number }> {
    return this.catalog.publishedIds(this.criteria(filter), limit);
  }

  /** `GET /api/slides/:id`: one published slide. */
  async get(id: number): Promise<CatalogSlideView> {
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

  /**
   * The published collection in counts only, for anyone: how many slides,
   * their total size, how many are annotated, and the slides per value of some facets (each value
   * once, in vocabulary order; slides without a value are not counted).
   */
  async counts<F extends Facet>(facets: readonly F[]): Promise<{ slides: number; bytes: number; annotated: number; facets: Record<F, FacetCount[]> }> {
    const [totals, counted] = await Promise.all([this.catalog.totals(), this.catalog.counts({ facets: {}, terms: [] })]);
    const byFacet = Object.fromEntries(facets.map((facet) => [facet, this.facetCounts(facet, counted.facets[facet], [])])) as Record<F, FacetCount[]>;
    return { ...totals, facets: byFacet };
  }

  /** A published slide's thumbnail file and its strong ETag. */
  async thumbnail(id: number, size: ThumbnailSize): Promise<ThumbnailFile> {
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
    // Terms must all match, so a term given twice is one term.
    const terms: TextTerm[] = [...new Set((filter.q ?? '').split(' ').filter((text) => text !== ''))].map((text) => ({ text, codes: this.names.matching(text) }));
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

  private item(slide: CatalogSlide): CatalogSlideView {
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
      // Stored JSON, passed on as ingest recorded it.
      annotation: slide.annotationSummary as AnnotationSummaryView | null,
      createdAt: slide.createdAt,
      thumbnails: {
        small: `/api/slides/${slide.id}/thumbnail?size=small`,
        large: `/api/slides/${slide.id}/thumbnail?size=large`,
      },
      tiles: `/tiles/${slide.id}.dzi`,
    };
  }
}

function slideNotFound(id: number) {
  return notFound('slide_not_found', `There is no published slide ${id}`);
}

function share(count: number, total: number): number {
  return total === 0 ? 0 : Math.round((count / total) * 10_000) / 10_000;
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
