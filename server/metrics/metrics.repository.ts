import type { Knex } from 'knex';
import { fromDbTime } from '../db/index.js';

type Row<K extends string> = Record<K, string> & { count: number | string };

export interface CountBy<K extends string> {
  key: Record<K, string>;
  count: number;
}

/** The counts the metrics read from the database at scrape time: cheap GROUP BY queries on indexed columns. */
export class MetricsRepository {
  constructor(private readonly knex: Knex) {}

  /** Data use agreement applications by status (pending, approved, rejected, …). */
  async duaApplicationsByStatus(): Promise<CountBy<'status'>[]> {
    const rows = (await this.knex('dua_applications').select('status').count({ count: '*' }).groupBy('status')) as Row<'status'>[];
    return rows.map((row) => ({ key: { status: String(row.status) }, count: Number(row.count) }));
  }

  /** Accounts by level, disabled accounts left out. */
  async usersByLevel(): Promise<CountBy<'level'>[]> {
    const rows = (await this.knex('users').whereNull('disabled_at').select('level').count({ count: '*' }).groupBy('level')) as Row<'level'>[];
    return rows.map((row) => ({ key: { level: String(row.level) }, count: Number(row.count) }));
  }

  /** Recorded runs of the scheduled jobs by job and outcome. */
  async jobRunsByStatus(): Promise<CountBy<'job' | 'status'>[]> {
    const rows = (await this.knex('job_runs').select('job', 'status').count({ count: '*' }).groupBy('job', 'status')) as Row<'job' | 'status'>[];
    return rows.map((row) => ({ key: { job: String(row.job), status: String(row.status) }, count: Number(row.count) }));
  }

  /** Toolbox jobs in the queue by type and status (queued, running, succeeded, failed, cancelled); empty before the queue's migration. */
  async queueJobsByStatus(): Promise<CountBy<'type' | 'status'>[]> {
    if (!(await this.knex.schema.hasTable('queue_jobs'))) return [];
    const rows = (await this.knex('queue_jobs').select('type', 'status').count({ count: '*' }).groupBy('type', 'status')) as Row<'type' | 'status'>[];
    return rows.map((row) => ({ key: { type: String(row.type), status: String(row.status) }, count: Number(row.count) }));
  }

  /** When each job last failed, for alerts on a job that keeps failing. */
  async lastFailures(): Promise<{ job: string; at: Date }[]> {
    const rows = (await this.knex('job_runs').where({ status: 'failed' }).select('job').max({ at: 'started_at' }).groupBy('job')) as { job: string; at: string | Date }[];
    return rows.map((row) => ({ job: String(row.job), at: fromDbTime(row.at) }));
  }
}
