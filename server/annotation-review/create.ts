import type { AuditLog } from '../audit/audit-log.js';
import { createAuditLog } from '../audit/create.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
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
  const settings = { dataDir: config.paths.data, slideStore: config.paths.slides };
  return new ReviewService(new ReviewRepository(db.knex), options.audit ?? createAuditLog(db), options.outlineWork, settings, log);
}
