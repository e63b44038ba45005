import path from 'node:path';
import type { AuditLog } from '../audit/audit-log.js';
import { SlidesRepository } from '../catalog/slides.repository.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { QueueRepository } from './queue.repository.js';
import { QueueService } from './queue.service.js';
import { QueueWorker, type SlideLookup } from './worker.js';

/** `<paths.data>/results`: one folder per succeeded job. */
export function resultsRoot(config: Config): string {
  return path.join(config.paths.data, 'results');
}

export function createQueueService(config: Config, db: Database, audit: AuditLog): QueueService {
  const slides = new SlidesRepository(db.knex);
  return new QueueService({
    repository: new QueueRepository(db.knex, db.dialect),
    slideExists: async (id) => (await slides.findById(id))?.status === 'published',
    audit,
    resultsRoot: resultsRoot(config),
    overlaysRoot: path.join(config.paths.cache, 'overlays'),
    maxAttempts: config.queue.maxAttempts,
  });
}

/** A worker on this process's database connection, with the catalog's slides resolved under `paths.slides`. */
export function createQueueWorker(config: Config, db: Database, log: Logger, options: { id?: string } = {}): QueueWorker {
  return new QueueWorker(
    new QueueRepository(db.knex, db.dialect),
    catalogSlides(db, config.paths.slides),
    {
      leaseSeconds: config.queue.leaseSeconds,
      pollSeconds: config.queue.pollSeconds,
      retrySeconds: config.queue.retrySeconds,
      resultsRoot: resultsRoot(config),
      overlaysRoot: path.join(config.paths.cache, 'overlays'),
      tiles: config.tiles,
    },
    log,
    options,
  );
}

/** Published slides, their stored paths resolved as the tile and download routes resolve them. */
export function catalogSlides(db: Database, slideStore: string): SlideLookup {
  const slides = new SlidesRepository(db.knex);
  const resolve = (stored: string) => path.resolve(slideStore, stored);
  return async (id) => {
    const record = await slides.findById(id);
    if (!record || record.status !== 'published') return undefined;
    const annotation = await slides.findPublishedAnnotationPath(id);
    return {
      id,
      file: resolve(record.filePath),
      annotationFile: annotation?.annotationPath ? resolve(annotation.annotationPath) : null,
      width: record.width,
      height: record.height,
    };
  };
}
