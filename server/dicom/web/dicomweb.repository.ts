import type { Knex } from 'knex';
import { SLIDES_TABLE } from '../../catalog/slides-table.js';
import { fromDbTime } from '../../db/index.js';

/** A published slide as DICOMweb names and serves it. */
export interface CatalogSeries {
  id: number;
  name: string;
  filePath: string;
  fileSize: number;
  sha256: string | null;
  levelCount: number;
  publishedAt: Date;
}

type Row = { id: number; name: string; file_path: string; file_size: number | string; sha256: string | null; level_count: number; created_at: string | Date };
const COLUMNS = ['id', 'name', 'file_path', 'file_size', 'sha256', 'level_count', 'created_at'] as const;

/** DICOMweb's reads of the slides table: published slides only, so a withdrawn slide is absent from every answer. */
export class DicomwebRepository {
  constructor(private readonly knex: Knex) {}

  async published(): Promise<CatalogSeries[]> {
    const rows = (await this.knex(SLIDES_TABLE).where({ status: 'published' }).orderBy('id').select(...COLUMNS)) as Row[];
    return rows.map(series);
  }

  async findPublished(id: number): Promise<CatalogSeries | undefined> {
    const row = (await this.knex(SLIDES_TABLE).where({ id, status: 'published' }).first(...COLUMNS)) as Row | undefined;
    return row ? series(row) : undefined;
  }
}

function series(row: Row): CatalogSeries {
  return {
    id: Number(row.id),
    name: row.name,
    filePath: row.file_path,
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    levelCount: Number(row.level_count),
    publishedAt: fromDbTime(row.created_at),
  };
}
