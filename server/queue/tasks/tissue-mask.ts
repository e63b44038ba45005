import { saveTissueMask, tissueMask } from '../../toolbox/index.js';
import { Slide } from '../../wsi/index.js';
import type { TissueMaskParameters } from './parameters.js';
import type { TaskContext } from './task.js';

/** `tissue-mask.png` (0/255) and `tissue-mask.json`, as `slidebank toolbox tissue-mask` writes them. */
export async function runTissueMask(context: TaskContext): Promise<void> {
  const p = context.job.parameters as TissueMaskParameters;
  const slide = await Slide.open(context.slide.file);
  try {
    const mask = await tissueMask(slide, { ...p, onProgress: (done, total) => context.progress((0.95 * done) / total, 'reading the slide') });
    context.progress(0.97, 'writing the mask');
    await saveTissueMask(mask, context.out, 'tissue-mask', { slideId: context.slide.id, job: context.job.id });
    context.log(`${mask.width}x${mask.height} mask, ${mask.rule}, ${((100 * mask.tissuePixels) / (mask.width * mask.height)).toFixed(1)}% tissue`);
  } finally {
    await slide.close();
  }
}
