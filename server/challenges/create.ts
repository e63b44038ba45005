import path from 'node:path';
import { UsersRepository } from '../access/users.repository.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config/index.js';
import { createDatasetsService, DatasetError } from '../datasets/index.js';
import type { Database } from '../db/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logging.js';
import { mailSiteFrom, type Mailer } from '../mail/index.js';
import { ChallengesRepository } from './challenges.repository.js';
import { ChallengesService } from './challenges.service.js';
import { HiddenTruth } from './hidden-truth.js';
import { ChallengeUploads } from './uploads.js';
import { ChallengeUploadsRepository } from './uploads.repository.js';

/** The largest submission archive taken: 2 GiB. */
export const MAX_SUBMISSION_BYTES = 2 * 1024 ** 3;

/** `<paths.data>/challenges`: submitted archives, and uploads in progress under `uploads/`. */
export function challengesDir(config: Config): string {
  return path.join(config.paths.data, 'challenges');
}

/** Resumable uploads: their state in the database, their bytes in `<paths.data>/challenges/uploads/`. */
export function createChallengeUploads(config: Config, db: Database): ChallengeUploads {
  return new ChallengeUploads(new ChallengeUploadsRepository(db.knex), path.join(challengesDir(config), 'uploads'));
}

export function createChallengesService(config: Config, db: Database, log: Logger, { audit, mailer }: { audit: AuditLog; mailer: Mailer }): ChallengesService {
  const datasets = createDatasetsService(config, db);
  return new ChallengesService(
    new ChallengesRepository(db.knex),
    createChallengeUploads(config, db),
    async (dataset, version) => {
      try {
        return await datasets.findRelease(dataset, version);
      } catch (error) {
        if (error instanceof DatasetError) throw new AppError(404, 'release_not_found', error.message.replace(/^./, (c) => c.toUpperCase()));
        throw error;
      }
    },
    audit,
    mailer,
    mailSiteFrom(config),
    { dataDir: challengesDir(config), releasesDir: path.join(config.paths.data, 'releases'), maxUploadBytes: MAX_SUBMISSION_BYTES },
    log,
  );
}

export function createHiddenTruth(db: Database): HiddenTruth {
  const users = new UsersRepository(db.knex);
  return new HiddenTruth(new ChallengesRepository(db.knex), async (id) => (await users.findById(id))?.roles.includes('admin') ?? false);
}
