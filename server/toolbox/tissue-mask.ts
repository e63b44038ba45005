/**
 * Tissue segmentation at low resolution, as the known tools do it (see
 * docs/references.md, "Tissue masks, patches and stitching"): read the slide
 * at about 8 µm/px (1.25×), composite any transparency on white, take grey
 * (Rec. 601 luma) or HSV saturation, threshold with Otsu — tissue is
 * `grey ≤ T` (or `saturation > T`) — then clear small objects and fill small
 * holes.
 */
import path from 'node:path';
import { renderLevel0Region, type Slide } from '../wsi/index.js';
import { requireNumber, ToolboxError } from './errors.js';
import { countSet, MAX_MASK_PIXELS, writeJson, writeMaskPng, type Mask } from './mask.js';
import { fillSmallHoles, histogram, otsuThreshold, removeSmallObjects } from './morphology.js';

export type TissueMethod = 'grey' | 'saturation';
export type AreaUnit = 'um2' | 'px2';

/** The resolution a tissue mask aims at when the slide records its microns per pixel. */
export const DEFAULT_TISSUE_MPP = 8;
/** Without microns per pixel: the downsample that brings the longer side to at most this. */
export const DEFAULT_TISSUE_LONG_SIDE = 4096;
/** Smallest tissue object and largest hole filled: 0.05 mm² (a 220 µm square)… */
export const DEFAULT_MIN_AREA_UM2 = 50_000;
/** …or, on a slide without microns per pixel, the same at 0.5 µm/px, in level-0 px². */
export const DEFAULT_MIN_AREA_PX2 = 200_000;

