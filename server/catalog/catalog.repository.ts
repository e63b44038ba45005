import type { Knex } from 'knex';
import { fromDbTime } from '../db/index.js';
import type { Facet } from './filter.js';
import {
  CATALOG_COLUMNS,
  FACET_COLUMNS,
  SLIDES_TABLE,
  STAFF_FACET_COLUMNS,
  annotationSummaryOf,
  geometryOf,
  metadataOf,
  type SlideColumn,
  type SlideGeometry,
  type SlideRowOf,
  type StaffFacet,
  type StoredMetadata,
} from './slides-table.js';

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

const SORT_COLUMNS: Record<SortKey, SlideColumn> = { name: 'name', created: 'created_at', size: 'file_size' };

/** What ingest records about a slide's annotation (see the catalog migration), passed on as stored. */
export interface AnnotationSummary {
  layers: unknown[];
  regionCount: number;
  tumourAreaMm2: number | null;
}

/** A published slide as the catalog shows it: never its file paths nor the original's checksum. */
export interface CatalogSlide extends StoredMetadata, SlideGeometry {
  id: number;
  name: string;
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

type CatalogRow = SlideRowOf<typeof CATALOG_COLUMNS> & { has_annotation: number | string | bigint };

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
      .select(CATALOG_COLUMNS)
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
    const row = (await this.knex(SLIDES_TABLE)
      .where({ id, status: 'published' })
      .select(CATALOG_COLUMNS)
      .select(this.knex.raw(HAS_ANNOTATION))
      .first()) as CatalogRow | undefined;
    return row ? toSlide(row) : undefined;
  }

  async isPublished(id: number): Promise<boolean> {
    return (await this.knex(SLIDES_TABLE).where({ id, status: 'published' }).first('id')) !== undefined;
  }

  /** How many matching slides carry each value of a facet (slides without one are not counted); staff's facets too. */
  async facetCounts(facet: Facet | StaffFacet, criteria: CatalogCriteria): Promise<{ value: string; count: number }[]> {
    const column = facet in STAFF_FACET_COLUMNS ? STAFF_FACET_COLUMNS[facet as StaffFacet] : FACET_COLUMNS[facet as Facet];
    const rows = (await this.published(criteria)
      .whereNotNull(column)
      .select({ value: column })
      .count({ count: '*' })
      .groupBy(column)) as { value: string; count: number | string }[];
    return rows.map((row) => ({ value: row.value, count: Number(row.count) }));
  }

  /** Published slides counted by combinations of facet values, missing values included (as null). */
  async countBy<K extends Facet>(facets: K[]): Promise<GroupCount<K>[]> {
    const columns = facets.map((facet) => FACET_COLUMNS[facet]);
    const rows = (await this.knex(SLIDES_TABLE)
      .where({ status: 'published' })
      .select(columns)
      .count({ count: '*' })
      .groupBy(columns)) as (Record<string, string | null> & { count: number | string })[];
    return rows.map((row) => ({
      values: Object.fromEntries(facets.map((facet) => [facet, row[FACET_COLUMNS[facet]] ?? null])) as Record<K, string | null>,
      count: Number(row.count),
    }));
  }

  /** How many slides are published, their files' total size in bytes, and how many have an annotation. */
  async totals(): Promise<{ slides: number; bytes: number; annotated: number }> {
    const [row] = (await this.knex(SLIDES_TABLE)
      .where({ status: 'published' })
      .count({ slides: '*' })
      .sum({ bytes: 'file_size' })
      .select(this.knex.raw('SUM(CASE WHEN annotation_path IS NULL THEN 0 ELSE 1 END) AS annotated'))) as {
      slides: number | string;
      bytes: number | string | null;
      annotated: number | string | null;
    }[];
    return { slides: Number(row?.slides ?? 0), bytes: Number(row?.bytes ?? 0), annotated: Number(row?.annotated ?? 0) };
  }

  private published(criteria: CatalogCriteria): Knex.QueryBuilder {
    const query = this.knex(SLIDES_TABLE).where({ status: 'published' });
    for (const [facet, values] of Object.entries(criteria.facets) as [Facet, string[] | undefined][]) {
      if (values !== undefined) query.whereIn(FACET_COLUMNS[facet], values);
    }
    for (const term of criteria.terms) {
      const pattern = `%${term.text.replace(/[!%_]/g, '!$&')}%`;
      query.where((matches) => {
        matches.whereRaw(`name LIKE ? ESCAPE '!'`, [pattern]).orWhereRaw(`pathology_info LIKE ? ESCAPE '!'`, [pattern]);
        for (const [facet, codes] of Object.entries(term.codes) as [Facet, string[] | undefined][]) {
          if (codes && codes.length > 0) matches.orWhereIn(FACET_COLUMNS[facet], codes);
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
    ...metadataOf(row),
    ...geometryOf(row),
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    hasAnnotation: Number(row.has_annotation) === 1,
    annotationSummary: annotationSummaryOf<AnnotationSummary>(row),
    createdAt: fromDbTime(row.created_at),
  };
}
