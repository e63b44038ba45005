import type { Knex } from 'knex';
import { SLIDES_TABLE } from '../../catalog/slides-table.js';
import { fromDbTime } from '../../db/index.js';

/** What the DICOM export needs to know of a catalog slide. */
export interface ExportableSlide {
  id: number;
  name: string;
  status: string;
  filePath: string;
  fileSize: number;
  sha256: string | null;
  publishedAt: Date;
}

/** The DICOM export's one query on the slides table. */
export class DicomExportRepository {
  constructor(private readonly knex: Knex) {}

  async findSlide(id: number): Promise<ExportableSlide | undefined> {
    const row = (await this.knex(SLIDES_TABLE).where({ id }).first('id', 'name', 'status', 'file_path', 'file_size', 'sha256', 'created_at')) as
      | { id: number; name: string; status: string; file_path: string; file_size: number | string; sha256: string | null; created_at: string | Date }
      | undefined;
    if (!row) return undefined;
    return {
      id: Number(row.id),
      name: row.name,
      status: row.status,
      filePath: row.file_path,
      fileSize: Number(row.file_size),
      sha256: row.sha256,
      publishedAt: fromDbTime(row.created_at),
    };
  }
}
