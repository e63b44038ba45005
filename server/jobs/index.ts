import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { AuthTokensRepository } from '../access/auth-tokens.repository.js';
import { cleanupJob } from '../access/cleanup.job.js';
import { LoginThrottleRepository } from '../access/login-throttle.repository.js';
import { SessionsRepository } from '../access/sessions.repository.js';
import { UsersRepository } from '../access/users.repository.js';
import { agreementJobs } from '../agreements/agreements.jobs.js';
import { createChallengeUploads } from '../challenges/create.js';
import { challengeUploadsJob } from '../challenges/uploads.job.js';
import { AuditRepository } from '../audit/index.js';
import type { AgreementsService } from '../agreements/agreements.service.js';
import { createAgreementsService } from '../agreements/create.js';
import { createIngestService } from '../ingest/create.js';
import { inboxJob } from '../ingest/inbox.job.js';
import type { Logger } from '../logging.js';
import type { ScheduledJob } from './job.js';
import { JobsRepository } from './jobs.repository.js';
import { catalogSlides } from '../queue/create.js';
import { preprocessJob } from '../queue/preprocess.job.js';
import { QueueRepository } from '../queue/queue.repository.js';

export { runJob, NODE_ID, type RunOutcome } from './runner.js';
export { startScheduler, type Scheduler } from './scheduler.js';
export { JobsRepository, type JobRun } from './jobs.repository.js';
export type { ScheduledJob, JobContext, JobSummary } from './job.js';

/** The record of the jobs' runs, which the scheduler, the jobs overview and `slidebank cron` share. */
export function createJobRuns(db: Database): JobsRepository {
  return new JobsRepository(db.knex);
}

/** Every scheduled job of the appliance, in the order `cron list` shows them. */
/** `built` passes services the caller has already made, so that the server and its jobs share one of each. */
export function createJobs(config: Config, db: Database, log: Logger, built: { agreements?: AgreementsService } = {}): ScheduledJob[] {
  return [
    inboxJob(config, createIngestService(config, db, log)),
    ...agreementJobs(built.agreements ?? createAgreementsService(config, db, log), { reminders: config.jobs.remindersSchedule, expiry: config.jobs.expirySchedule }),
    cleanupJob({
      users: new UsersRepository(db.knex),
      sessions: new SessionsRepository(db.knex),
      authTokens: new AuthTokensRepository(db.knex),
      throttle: new LoginThrottleRepository(db.knex),
      audit: new AuditRepository(db.knex),
      unconfirmedDays: config.auth.unconfirmedDays,
      schedule: config.jobs.cleanupSchedule,
    }),
    challengeUploadsJob(createChallengeUploads(config, db), config.jobs.cleanupSchedule),
    preprocessJob(new QueueRepository(db.knex, db.dialect), catalogSlides(db, config.paths.slides), {
      schedule: config.jobs.preprocessSchedule,
      maxAttempts: config.queue.maxAttempts,
      thumbnailsDir: config.paths.thumbnails,
      priority: { nice: config.queue.workerNice, io: config.queue.workerIoPriority },
    }),
  ];
}
