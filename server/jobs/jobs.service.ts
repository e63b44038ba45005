import type { ScheduledJob } from './job.js';
import type { JobsRepository } from './jobs.repository.js';
import type { ScheduledJobList } from './views.js';

/** What administrators see of a scheduled job: what it is and when it runs. */
export type JobDescription = Pick<ScheduledJob, 'name' | 'description' | 'schedule'>;

/** How many runs of each job the overview shows, newest first. */
export const RECENT_RUNS = 10;

/** The scheduled jobs, read-only: descriptions from the job list, runs from the database. */
export class JobsService {
  private readonly jobs: JobDescription[];

  constructor(
    jobs: readonly JobDescription[],
    private readonly runs: Pick<JobsRepository, 'recentRuns'>,
  ) {
    // Only the descriptions: the service never runs a job.
    this.jobs = jobs.map(({ name, description, schedule }) => ({ name, description, schedule }));
  }

  /** Every job with its last runs, newest first. */
  async list(): Promise<ScheduledJobList> {
    const items = await Promise.all(this.jobs.map(async (job) => ({ ...job, runs: await this.runs.recentRuns(job.name, RECENT_RUNS) })));
    return { items };
  }
}
