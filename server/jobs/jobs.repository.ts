import type { Knex } from 'knex';
import { fromDbJson, fromDbTime, isUniqueViolation, retryIdempotent, toDbTime } from '../db/index.js';
import type { JobSummary, JobTrigger } from './job.js';

export const RUN_STATUSES = ['running', 'succeeded', 'failed', 'skipped'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface JobRun {
  id: number;
  job: string;
  asOf: Date;
  startedAt: Date;
  finishedAt: Date | null;
  status: RunStatus;
  trigger: JobTrigger;
  summary: JobSummary | null;
}

interface RunRow {
  id: number;
  job: string;
  as_of: string | Date;
  started_at: string | Date;
  finished_at: string | Date | null;
  status: RunStatus;
  trigger: JobTrigger;
  summary: unknown;
}

/** Leases that let one node at a time run a job, and the record of every run. */
export class JobsRepository {
  constructor(private readonly knex: Knex) {}

  /** Take the job's lease until `until`, unless another holder has one that has not yet expired. */
  async acquireLease(job: string, holder: string, now: Date, until: Date): Promise<boolean> {
    try {
      await this.knex('job_leases').insert({ job, holder, expires_at: toDbTime(until) });
      return true;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    // On Galera two nodes taking an expired lease at once conflict at commit; the one run again then finds it taken.
    const taken = await retryIdempotent(() =>
      this.knex('job_leases')
        .where({ job })
        .andWhere((q) => {
          q.where('expires_at', '<', toDbTime(now)).orWhere({ holder });
        })
        .update({ holder, expires_at: toDbTime(until) }),
    );
    return taken === 1;
  }

  async releaseLease(job: string, holder: string): Promise<void> {
    await retryIdempotent(() => this.knex('job_leases').where({ job, holder }).del());
  }

  async startRun(job: string, asOf: Date, trigger: JobTrigger, status: RunStatus = 'running', now = new Date()): Promise<number> {
    const [inserted] = await this.knex('job_runs')
      .insert({ job, as_of: toDbTime(asOf), started_at: toDbTime(now), status, trigger, finished_at: status === 'running' ? null : toDbTime(now) })
      .returning('id');
    return typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
  }

  /** Whether a scheduled run of `job` for the tick `asOf` was already started (on any node) and did not fail to start. */
  async hasScheduledRun(job: string, asOf: Date): Promise<boolean> {
    const row = await this.knex('job_runs').where({ job, as_of: toDbTime(asOf), trigger: 'schedule' }).whereIn('status', ['running', 'succeeded', 'failed']).first('id');
    return row !== undefined;
  }

  async finishRun(id: number, status: RunStatus, summary: JobSummary, now = new Date()): Promise<void> {
    await retryIdempotent(() => this.knex('job_runs').where({ id }).update({ status, summary: JSON.stringify(summary), finished_at: toDbTime(now) }));
  }

  async recentRuns(job?: string, limit = 20): Promise<JobRun[]> {
    const query = this.knex<RunRow>('job_runs').orderBy('id', 'desc').limit(limit);
    if (job) query.where({ job });
    return (await query).map((row) => ({
      id: row.id,
      job: row.job,
      asOf: fromDbTime(row.as_of),
      startedAt: fromDbTime(row.started_at),
      finishedAt: row.finished_at === null ? null : fromDbTime(row.finished_at),
      status: row.status,
      trigger: row.trigger,
      summary: row.summary === null ? null : (fromDbJson(row.summary) as JobSummary),
    }));
  }
}
