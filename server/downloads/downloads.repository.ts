import type { Knex } from 'knex';
import { fromDbJson } from '../db/index.js';

/** A published slide as downloads need it: where its files are, what the catalog says about them, and its metadata. */
export interface DownloadableSlide {
  id: number;
  name: string;
  /** Relative to the slide store (config paths.slides), or absolute. */
  filePath: string;
  fileSize: number;
  /** SHA-256 of the published file, as ingest recorded it. */
  sha256: string | null;
  /** The scrubbed Aperio XML, relative to the slide store; null when the slide has none. */
  annotationPath: string | null;
  width: number;
  height: number;
  levelCount: number;
  mppX: number | null;
  mppY: number | null;
  objectivePower: number | null;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  annotationMethod: string | null;
  dataset: string | null;
  pathologyInfo: string | null;
  annotationSummary: unknown;
}

interface Row {
  id: number;
  name: string;
  file_path: string;
  file_size: number | string;
  sha256: string | null;
  annotation_path: string | null;
  width: number;
  height: number;
  level_count: number;
  mpp_x: number | null;
  mpp_y: number | null;
  objective_power: number | null;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  annotation_method: string | null;
  dataset: string | null;
  pathology_info: string | null;
  annotation_summary: unknown;
}

const COLUMNS = [
  'id',
  'name',
  'file_path',
  'file_size',
  'sha256',
  'annotation_path',
  'width',
  'height',
  'level_count',
  'mpp_x',
  'mpp_y',
  'objective_power',
  'organ',
  'histology',
  'stain',
  'marker',
  'differentiation',
  'annotation_method',
  'dataset',
  'pathology_info',
  'annotation_summary',
];

/** Ids per query: well under SQLite's bound on parameters, and short statements on MariaDB. */
const CHUNK = 500;

/** The queries of downloads: published slides only, with their file paths (which the catalog never shows). */
export class DownloadsRepository {
  constructor(private readonly knex: Knex) {}

  async findPublished(id: number): Promise<DownloadableSlide | undefined> {
    const row = (await this.knex('slides').where({ id, status: 'published' }).first(COLUMNS)) as Row | undefined;
    return row ? toSlide(row) : undefined;
  }

  /** The published slides among `ids`, ordered by name; ids that are unknown or withdrawn are simply absent. */
  async findPublishedMany(ids: readonly number[]): Promise<DownloadableSlide[]> {
    const unique = [...new Set(ids)];
    const rows: Row[] = [];
    for (let i = 0; i < unique.length; i += CHUNK) {
      rows.push(...((await this.knex('slides').whereIn('id', unique.slice(i, i + CHUNK)).where({ status: 'published' }).select(COLUMNS)) as Row[]));
    }
    return rows.map(toSlide).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id));
  }
}

function toSlide(row: Row): DownloadableSlide {
  return {
    id: row.id,
    name: row.name,
    filePath: row.file_path,
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    annotationPath: row.annotation_path,
    width: row.width,
    height: row.height,
    levelCount: row.level_count,
    mppX: row.mpp_x,
    mppY: row.mpp_y,
    objectivePower: row.objective_power,
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    marker: row.marker,
    differentiation: row.differentiation,
    annotationMethod: row.annotation_method,
    dataset: row.dataset,
    pathologyInfo: row.pathology_info,
    annotationSummary: row.annotation_summary == null ? null : fromDbJson(row.annotation_summary),
  };
}
