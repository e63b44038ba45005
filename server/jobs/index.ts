import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { createIngestService } from '../ingest/create.js';
import { inboxJob } from '../ingest/inbox.job.js';
import type { Logger } from '../logging.js';
import type { ScheduledJob } from './job.js';

export { runJob, NODE_ID, type RunOutcome } from './runner.js';
export { startScheduler, type Scheduler } from './scheduler.js';
export { JobsRepository, type JobRun } from './jobs.repository.js';
export type { ScheduledJob, JobContext, JobSummary } from './job.js';

/** Every scheduled job of the appliance, in the order `cron list` shows them. */
export function createJobs(config: Config, db: Database, log: Logger): ScheduledJob[] {
  return [inboxJob(config, createIngestService(config, db, log))];
}
