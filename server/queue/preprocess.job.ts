import { access } from 'node:fs/promises';
import { thumbnailPath } from '../catalog/thumbnails.js';
import type { ScheduledJob } from '../jobs/job.js';
import { makeThumbnailsInBackground, type ThumbnailWork } from './background-thumbnails.js';
import type { BackgroundPriority } from './priority.js';
import type { QueueRepository } from './queue.repository.js';
import type { SlideLookup } from './worker.js';

export interface PreprocessSettings {
  schedule: string;
  maxAttempts: number;
  thumbnailsDir: string;
  /** The workers' CPU and I/O priority (queue.workerNice, queue.workerIoPriority), at which the thumbnails are made. */
  priority: BackgroundPriority;
}

/**
 * `preprocess`: a tissue-mask job for each published slide that has none yet
 * (none queued, running or succeeded), and the catalog thumbnails of any
 * slide that lacks them. The jobs belong to nobody (the scheduler); workers
 * run them like any other, at their lower priority. The thumbnails are made
 * in a process of their own at the same priority, not in the web server's.
 */
export function preprocessJob(repository: QueueRepository, slides: SlideLookup, settings: PreprocessSettings): ScheduledJob {
  return {
    name: 'preprocess',
    description: 'queue a tissue mask for each published slide that has none, and make missing thumbnails',
    schedule: settings.schedule,
    async run({ now, log }) {
      const ids = await repository.slidesWithoutJob('tissue-mask');
      const missing: ThumbnailWork[] = [];
      for (const id of ids) {
        await repository.insert({ type: 'tissue-mask', slideId: id, parameters: { method: 'grey' }, ownerId: null, maxAttempts: settings.maxAttempts }, now);
        if (await access(thumbnailPath(settings.thumbnailsDir, id, 'large')).then(() => true, () => false)) continue;
        const slide = await slides(id);
        if (slide) missing.push({ id, file: slide.file });
      }
      let thumbnails = 0;
      let thumbnailPriority: { nice: number; io: string | null } | undefined;
      const failures: string[] = [];
      if (missing.length > 0) {
        const outcome = await makeThumbnailsInBackground(missing, settings.thumbnailsDir, settings.priority);
        thumbnails = outcome.made;
        thumbnailPriority = { nice: outcome.priority.nice, io: outcome.priority.io };
        failures.push(...outcome.failures);
        for (const failure of outcome.failures) log.warn({ failure }, 'preprocess: could not make the thumbnails');
        for (const problem of outcome.priority.problems) log.warn({ key: 'queue.workerIoPriority' }, `preprocess: ${problem}`);
      }
      return { tissueMaskJobs: ids.length, thumbnails, ...(thumbnailPriority ? { thumbnailPriority } : {}), ...(failures.length ? { thumbnailFailures: failures.slice(0, 20) } : {}) };
    },
  };
}
