import cron, { type ScheduledTask } from 'node-cron';
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
    .map((job) => {
      const task: ScheduledTask = cron.schedule(
        job.schedule,
        async () => {
          const run = runJob(job, repository, { now: tickOf(task), trigger: 'schedule', log });
          running.add(run);
          try {
            await run;
          } finally {
            running.delete(run);
          }
        },
        { name: job.name, timezone: timeZone, noOverlap: true },
      );
      return task;
    });
  if (tasks.length) log.info({ jobs: jobs.filter((j) => j.schedule).map((j) => `${j.name} (${j.schedule})`), timeZone }, 'scheduled jobs started');
  return {
    async stop() {
      for (const task of tasks) await task.stop();
      await Promise.allSettled([...running]);
    },
  };
}

/**
 * The time a run is for: the latest whole second at or before now that the
 * schedule matches. Every node computes the same tick however late its
 * timer fires, so the runner can tell a tick already run elsewhere.
 */
export function tickOf(task: Pick<ScheduledTask, 'match'>, now = new Date()): Date {
  const second = Math.floor(now.getTime() / 1000) * 1000;
  for (let back = 0; back < 3600; back++) {
    const candidate = new Date(second - back * 1000);
    if (task.match(candidate)) return candidate;
  }
  return new Date(second);
}
