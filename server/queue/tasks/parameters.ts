import { z } from 'zod';
import type { JobType } from '../model.js';

/**
 * The parameters each job type takes, checked when the job is submitted so
 * that a job in the queue never fails for a value the submitter could have
 * been told about at once. Ranges are those of the toolbox library; what can
 * only be checked against the slide (a level it lacks, a downsample larger
 * than the slide) is checked again by the library when the job runs.
 */

const fraction = z.number().min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');
const downsample = z.number().min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000');
const whole = (min: number, max: number) => z.number().int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const area = z.number().min(0, 'must not be negative').max(1e15, 'is too large');

export const tissueMaskParameters = z
  .strictObject({
    method: z.enum(['grey', 'saturation'], { error: 'must be grey or saturation' }).default('grey'),
    downsample: downsample.optional(),
    /** Microns per mask pixel instead of a downsample. */
    mpp: z.number().gt(0, 'must be more than 0').max(10_000, 'must be at most 10000').optional(),
    areaUnit: z.enum(['um2', 'px2'], { error: 'must be um2 or px2' }).optional(),
    minObjectArea: area.optional(),
    minHoleArea: area.optional(),
  })
  .refine((p) => p.downsample === undefined || p.mpp === undefined, { message: 'downsample and mpp exclude each other; give one', path: ['mpp'] });

export const xmlMasksParameters = z.strictObject({
  downsample: downsample.default(16),
  /** A preset (paip2019) or ID=NAME pairs such as 1=whole,2=viable; default every layer with a shape. */
  layers: z.string().regex(/^[A-Za-z0-9=,_ -]{1,200}$/, 'must be a preset such as paip2019 or ID=NAME pairs such as 1=whole,2=viable').optional(),
});

export const patchesParameters = z
  .strictObject({
    level: whole(0, 64).optional(),
    magnification: z.number().gt(0, 'must be more than 0').max(1000, 'must be at most 1000').optional(),
    size: whole(1, 8192).default(256),
    stride: whole(1, 1_000_000).optional(),
    tissueThreshold: fraction.default(0.5),
    /** Label the patches from the slide's annotation (an error when it has none). */
    labels: z.boolean().default(false),
    layers: z.string().regex(/^[A-Za-z0-9=,_ -]{1,200}$/, 'must be a preset such as paip2019 or ID=NAME pairs').default('paip2019'),
    tumourLayer: z.union([whole(0, 1_000_000), z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a layer id or name')]).default('viable'),
    tumourThreshold: fraction.default(0.5),
    maskDownsample: downsample.default(16),
    format: z.enum(['png', 'jpeg'], { error: 'must be png or jpeg' }).default('png'),
    quality: whole(1, 100).default(90),
    /** At most this many patches (in row order). */
    limit: whole(1, 1_000_000).default(10_000),
  })
  .refine((p) => p.level === undefined || p.magnification === undefined, { message: 'level and magnification exclude each other; give one', path: ['magnification'] });

const prediction = z.strictObject({
  x: z.number().min(0, 'must not be negative'),
  y: z.number().min(0, 'must not be negative'),
  size: z.number().gt(0, 'must be more than 0'),
  level: whole(0, 64).optional(),
  score: fraction,
});

export const stitchParameters = z.strictObject({
  /** Patch predictions: level-0 position, size in pixels of the level, score 0–1. Scores only: image files are not taken from the API. */
  predictions: z.array(prediction).min(1, 'must hold at least one prediction').max(20_000, 'must hold at most 20000 predictions'),
  downsample: downsample.default(16),
  window: z.enum(['uniform', 'spline', 'gaussian', 'hann'], { error: 'must be uniform, spline, gaussian or hann' }).default('gaussian'),
});

export const heatmapParameters = z.strictObject({
  /** A succeeded job of the same slide whose map is coloured: stitch (its probability map), tissue-mask or xml-masks (a mask). */
  source: whole(1, 2 ** 31 - 1),
  /** Which result of the source job (default: its first PNG map). */
  file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.png$/, 'must name a PNG result of the source job').optional(),
  /** The overlay's name under /tiles/<slide>/overlays, claimed for the job's owner when it is accepted (default heatmap-<random suffix>). */
  name: z.string().regex(/^[a-z0-9-]{1,64}$/, "must be 1 to 64 of a-z, 0-9 and '-'").optional(),
  colormap: z.enum(['jet', 'viridis'], { error: 'must be jet or viridis' }).default('jet'),
  cutoff: fraction.default(0),
  sampling: z.enum(['nearest', 'bilinear'], { error: 'must be nearest or bilinear' }).default('nearest'),
});

export const PARAMETER_SCHEMAS = {
  'tissue-mask': tissueMaskParameters,
  'xml-masks': xmlMasksParameters,
  patches: patchesParameters,
  stitch: stitchParameters,
  heatmap: heatmapParameters,
} as const satisfies Record<JobType, z.ZodType<Record<string, unknown>>>;

/** Each job type's parameters once checked, defaults filled in. */
export type JobParameters = { [T in JobType]: z.output<(typeof PARAMETER_SCHEMAS)[T]> };

export type TissueMaskParameters = z.infer<typeof tissueMaskParameters>;
export type XmlMasksParameters = z.infer<typeof xmlMasksParameters>;
export type PatchesJobParameters = z.infer<typeof patchesParameters>;
export type StitchParameters = z.infer<typeof stitchParameters>;
export type HeatmapParameters = z.infer<typeof heatmapParameters>;
