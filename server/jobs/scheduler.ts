import cron from 'node-cron';
import type { Logger } from '../logging.js';
import type { ScheduledJob } from './job.js';
import type { JobsRepository } from './jobs.repository.js';
import { runJob } from './runner.js';

export interface Scheduler {
  stop(): Promise<void>;
}

/** Schedule every job that has a cron expression; a run still going when the next is due is not started twice. */
export function startScheduler(jobs: ScheduledJob[], repository: JobsRepository, timeZone: string, log: Logger): Scheduler {
  const running = new Set<Promise<unknown>>();
  const tasks = jobs
    .filter((job) => job.schedule !== '')
    .map((job) =>
      cron.schedule(
        job.schedule,
        async () => {
          const run = runJob(job, repository, { trigger: 'schedule', log });
          running.add(run);
          try {
            await run;
          } finally {
            running.delete(run);
          }
        },
        { name: job.name, timezone: timeZone, noOverlap: true },
      ),
    );
  if (tasks.length) log.info({ jobs: jobs.filter((j) => j.schedule).map((j) => `${j.name} (${j.schedule})`), timeZone }, 'scheduled jobs started');
  return {
    async stop() {
      for (const task of tasks) await task.stop();
      await Promise.allSettled([...running]);
    },
  };
}
