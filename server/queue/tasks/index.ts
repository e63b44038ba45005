import type { JobType } from '../model.js';
import { runHeatmap } from './heatmap.js';
import { runPatches } from './patches.js';
import { runStitch } from './stitch.js';
import type { TaskRunner } from './task.js';
import { runTissueMask } from './tissue-mask.js';
import { runXmlMasks } from './xml-masks.js';

export { PARAMETER_SCHEMAS, type JobParameters } from './parameters.js';
export { BadInputError, type TaskContext, type TaskRunner, type TaskSlide } from './task.js';

/** The work of each job type. */
export const TASKS: Record<JobType, TaskRunner> = {
  'tissue-mask': runTissueMask,
  'xml-masks': runXmlMasks,
  patches: runPatches,
  stitch: runStitch,
  heatmap: runHeatmap,
};
