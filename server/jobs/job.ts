import type { Logger } from '../logging.js';

export const JOB_TRIGGERS = ['schedule', 'cli'] as const;
export type JobTrigger = (typeof JOB_TRIGGERS)[number];

export interface JobContext {
  /** The clock the job must use (`cron run --now` sets it; the scheduler passes the real time). */
  now: Date;
  trigger: JobTrigger;
  log: Logger;
}

/** What a run did, recorded with it; small and free of personal data. */
export type JobSummary = Record<string, unknown>;

export interface ScheduledJob {
  name: string;
  description: string;
  /** A cron expression, or '' when the job only runs on demand (or is switched off in configuration). */
  schedule: string;
  run(context: JobContext): Promise<JobSummary>;
}
