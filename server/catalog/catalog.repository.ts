import type { Knex } from 'knex';
import { fromDbJson, fromDbTime } from '../db/index.js';
import type { Facet } from './filter.js';

/** The column behind each facet. */
const COLUMNS: Record<Facet, string> = {
  organ: 'organ',
  histology: 'histology',
  stain: 'stain',
  marker: 'marker',
  differentiation: 'differentiation',
  annotationMethod: 'annotation_method',
  dataset: 'dataset',
};

/** One word of a text search: it matches a slide by its name, its pathology information, or a code whose display name matched. */
export interface TextTerm {
  text: string;
  codes: Partial<Record<Facet, string[]>>;
}

/** Which published slides: values OR-ed within a facet, facets AND-ed, and every term matching somewhere. */
export interface CatalogCriteria {
  facets: Partial<Record<Facet, string[]>>;
  terms: TextTerm[];
}

export type SortKey = 'name' | 'created' | 'size';
export interface CatalogSort {
  key: SortKey;
  direction: 'asc' | 'desc';
}

const SORT_COLUMNS: Record<SortKey, string> = { name: 'name', created: 'created_at', size: 'file_size' };

/** What ingest records about a slide's annotation (see the catalog migration), passed on as stored. */
export interface AnnotationSummary {
  layers: unknown[];
  regionCount: number;
  tumourAreaMm2: number | null;
}

/** A published slide as the catalog shows it: never its file paths nor the original's checksum. */
export interface CatalogSlide {
  id: number;
  name: string;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  annotationMethod: string | null;
  dataset: string | null;
  pathologyInfo: string | null;
  width: number;
  height: number;
  levelCount: number;
  mppX: number | null;
  mppY: number | null;
  objectivePower: number | null;
  fileSize: number;
  sha256: string | null;
  hasAnnotation: boolean;
  annotationSummary: AnnotationSummary | null;
  createdAt: Date;
}

export interface GroupCount<K extends string> {
  values: Record<K, string | null>;
  count: number;
}

interface CatalogRow {
  id: number;
  name: string;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  annotation_method: string | null;
  dataset: string | null;
  pathology_info: string | null;
  width: number;
  height: number;
  level_count: number;
  mpp_x: number | null;
  mpp_y: number | null;
  objective_power: number | null;
  file_size: number | string;
  sha256: string | null;
  has_annotation: number | string | bigint;
  annotation_summary: unknown;
  created_at: string | Date;
}

const LISTED_COLUMNS = [
  'id',
  'name',
  'organ',
  'histology',
  'stain',
  'marker',
  'differentiation',
  'annotation_method',
  'dataset',
  'pathology_info',
  'width',
  'height',
  'level_count',
  'mpp_x',
  'mpp_y',
  'objective_power',
  'file_size',
  'sha256',
  'annotation_summary',
  'created_at',
];

/** Whether an annotation file exists, without ever reading its path out of the database. */
const HAS_ANNOTATION = 'CASE WHEN annotation_path IS NULL THEN 0 ELSE 1 END AS has_annotation';

/**
 * Every query of the catalog search over published slides. LIKE escapes with
 * `!`, which means the same on SQLite and MariaDB (a backslash does not: it
 * is an escape inside MariaDB's string literals).
 */
export class CatalogRepository {
  constructor(private readonly knex: Knex) {}

  async search(criteria: CatalogCriteria, sort: CatalogSort, offset: number, limit: number): Promise<{ slides: CatalogSlide[]; total: number }> {
    const column = SORT_COLUMNS[sort.key];
    const rows = (await this.published(criteria)
      .select(LISTED_COLUMNS)
      .select(this.knex.raw(HAS_ANNOTATION))
      .orderBy([
        { column, order: sort.direction },
        { column: 'id', order: sort.direction },
      ])
      .offset(offset)
      .limit(limit)) as CatalogRow[];
    const [counted] = (await this.published(criteria).count({ count: '*' })) as { count: number | string }[];
    return { slides: rows.map(toSlide), total: Number(counted?.count ?? 0) };
  }

