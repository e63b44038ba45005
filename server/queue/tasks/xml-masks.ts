import { loadAnnotations, parseLayerMapping, saveXmlMasks, xmlMasks } from '../../toolbox/index.js';
import type { XmlMasksParameters } from './parameters.js';
import { BadInputError, type TaskContext } from './task.js';

/** One `mask-<id>-<name>.png` per annotation layer and `xml-masks.json`, from the slide's de-identified XML. */
export async function runXmlMasks(context: TaskContext): Promise<void> {
  const p = context.job.parameters as XmlMasksParameters;
  if (!context.slide.annotationFile) throw new BadInputError(`slide ${context.slide.id} has no annotation to rasterise`);
  const layers = p.layers === undefined ? undefined : parseLayerMapping(p.layers);
  context.progress(0.05, 'reading the annotation');
  const annotations = await loadAnnotations(context.slide.annotationFile);
  context.progress(0.2, 'rasterising');
  const masks = xmlMasks(annotations, { width: context.slide.width, height: context.slide.height, downsample: p.downsample, layers });
  if (masks.length === 0) throw new BadInputError('the annotation has no layer with a shape to rasterise');
  context.progress(0.8, 'writing the masks');
  await saveXmlMasks(masks, context.out, {
    slideId: context.slide.id,
    job: context.job.id,
    level0: { width: context.slide.width, height: context.slide.height },
    parameters: { downsample: p.downsample, layers: layers ?? null },
  });
  for (const m of masks) context.log(`layer ${m.layerId} (${m.name}): ${m.shapes} shape(s), ${m.holes} hole(s), ${m.pixels} px`);
}
