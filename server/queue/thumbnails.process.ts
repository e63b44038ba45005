// The process makeThumbnailsInBackground starts: reads its work as JSON on stdin, lowers its own priority, makes the thumbnails, answers JSON on stdout.
import { text } from 'node:stream/consumers';
import { writeThumbnails } from '../catalog/thumbnails.js';
import type { ThumbnailOutcome, ThumbnailWork } from './background-thumbnails.js';
import { lowerOwnPriority, type BackgroundPriority } from './priority.js';

const { slides, thumbnailsDir, priority: wanted } = JSON.parse(await text(process.stdin)) as { slides: ThumbnailWork[]; thumbnailsDir: string; priority: BackgroundPriority };
const priority = lowerOwnPriority(wanted);
const outcome: ThumbnailOutcome = { made: 0, failures: [], priority };
for (const slide of slides) {
  try {
    await writeThumbnails(slide.file, thumbnailsDir, slide.id);
    outcome.made++;
  } catch (error) {
    outcome.failures.push(`slide ${slide.id}: ${(error as Error).message}`);
  }
}
process.stdout.write(JSON.stringify(outcome));