  /**
   * The ids of the published slides matching, by name (then id), when at
   * most `limit` match; when more do, only how many (`ids` is null), so that
   * a caller refuses a selection too large without reading it.
   */
  async publishedIds(criteria: CatalogCriteria, limit: number): Promise<{ ids: number[] | null; total: number }> {
    const rows = (await this.published(criteria)
      .select('id')
      .orderBy([
        { column: 'name', order: 'asc' },
        { column: 'id', order: 'asc' },
      ])
      .limit(limit + 1)) as { id: number }[];
    if (rows.length <= limit) return { ids: rows.map((row) => row.id), total: rows.length };
    const [counted] = (await this.published(criteria).count({ count: '*' })) as { count: number | string }[];
    return { ids: null, total: Number(counted?.count ?? 0) };
  }

  async findPublished(id: number): Promise<CatalogSlide | undefined> {
    const row = (await this.knex('slides')
      .where({ id, status: 'published' })
      .select(LISTED_COLUMNS)
      .select(this.knex.raw(HAS_ANNOTATION))
      .first()) as CatalogRow | undefined;
    return row ? toSlide(row) : undefined;
  }

  async isPublished(id: number): Promise<boolean> {
    return (await this.knex('slides').where({ id, status: 'published' }).first('id')) !== undefined;
  }

  /** How many matching slides carry each value of a facet (slides without one are not counted). */
  async facetCounts(facet: Facet, criteria: CatalogCriteria): Promise<{ value: string; count: number }[]> {
    const column = COLUMNS[facet];
    const rows = (await this.published(criteria)
      .whereNotNull(column)
      .select({ value: column })
      .count({ count: '*' })
      .groupBy(column)) as { value: string; count: number | string }[];
    return rows.map((row) => ({ value: row.value, count: Number(row.count) }));
  }

  /** Published slides counted by combinations of facet values, missing values included (as null). */
  async countBy<K extends Facet>(facets: K[]): Promise<GroupCount<K>[]> {
    const columns = facets.map((facet) => COLUMNS[facet]);
    const rows = (await this.knex('slides')
      .where({ status: 'published' })
      .select(columns)
      .count({ count: '*' })
      .groupBy(columns)) as (Record<string, string | null> & { count: number | string })[];
    return rows.map((row) => ({
      values: Object.fromEntries(facets.map((facet) => [facet, row[COLUMNS[facet]] ?? null])) as Record<K, string | null>,
      count: Number(row.count),
    }));
  }

  private published(criteria: CatalogCriteria): Knex.QueryBuilder {
    const query = this.knex('slides').where({ status: 'published' });
    for (const [facet, values] of Object.entries(criteria.facets) as [Facet, string[] | undefined][]) {
      if (values !== undefined) query.whereIn(COLUMNS[facet], values);
    }
    for (const term of criteria.terms) {
      const pattern = `%${term.text.replace(/[!%_]/g, '!$&')}%`;
      query.where((matches) => {
        matches.whereRaw(`name LIKE ? ESCAPE '!'`, [pattern]).orWhereRaw(`pathology_info LIKE ? ESCAPE '!'`, [pattern]);
        for (const [facet, codes] of Object.entries(term.codes) as [Facet, string[] | undefined][]) {
          if (codes && codes.length > 0) matches.orWhereIn(COLUMNS[facet], codes);
        }
      });
    }
    return query;
  }
}

function toSlide(row: CatalogRow): CatalogSlide {
  return {
    id: row.id,
    name: row.name,
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    marker: row.marker,
    differentiation: row.differentiation,
    annotationMethod: row.annotation_method,
    dataset: row.dataset,
    pathologyInfo: row.pathology_info,
    width: row.width,
    height: row.height,
    levelCount: row.level_count,
    mppX: row.mpp_x,
    mppY: row.mpp_y,
    objectivePower: row.objective_power,
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    hasAnnotation: Number(row.has_annotation) === 1,
    annotationSummary: row.annotation_summary == null ? null : fromDbJson<AnnotationSummary>(row.annotation_summary),
    createdAt: fromDbTime(row.created_at),
  };
}
