import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import { JOB_TRIGGERS } from './job.js';
import { RUN_STATUSES } from './jobs.repository.js';

/** One run of a scheduled job, as the administrators' overview shows it. */
export const scheduledJobRun = z
  .object({
    id: z.number().int(),
    job: z.string(),
    asOf: timestamp.meta({ description: 'The schedule tick the run is for (or the time `cron run --now` gave)' }),
    startedAt: timestamp,
    finishedAt: timestamp.nullable(),
    status: z.enum(RUN_STATUSES),
    trigger: z.enum(JOB_TRIGGERS),
    summary: z.record(z.string(), z.unknown()).nullable().meta({ description: 'What the run did, small and free of personal data' }),
  })
  .meta({ id: 'ScheduledJobRun' });

export const scheduledJob = z
  .object({
    name: z.string(),
    description: z.string(),
    schedule: z.string().meta({ description: 'A cron expression; empty when the job only runs on demand' }),
    runs: z.array(scheduledJobRun).meta({ description: 'The last runs, newest first' }),
  })
  .meta({ id: 'ScheduledJob' });
export type ScheduledJobView = z.infer<typeof scheduledJob>;

export const scheduledJobList = z.object({ items: z.array(scheduledJob) }).meta({ id: 'ScheduledJobList' });
export type ScheduledJobList = z.infer<typeof scheduledJobList>;
