import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { heatmap, loadProbabilityMap } from '../../toolbox/index.js';
import { randomOverlayName } from '../overlay-publisher.js';
import type { HeatmapParameters } from './parameters.js';
import { BadInputError, type TaskContext } from './task.js';

/**
 * Colour the map of an earlier job of the slide into an overlay pyramid,
 * staged for the worker to publish where the tile routes serve it
 * (`<paths.cache>/overlays/<slide>/<name>/`) once the job succeeded; the
 * overview PNG and the sidecar are the job's results.
 */
export async function runHeatmap(context: TaskContext): Promise<void> {
  const p = context.job.parameters as HeatmapParameters;
  const sourceDir = context.resultsOf(p.source);
  const files = await readdir(sourceDir).catch(() => {
    throw new BadInputError(`parameters.source: job ${p.source} has no results (removed, or it has not succeeded)`);
  });
  const file = p.file ?? files.filter((f) => f.endsWith('.png')).sort()[0];
  if (!file || !files.includes(file)) throw new BadInputError(`parameters.file: job ${p.source} has no ${file ?? 'PNG'} result`);
  const map = await loadProbabilityMap(path.join(sourceDir, file), { width: context.slide.width, height: context.slide.height });
  // Jobs accepted through the API carry their name; one queued otherwise gets an unpredictable one too.
  const name = p.name ?? randomOverlayName();
  const grid = await context.gridFor(context.slide.file);
  const staged = context.stageOverlay(name);
  context.progress(0, 'rendering the overlay pyramid');
  const result = await heatmap(map, {
    out: staged,
    name,
    colormap: p.colormap,
    cutoff: p.cutoff,
    sampling: p.sampling,
    grid,
    signal: context.signal,
    onProgress: (done, total) => context.progress((0.95 * done) / total, 'rendering the overlay pyramid'),
    extra: { slideId: context.slide.id, job: context.job.id, source: { job: p.source, file } },
  });
  await copyFile(result.overview, path.join(context.out, `${name}.png`));
  await copyFile(result.json, path.join(context.out, `${name}.json`));
  context.log(`overlay ${name}: ${result.levels.length} levels, ${result.tiles} tiles`);
}
