import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../logging.js';
import type { JobSummary, JobTrigger, ScheduledJob } from './job.js';
import type { JobsRepository, RunStatus } from './jobs.repository.js';

/** This process, as a lease holder. */
export const NODE_ID = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

/** A lease outlives any sane run; a node that dies mid-run frees the job after this long. */
const LEASE_MS = 60 * 60 * 1000;

export interface RunOutcome {
  runId: number;
  status: RunStatus;
  summary: JobSummary;
}

/**
 * Run a job once, on this node only if no other node is running it: the
 * lease is taken in the database, the run recorded, the lease released.
 */
export async function runJob(
  job: ScheduledJob,
  repository: JobsRepository,
  { now = new Date(), trigger, log }: { now?: Date; trigger: JobTrigger; log: Logger },
): Promise<RunOutcome> {
  const wall = new Date();
  if (!(await repository.acquireLease(job.name, NODE_ID, wall, new Date(wall.getTime() + LEASE_MS)))) {
    const summary = { reason: 'another node is running this job' };
    const runId = await repository.startRun(job.name, now, trigger, 'skipped');
    await repository.finishRun(runId, 'skipped', summary);
    log.info({ job: job.name }, `job ${job.name}: skipped, another node is running it`);
    return { runId, status: 'skipped', summary };
  }
  // The lease keeps runs apart; a node whose timer fired a moment later must not run the same tick again.
  if (trigger === 'schedule' && (await repository.hasScheduledRun(job.name, now))) {
    await repository.releaseLease(job.name, NODE_ID);
    const summary = { reason: 'another node ran this tick' };
    const runId = await repository.startRun(job.name, now, trigger, 'skipped');
    await repository.finishRun(runId, 'skipped', summary);
    log.info({ job: job.name }, `job ${job.name}: skipped, another node ran this tick`);
    return { runId, status: 'skipped', summary };
  }
  const runId = await repository.startRun(job.name, now, trigger);
  const jobLog = log.child({ job: job.name, run: runId });
  try {
    const summary = await job.run({ now, trigger, log: jobLog });
    await repository.finishRun(runId, 'succeeded', summary);
    jobLog.info({ summary }, `job ${job.name}: done`);
    return { runId, status: 'succeeded', summary };
  } catch (error) {
    const summary = { error: (error as Error).message };
    await repository.finishRun(runId, 'failed', summary);
    jobLog.error({ err: error }, `job ${job.name}: failed`);
    return { runId, status: 'failed', summary };
  } finally {
    await repository.releaseLease(job.name, NODE_ID);
  }
}
