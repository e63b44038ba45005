import { formatBytes } from '../downloads/limits.js';
import { AppError } from '../errors.js';
import { parseLayerMapping, planPatches, stitchGrid, tissueMaskGeometry, xmlMaskGrid } from '../toolbox/index.js';
import { deepZoomGeometry, type DeepZoomGrid, type Slide } from '../wsi/index.js';
import type { JobType } from './model.js';
import type { PatchesJobParameters, StitchParameters, TissueMaskParameters, XmlMasksParameters } from './tasks/parameters.js';

/** What a job would make, estimated from its parameters and the slide before it is queued. */
export interface JobEstimate {
  /** Files or positions the job examines and may write: patch grid positions, overlay tiles, masks. */
  count: number;
  /** Bytes it would write, after compression as estimated below. */
  bytes: number;
  /** The count in words, for the refusal, e.g. "level 0 (1600×1200) with size 16 and stride 1 gives 1877725 grid positions". */
  counted: string;
}

export interface OutputLimits {
  /** 0 = no bound. */
  maxOutputCount: number;
  maxOutputBytes: number;
}

/**
 * Encoded bytes per raw byte, from the toolbox's outputs on tissue: PNG at
 * compression level 1 keeps most of a patch's bytes, JPEG far fewer; 0/255
 * masks and heat-map tiles (smooth colour, much of it transparent) shrink to
 * little. Rough on purpose: the budget is there to refuse jobs that are off
 * by orders of magnitude, not to predict a size.
 */
const PATCH_PNG = 0.6;
const PATCH_JPEG = 0.15;
const MASK_PNG = 0.1;
const MAP_PNG16 = 0.5;
const OVERLAY_TILE_PNG = 0.05;
/** The heat map's overview: at most 2048 pixels on its longer side, RGBA. */
const OVERVIEW_BYTES = 2048 * 2048 * 4 * 0.5;

/**
 * The output of a job of `type` on `slide`, its parameters already checked
 * against their ranges. Parameters the slide cannot take (a patch larger than
 * the level, a downsample giving a mask too large to build) throw the
 * toolbox's ToolboxError naming the parameter.
 */
export function estimateJob(type: JobType, parameters: Record<string, unknown>, slide: Slide, grid: DeepZoomGrid): JobEstimate {
  switch (type) {
    case 'patches':
      return estimatePatches(parameters as PatchesJobParameters, slide);
    case 'tissue-mask': {
      const mask = tissueMaskGeometry(slide, parameters as TissueMaskParameters);
      return { count: 2, bytes: mask.width * mask.height * MASK_PNG, counted: `a ${mask.width}×${mask.height} mask` };
    }
    case 'xml-masks': {
      const p = parameters as XmlMasksParameters;
      const mask = xmlMaskGrid(slide.width, slide.height, p.downsample);
      // Unnamed layers are known only once the annotation is read: one is the least there can be.
      const layers = p.layers === undefined ? 1 : parseLayerMapping(p.layers).length;
      return { count: layers + 1, bytes: layers * mask.width * mask.height * MASK_PNG, counted: `${layers} mask(s) of ${mask.width}×${mask.height}` };
    }
    case 'stitch': {
      const map = stitchGrid({ width: slide.width, height: slide.height }, (parameters as StitchParameters).downsample);
      return { count: 2, bytes: map.width * map.height * 2 * MAP_PNG16, counted: `a ${map.width}×${map.height} map` };
    }
    case 'heatmap': {
      const { levels } = deepZoomGeometry(slide.width, slide.height, grid);
      const tiles = levels.reduce((n, l) => n + l.cols * l.rows, 0);
      const pixels = levels.reduce((n, l) => n + l.width * l.height, 0);
      return { count: tiles + 3, bytes: pixels * 4 * OVERLAY_TILE_PNG + OVERVIEW_BYTES, counted: `an overlay pyramid of ${tiles} tiles over the ${slide.width}×${slide.height} slide` };
    }
  }
}

function estimatePatches(p: PatchesJobParameters, slide: Slide): JobEstimate {
  // Labels need the annotation, which the task checks; every other parameter is checked against the slide here.
  const plan = planPatches(slide, {
    level: p.level,
    magnification: p.magnification,
    size: p.size,
    stride: p.stride,
    tissueThreshold: p.tissueThreshold,
    tumourThreshold: p.tumourThreshold,
    format: p.format,
    quality: p.quality,
    limit: p.limit,
    labels: false,
  });
  const columns = Math.floor((plan.levelWidth - plan.size) / plan.stride) + 1;
  const rows = Math.floor((plan.levelHeight - plan.size) / plan.stride) + 1;
  const positions = columns * rows;
  const written = Math.min(positions, plan.limit ?? positions);
  const perPatch = plan.size * plan.size * 3 * (plan.format === 'jpeg' ? PATCH_JPEG : PATCH_PNG);
  return {
    count: positions,
    bytes: written * perPatch,
    counted: `level ${plan.level} (${plan.levelWidth}×${plan.levelHeight}) with size ${plan.size} and stride ${plan.stride} gives ${positions} grid positions`,
  };
}

/** The refusal of a job whose estimate passes a limit (413), naming the limit, its value and its configuration key; undefined within them. */
export function overBudget(type: JobType, estimate: JobEstimate, limits: OutputLimits): AppError | undefined {
  const details = { estimate: { count: estimate.count, bytes: Math.round(estimate.bytes) }, limits };
  if (limits.maxOutputCount > 0 && estimate.count > limits.maxOutputCount) {
    return new AppError(
      413,
      'job_too_large',
      `${type}: ${estimate.counted}, over the limit of ${limits.maxOutputCount} per job (queue.maxOutputCount); ${ADVICE[type]}`,
      { details },
    );
  }
  if (limits.maxOutputBytes > 0 && estimate.bytes > limits.maxOutputBytes) {
    return new AppError(
      413,
      'job_too_large',
      `${type}: ${estimate.counted}, about ${formatBytes(Math.round(estimate.bytes))} of results, over the limit of ${formatBytes(limits.maxOutputBytes)} per job (queue.maxOutputBytes); ${ADVICE[type]}`,
      { details },
    );
  }
  return undefined;
}

const ADVICE: Record<JobType, string> = {
  patches: 'use a larger stride, a smaller size, a lower limit or a coarser level',
  'tissue-mask': 'use a larger downsample',
  'xml-masks': 'use a larger downsample',
  stitch: 'use a larger downsample',
  heatmap: 'ask an administrator to raise the limit',
};
