import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TarArchive } from 'archiver';
import { generatePatches, loadAnnotations, parseLayerMapping } from '../../toolbox/index.js';
import { Slide } from '../../wsi/index.js';
import type { PatchesJobParameters } from './parameters.js';
import { BadInputError, type TaskContext } from './task.js';

/**
 * Patches with tissue, labelled from the slide's annotation when asked: the
 * index (`patches.json`, `patches.csv`) and the patch images packed as
 * `patches.tar`, so that a job's results stay a short list of files.
 */
export async function runPatches(context: TaskContext): Promise<void> {
  const p = context.job.parameters as PatchesJobParameters;
  if (p.labels && !context.slide.annotationFile) throw new BadInputError(`parameters.labels: slide ${context.slide.id} has no annotation to label patches from`);
  const layers = parseLayerMapping(p.layers);
  const annotations = p.labels ? await loadAnnotations(context.slide.annotationFile!) : undefined;
  const slide = await Slide.open(context.slide.file);
  try {
    const { labels, layers: _layers, ...rest } = p;
    const result = await generatePatches(slide, {
      ...rest,
      labels,
      layers,
      annotations,
      out: context.out,
      signal: context.signal,
      onProgress: (done, total) => context.progress((0.9 * done) / Math.max(1, total), 'cutting patches'),
    });
    context.progress(0.92, 'packing the patches');
    const archive = new TarArchive();
    const written = pipeline(archive, createWriteStream(path.join(context.out, 'patches.tar')));
    archive.directory(path.join(context.out, 'patches'), 'patches');
    await Promise.all([archive.finalize(), written]);
    await rm(path.join(context.out, 'patches'), { recursive: true, force: true });
    const tumours = result.patches.filter((x) => x.label === 'tumour').length;
    context.log(`${result.patches.length} of ${result.candidates} grid positions kept${labels ? `, ${tumours} tumour` : ''}`);
  } finally {
    await slide.close();
  }
}
