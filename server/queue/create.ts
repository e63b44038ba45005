import path from 'node:path';
import type { AuditLog } from '../audit/audit-log.js';
import { createAuditLog } from '../audit/create.js';
import { createSlideRelease } from '../catalog/slide-release.js';
import { SlidesRepository } from '../catalog/slides.repository.js';
import { createChallengesService } from '../challenges/create.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { DownloadLimits } from '../downloads/limits.js';
import type { Logger } from '../logging.js';
import { createMailer } from '../mail/index.js';
import { Slide } from '../wsi/index.js';
import { estimateJob } from './budget.js';
import type { JobType } from './model.js';
import { OverlayNamesRepository } from './overlay-names.repository.js';
import { OverlayPublisher } from './overlay-publisher.js';
import { QueueRepository } from './queue.repository.js';
import { QueueService } from './queue.service.js';
import { QueueWorker, tileGrid, type OtherWork, type SlideLookup } from './worker.js';

/** `<paths.data>/results`: one folder per succeeded job. */
export function resultsRoot(config: Config): string {
  return path.join(config.paths.data, 'results');
}

/** `downloadLimits`: the download limits the process's other download paths share (services.ts). */
export function createQueueService(config: Config, db: Database, audit: AuditLog, downloadLimits: DownloadLimits): QueueService {
  const slides = new SlidesRepository(db.knex);
  return new QueueService({
    repository: new QueueRepository(db.knex, db.dialect),
    slideExists: async (id) => (await slides.findById(id))?.status === 'published',
    audit,
    release: createSlideRelease(db),
    downloadLimits,
    resultsRoot: resultsRoot(config),
    overlays: overlayPublisher(config, db),
    estimate: estimator(config, db),
    maxAttempts: config.queue.maxAttempts,
    quotas: {
      maxQueuedPerUser: config.queue.maxQueuedPerUser,
      maxOutputCount: config.queue.maxOutputCount,
      maxOutputBytes: config.queue.maxOutputBytes,
    },
  });
}

/** `<paths.cache>/overlays`, which the tile routes serve, and who holds the names there. */
export function overlayPublisher(config: Config, db: Database): OverlayPublisher {
  const jobs = new QueueRepository(db.knex, db.dialect);
  return new OverlayPublisher(new OverlayNamesRepository(db.knex, db.dialect), path.join(config.paths.cache, 'overlays'), async (id) => (await jobs.findById(id))?.ownerId);
}

/** A job's output estimated on its slide's file, as the worker will read it. */
function estimator(config: Config, db: Database) {
  const lookup = catalogSlides(db, config.paths.slides);
  return async (slideId: number, type: JobType, parameters: Record<string, unknown>) => {
    const found = await lookup(slideId);
    if (!found) return undefined;
    const slide = await Slide.open(found.file);
    try {
      return estimateJob(type, parameters, slide, tileGrid(slide, config.tiles));
    } finally {
      await slide.close();
    }
  };
}

/**
 * A worker on this process's database connection, with the catalog's slides
 * resolved under `paths.slides`; between toolbox jobs it scores the
 * challenges' submissions.
 */
export function createQueueWorker(config: Config, db: Database, log: Logger, options: { id?: string } = {}): QueueWorker {
  const challenges = createChallengesService(config, db, log, { audit: createAuditLog(db), mailer: createMailer(config, log) });
  const scoring: OtherWork = {
    name: 'challenge scoring',
    runOnce: async () => {
      const done = await challenges.scorePending({ max: 1 });
      return done.scored + done.invalid + done.failed > 0;
    },
  };
  return new QueueWorker(
    new QueueRepository(db.knex, db.dialect),
    catalogSlides(db, config.paths.slides),
    overlayPublisher(config, db),
    {
      leaseSeconds: config.queue.leaseSeconds,
      pollSeconds: config.queue.pollSeconds,
      retrySeconds: config.queue.retrySeconds,
      maxRunningPerUser: config.queue.maxRunningPerUser,
      maxRunMinutes: config.queue.maxRunMinutes,
      resultsRoot: resultsRoot(config),
      tiles: config.tiles,
    },
    log,
    { ...options, otherWork: [scoring] },
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
