import type { AuditLog } from '../audit/audit-log.js';
import { createAuditLog } from '../audit/create.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { loadVocabulary } from '../catalog/vocabulary.js';
import type { Logger } from '../logging.js';
import type { OutlineWork } from './outline-work.js';
import { ReviewRepository } from './review.repository.js';
import { ReviewService } from './review.service.js';

/**
 * Annotation review on the configured database and folders. The server parses
 * and compares outlines on a pool of worker threads (pooledOutlineWork); the
 * command line, one request per run, in its own thread (inlineOutlineWork).
 */
export function createReviewService(config: Config, db: Database, log: Logger, options: { outlineWork: OutlineWork; audit?: AuditLog }): ReviewService {
  const settings = { dataDir: config.paths.data, slideStore: config.paths.slides, organNames: organNames(config) };
  return new ReviewService(new ReviewRepository(db.knex), options.audit ?? createAuditLog(db), options.outlineWork, settings, log);
}

/** Organ names from the vocabulary; without a readable vocabulary the worklist shows codes. */
function organNames(config: Config): Map<string, string> {
  try {
    return new Map(loadVocabulary(config.ingest.vocabularies).organs.map((o) => [o.code, o.name]));
  } catch {
    return new Map();
  }
}