export interface TissueMaskOptions {
  method?: TissueMethod;
  /** Level-0 pixels per mask pixel (≥ 1). Takes precedence over `mpp`. */
  downsample?: number;
  /** Microns per mask pixel (needs a slide that records its own). */
  mpp?: number;
  /** Unit of the two areas below: level-0 µm² (default when the slide records its mpp) or level-0 px². */
  areaUnit?: AreaUnit;
  /** Tissue objects smaller than this are cleared (0 keeps them all). */
  minObjectArea?: number;
  /** Holes in tissue smaller than this are filled (0 fills none). */
  minHoleArea?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface TissueMaskParameters {
  method: TissueMethod;
  requested: { downsample?: number; mpp?: number };
  areaUnit: AreaUnit;
  minObjectArea: number;
  minHoleArea: number;
  /** The two areas in mask pixels, as applied. */
  minObjectPixels: number;
  minHolePixels: number;
}

export interface TissueMask extends Mask {
  /** Otsu's threshold on the grey (or saturation) values. */
  threshold: number;
  /** The rule that made a pixel tissue, e.g. "grey <= 212". */
  rule: string;
  level0: { width: number; height: number };
  /** Microns per mask pixel, when the slide records its mpp. */
  mpp?: { x: number; y: number };
  /** The stored level the pixels were read from. */
  sourceLevel: number;
  tissuePixels: number;
  removedObjects: number;
  filledHoles: number;
  parameters: TissueMaskParameters;
}

/** The mask size and downsample a tissue mask of `slide` will have with `options` (validated). */
export function tissueMaskGeometry(slide: Pick<Slide, 'width' | 'height' | 'mpp'>, options: Pick<TissueMaskOptions, 'downsample' | 'mpp'> = {}) {
  const { width, height } = slide;
  const slideMpp = slide.mpp ? (slide.mpp.x + slide.mpp.y) / 2 : undefined;
  let downsample: number;
  if (options.downsample !== undefined) {
    downsample = requireNumber('downsample', options.downsample, 1, Math.max(width, height));
  } else if (options.mpp !== undefined) {
    requireNumber('mpp', options.mpp, Number.MIN_VALUE);
    if (!slideMpp) throw new ToolboxError('mpp', 'needs a slide that records its microns per pixel; give a downsample instead');
    if (options.mpp < slideMpp) throw new ToolboxError('mpp', `must be at least the slide's own ${slideMpp} µm/px, got ${options.mpp}`);
    downsample = options.mpp / slideMpp;
  } else {
    downsample = slideMpp ? Math.max(1, DEFAULT_TISSUE_MPP / slideMpp) : Math.max(1, Math.max(width, height) / DEFAULT_TISSUE_LONG_SIDE);
  }
  const maskWidth = Math.max(1, Math.round(width / downsample));
  const maskHeight = Math.max(1, Math.round(height / downsample));
  if (maskWidth * maskHeight > MAX_MASK_PIXELS) {
    throw new ToolboxError(options.downsample !== undefined ? 'downsample' : 'mpp', `gives a ${maskWidth}×${maskHeight} mask, over the ${MAX_MASK_PIXELS} pixels kept in memory; use a larger downsample`);
  }
  return { width: maskWidth, height: maskHeight, downsample: { x: width / maskWidth, y: height / maskHeight } };
}

/** Segment the tissue of an open slide. Options are checked before any pixel is read. */
export async function tissueMask(slide: Slide, options: TissueMaskOptions = {}): Promise<TissueMask> {
  const method = options.method ?? 'grey';
  if (method !== 'grey' && method !== 'saturation') throw new ToolboxError('method', `must be grey or saturation, got ${String(method)}`);
  const grid = tissueMaskGeometry(slide, options);
  const { width, height, downsample } = grid;
  const areaUnit = options.areaUnit ?? (slide.mpp ? 'um2' : 'px2');
  if (areaUnit !== 'um2' && areaUnit !== 'px2') throw new ToolboxError('areaUnit', `must be um2 or px2, got ${String(areaUnit)}`);
  if (areaUnit === 'um2' && !slide.mpp) throw new ToolboxError('areaUnit', 'um2 needs a slide that records its microns per pixel; use px2');
  const fallback = areaUnit === 'um2' ? DEFAULT_MIN_AREA_UM2 : DEFAULT_MIN_AREA_PX2;
  const minObjectArea = requireNumber('minObjectArea', options.minObjectArea ?? fallback, 0);
  const minHoleArea = requireNumber('minHoleArea', options.minHoleArea ?? fallback, 0);
  const pixelArea = downsample.x * downsample.y * (areaUnit === 'um2' ? slide.mpp!.x * slide.mpp!.y : 1);
  const minObjectPixels = Math.ceil(minObjectArea / pixelArea);
  const minHolePixels = Math.ceil(minHoleArea / pixelArea);

  // Read in strips of mask rows, each from the stored level just above the mask's resolution.
  const sourceLevel = slide.bestLevelForDownsample(Math.min(downsample.x, downsample.y));
  const levelDs = slide.levels[sourceLevel]!.downsample;
  const sourcePixelsPerRow = (slide.width / levelDs) * (downsample.y / levelDs);
  const rowsPerStrip = Math.max(1, Math.floor(Math.min((2 * 1024 * 1024) / width, (32 * 1024 * 1024) / sourcePixelsPerRow)));
  const values = new Uint8Array(width * height);
  for (let row = 0; row < height; row += rowsPerStrip) {
    const rows = Math.min(rowsPerStrip, height - row);
    const y = Math.round(row * downsample.y);
    const regionHeight = Math.max(1, Math.round((row + rows) * downsample.y) - y);
    const { data, info } = await renderLevel0Region(slide, { x: 0, y, width: slide.width, height: regionHeight }, width, rows, (image) =>
      image.flatten({ background: '#ffffff' }).raw().toBuffer({ resolveWithObject: true }),
    );
    const channels = info.channels;
    const out = values.subarray(row * width, (row + rows) * width);
    for (let i = 0, p = 0; i < out.length; i++, p += channels) {
      const r = data[p]!;
      const g = channels >= 3 ? data[p + 1]! : r;
      const b = channels >= 3 ? data[p + 2]! : r;
      if (method === 'grey') out[i] = (299 * r + 587 * g + 114 * b + 500) / 1000;
      else {
        const max = Math.max(r, g, b);
        out[i] = max === 0 ? 0 : Math.round((255 * (max - Math.min(r, g, b))) / max);
      }
    }
    options.onProgress?.(row + rows, height);
  }

  const bins = histogram(values);
  const threshold = otsuThreshold(bins);
  // One value everywhere (a blank slide) has no tissue to separate from anything.
  const flat = bins.filter((count) => count > 0).length < 2;
  const data = values; // reused in place: values become the mask
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    data[i] = !flat && (method === 'grey' ? v <= threshold : v > threshold) ? 255 : 0;
  }
  const removedObjects = removeSmallObjects(data, width, height, minObjectPixels);
  const filledHoles = fillSmallHoles(data, width, height, minHolePixels);
  return {
    width,
    height,
    data,
    downsample,
    threshold,
    rule: flat ? 'none (the image has one value)' : method === 'grey' ? `grey <= ${threshold}` : `saturation > ${threshold}`,
    level0: { width: slide.width, height: slide.height },
    ...(slide.mpp ? { mpp: { x: slide.mpp.x * downsample.x, y: slide.mpp.y * downsample.y } } : {}),
    sourceLevel,
    tissuePixels: countSet({ data }),
    removedObjects,
    filledHoles,
    parameters: {
      method,
      requested: { ...(options.downsample !== undefined ? { downsample: options.downsample } : {}), ...(options.mpp !== undefined ? { mpp: options.mpp } : {}) },
      areaUnit,
      minObjectArea,
      minHoleArea,
      minObjectPixels,
      minHolePixels,
    },
  };
}

/** The JSON sidecar of a tissue mask. */
export function tissueMaskSidecar(mask: TissueMask, extra: Record<string, unknown> = {}) {
  return {
    tool: 'tissue-mask',
    ...extra,
    level0: mask.level0,
    mask: { width: mask.width, height: mask.height, file: undefined as string | undefined },
    downsample: mask.downsample,
    ...(mask.mpp ? { mpp: mask.mpp } : {}),
    method: mask.parameters.method,
    threshold: mask.threshold,
    rule: mask.rule,
    sourceLevel: mask.sourceLevel,
    tissuePixels: mask.tissuePixels,
    tissueFraction: mask.tissuePixels / (mask.width * mask.height),
    removedObjects: mask.removedObjects,
    filledHoles: mask.filledHoles,
    parameters: mask.parameters,
  };
}

/** Write `<dir>/<name>.png` (0/255 grey) and `<dir>/<name>.json`; returns both paths. */
export async function saveTissueMask(mask: TissueMask, dir: string, name = 'tissue-mask', extra: Record<string, unknown> = {}): Promise<{ png: string; json: string }> {
  const png = path.join(dir, `${name}.png`);
  const json = path.join(dir, `${name}.json`);
  await writeMaskPng(mask, png);
  const sidecar = tissueMaskSidecar(mask, extra);
  sidecar.mask.file = path.basename(png);
  await writeJson(json, sidecar);
  return { png, json };
}
