import { parsePredictions, stitch } from '../../toolbox/index.js';
import { Slide } from '../../wsi/index.js';
import type { StitchParameters } from './parameters.js';
import type { TaskContext } from './task.js';

/** `probability.png` (16-bit, 65535 = 1) and `probability.json` from the submitted patch scores. */
export async function runStitch(context: TaskContext): Promise<void> {
  const p = context.job.parameters as StitchParameters;
  const slide = await Slide.open(context.slide.file);
  const level0 = { width: slide.width, height: slide.height };
  const levelDownsamples = slide.levels.map((l) => ({ x: slide.width / l.width, y: slide.height / l.height }));
  await slide.close();
  // Through the library's own parser, so that a prediction outside the slide is refused with its entry number.
  const predictions = parsePredictions(JSON.stringify(p.predictions), 'json', { level0, levelDownsamples });
  const result = await stitch(predictions, level0, {
    out: context.out,
    name: 'probability',
    downsample: p.downsample,
    window: p.window,
    signal: context.signal,
    onProgress: (done, total) => context.progress((0.95 * done) / Math.max(1, total), 'stitching'),
    extra: { slideId: context.slide.id, job: context.job.id },
  });
  context.log(`${result.patches} patches onto ${result.grid.width}x${result.grid.height}`);
}
