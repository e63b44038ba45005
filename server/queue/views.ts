import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import { JOB_STATUSES, JOB_TYPES } from './model.js';

/** A toolbox job as its owner (and administrators) see it. */
export const jobView = z
  .object({
    id: z.number().int(),
    type: z.enum(JOB_TYPES),
    slideId: z.number().int(),
    slideName: z.string().nullable().meta({ description: 'The slide\'s name; null once it is no longer published' }),
    parameters: z.record(z.string(), z.unknown()).meta({ description: "The job's parameters with their defaults filled in" }),
    status: z.enum(JOB_STATUSES),
    progress: z.number().meta({ description: 'From 0 to 1' }),
    message: z.string().nullable().meta({ description: 'What the job is doing now' }),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    error: z.string().nullable(),
    log: z.string().nullable(),
    results: z
      .array(z.object({ name: z.string(), size: z.number().int(), url: z.string().meta({ description: 'Where to download it' }) }))
      .meta({ description: 'The result files; only once the job succeeded' }),
    owner: z.object({ id: z.number().int(), email: z.string() }).nullable(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
  })
  .meta({ id: 'ToolboxJob' });
export type JobView = z.infer<typeof jobView>;

export const jobAnswer = z.object({ job: jobView }).meta({ id: 'ToolboxJobAnswer' });
export type JobAnswer = z.infer<typeof jobAnswer>;

export const jobList = z.object({ items: z.array(jobView).meta({ description: 'Newest first' }) }).meta({ id: 'ToolboxJobList' });
export type JobList = z.infer<typeof jobList>;
