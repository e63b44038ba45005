import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { IngestRepository } from './ingest.repository.js';
import { IngestService } from './ingest.service.js';
import { loadVocabulary } from '../catalog/vocabulary.js';

/** The ingest service as the CLI, the inbox job and the first start use it. */
export function createIngestService(config: Config, db: Database, log: Logger): IngestService {
  return new IngestService(config, loadVocabulary(config.ingest.vocabularies), new IngestRepository(db.knex), log);
}
