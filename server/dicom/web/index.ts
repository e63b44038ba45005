import type { Config } from '../../config/index.js';
import type { Database } from '../../db/index.js';
import type { Logger } from '../../logging.js';
import { DicomwebRepository } from './dicomweb.repository.js';
import { DicomwebService } from './dicomweb.service.js';

export { DicomwebService, matches, type FramesAnswer, type QidoQuery } from './dicomweb.service.js';
export { KEYWORDS, tagOf, toDicomJson, type JsonDataset } from './dicom-json.js';

export function createDicomwebService(config: Config, db: Database, log: Logger): DicomwebService {
  return new DicomwebService(new DicomwebRepository(db.knex), { slideStore: config.paths.slides, uidRoot: config.dicom.uidRoot }, log);
}
