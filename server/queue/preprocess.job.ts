import { access } from 'node:fs/promises';
import { thumbnailPath, writeThumbnails } from '../catalog/thumbnails.js';
import type { ScheduledJob } from '../jobs/job.js';
import type { QueueRepository } from './queue.repository.js';
import type { SlideLookup } from './worker.js';

export interface PreprocessSettings {
  schedule: string;
  maxAttempts: number;
  thumbnailsDir: string;
}

/**
 * `preprocess`: a tissue-mask job for each published slide that has none yet
 * (none queued, running or succeeded), and the catalog thumbnails of any
 * slide that lacks them. The jobs belong to nobody (the scheduler); workers
 * run them like any other.
 */
export function preprocessJob(repository: QueueRepository, slides: SlideLookup, settings: PreprocessSettings): ScheduledJob {
  return {
    name: 'preprocess',
    description: 'queue a tissue mask for each published slide that has none, and make missing thumbnails',
    schedule: settings.schedule,
    async run({ now, log }) {
      const ids = await repository.slidesWithoutJob('tissue-mask');
      let thumbnails = 0;
      const failures: string[] = [];
      for (const id of ids) {
        await repository.insert({ type: 'tissue-mask', slideId: id, parameters: { method: 'grey' }, ownerId: null, maxAttempts: settings.maxAttempts }, now);
        const missing = await access(thumbnailPath(settings.thumbnailsDir, id, 'large')).then(() => false, () => true);
        if (!missing) continue;
        const slide = await slides(id);
        if (!slide) continue;
        try {
          await writeThumbnails(slide.file, settings.thumbnailsDir, id);
          thumbnails++;
        } catch (error) {
          failures.push(`slide ${id}: ${(error as Error).message}`);
          log.warn({ err: error, slide: id }, 'preprocess: could not make the thumbnails');
        }
      }
      return { tissueMaskJobs: ids.length, thumbnails, ...(failures.length ? { thumbnailFailures: failures.slice(0, 20) } : {}) };
    },
  };
}
