import type { Config } from '../../config/index.js';
import type { Database } from '../../db/index.js';
import { DicomExportRepository } from './dicom-export.repository.js';
import { DicomExportService } from './dicom-export.service.js';

export { DicomExportError, DicomExportService, uidKey } from './dicom-export.service.js';
export type { ExportableSlide } from './dicom-export.repository.js';

export function createDicomExportService(config: Config, db: Database): DicomExportService {
  return new DicomExportService(new DicomExportRepository(db.knex), { slideStore: config.paths.slides, uidRoot: config.dicom.uidRoot });
}
