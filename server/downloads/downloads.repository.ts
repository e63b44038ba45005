import type { Knex } from 'knex';
import {
  DOWNLOAD_COLUMNS,
  SLIDES_TABLE,
  annotationSummaryOf,
  fileOf,
  geometryOf,
  metadataOf,
  originOf,
  type SlideGeometry,
  type SlideOrigin,
  type SlideRowOf,
  type StoredFile,
  type StoredMetadata,
} from '../catalog/slides-table.js';

/**
 * A published slide as downloads need it: where its files are (`filePath`
 * relative to the slide store, config paths.slides, or absolute; `sha256` of
 * the published file as ingest recorded it), what the catalog says about
 * them, and its metadata.
 */
export interface DownloadableSlide extends StoredFile, SlideGeometry, StoredMetadata, SlideOrigin {
  id: number;
  name: string;
  /** The scrubbed Aperio XML, relative to the slide store; null when the slide has none. */
  annotationPath: string | null;
  annotationSummary: unknown;
}

type Row = SlideRowOf<typeof DOWNLOAD_COLUMNS>;

/** Ids per query: well under SQLite's bound on parameters, and short statements on MariaDB. */
const CHUNK = 500;

/** The queries of downloads: published slides only, with their file paths (which the catalog never shows). */
export class DownloadsRepository {
  constructor(private readonly knex: Knex) {}

  async findPublished(id: number): Promise<DownloadableSlide | undefined> {
    const row = (await this.knex(SLIDES_TABLE).where({ id, status: 'published' }).first(DOWNLOAD_COLUMNS)) as Row | undefined;
    return row ? toSlide(row) : undefined;
  }

  /** The published slides among `ids`, ordered by name; ids that are unknown or withdrawn are simply absent. */
  async findPublishedMany(ids: readonly number[]): Promise<DownloadableSlide[]> {
    const unique = [...new Set(ids)];
    const rows: Row[] = [];
    for (let i = 0; i < unique.length; i += CHUNK) {
      rows.push(...((await this.knex(SLIDES_TABLE).whereIn('id', unique.slice(i, i + CHUNK)).where({ status: 'published' }).select(DOWNLOAD_COLUMNS)) as Row[]));
    }
    return rows.map(toSlide).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id));
  }
}

function toSlide(row: Row): DownloadableSlide {
  return {
    id: row.id,
    name: row.name,
    ...fileOf(row),
    annotationPath: row.annotation_path,
    ...geometryOf(row),
    ...metadataOf(row),
    annotationSummary: annotationSummaryOf(row),
    ...originOf(row),
  };
}
