import type { Sharp } from 'sharp';
import { outOfRange, tooLarge } from './errors.js';
import type { Slide } from './slide.js';

export interface Level0Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Largest output any single render may produce, to keep memory bounded. */
export const MAX_RENDER_PIXELS = 16 * 1024 * 1024;

/** Where a level-0 rectangle scaled to some output size is read from. */
export interface RenderPlan {
  level: number;
  /** The rectangle in the level's pixels (before clipping to the level). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Pixels of the level the render decodes: the rectangle clipped to the level. */
  sourcePixels: number;
}

/**
 * The stored level a level-0 rectangle is read from to make an image of
 * `outWidth`×`outHeight`: the coarsest whose pixels of the rectangle are at
 * least as many as the output's along both axes. Half a pixel of slack
 * absorbs the rounding of stored level sizes (60001 px at 4× is stored as
 * 15000, a downsample of 4.00007), which would otherwise send a request for
 * exactly that size to the level four times finer.
 */
export function planLevel0Region(slide: Slide, region: Level0Region, outWidth: number, outHeight: number): RenderPlan {
  let level = 0;
  slide.levels.forEach((candidate, i) => {
    if (region.width / candidate.downsample + 0.5 >= outWidth && region.height / candidate.downsample + 0.5 >= outHeight) level = i;
  });
  const info = slide.levels[level]!;
  const ds = info.downsample;
  const x = Math.floor(region.x / ds);
  const y = Math.floor(region.y / ds);
  const width = Math.max(1, Math.round(region.width / ds));
  const height = Math.max(1, Math.round(region.height / ds));
  const clippedWidth = Math.max(0, Math.min(info.width, x + width) - Math.max(0, x));
  const clippedHeight = Math.max(0, Math.min(info.height, y + height) - Math.max(0, y));
  return { level, x, y, width, height, sourcePixels: clippedWidth * clippedHeight };
}

/**
 * The largest image of a level-0 rectangle, no larger than the rectangle
 * itself nor `maxArea` pixels, that the slide renders within its
 * `maxRenderSourcePixels`: the size `maxArea` allows when its level is small
 * enough, else the rectangle as the finest stored level that is small
 * enough holds it. Undefined when even the coarsest level holds more of it
 * than one render may decode.
 */
export function largestRender(slide: Slide, region: Level0Region, maxArea: number): { width: number; height: number } | undefined {
  const scale = Math.min(1, Math.sqrt(maxArea / (region.width * region.height)));
  const wanted = { width: Math.max(1, Math.floor(region.width * scale)), height: Math.max(1, Math.floor(region.height * scale)) };
  if (planLevel0Region(slide, region, wanted.width, wanted.height).sourcePixels <= slide.maxRenderSourcePixels) return wanted;
  for (const level of slide.levels) {
    const size = { width: Math.max(1, Math.round(region.width / level.downsample)), height: Math.max(1, Math.round(region.height / level.downsample)) };
    if (size.width * size.height > maxArea) continue;
    if (planLevel0Region(slide, region, size.width, size.height).sourcePixels <= slide.maxRenderSourcePixels) return size;
  }
  return undefined;
}

/** The plan of a render, or `out_of_range` for an empty or too large output and `too_large` for one that decodes too much. */
export function renderablePlan(slide: Slide, region: Level0Region, outWidth: number, outHeight: number): RenderPlan {
  if (outWidth < 1 || outHeight < 1 || outWidth * outHeight > MAX_RENDER_PIXELS) {
    throw outOfRange(`output ${outWidth}×${outHeight} is empty or larger than ${MAX_RENDER_PIXELS} pixels`);
  }
  const plan = planLevel0Region(slide, region, outWidth, outHeight);
  if (plan.sourcePixels > slide.maxRenderSourcePixels) {
    const ds = slide.levels[plan.level]!.downsample;
    throw tooLarge(
      `a ${outWidth}×${outHeight} image of ${region.width}×${region.height} level-0 pixels is read from level ${plan.level} (downsample ${round(ds)}) ` +
        `and needs ${plan.sourcePixels} of its pixels, more than the ${slide.maxRenderSourcePixels} one render may decode`,
    );
  }
  return plan;
}

/**
 * A level-0 rectangle scaled to `outWidth`×`outHeight`: read from the stored
 * level `planLevel0Region` picks (never a finer level than the output
 * needs), resized with Lanczos, then handed to `encode`. Fails with
 * `too_large` before reading anything when that level holds more of the
 * rectangle than the slide's `maxRenderSourcePixels`, and with `aborted`
 * when `signal` fires before the render is done.
 */
export async function renderLevel0Region<T>(
  slide: Slide,
  region: Level0Region,
  outWidth: number,
  outHeight: number,
  encode: (image: Sharp) => Promise<T>,
  { signal }: { signal?: AbortSignal } = {},
): Promise<T> {
  const { level, x, y, width, height } = renderablePlan(slide, region, outWidth, outHeight);
  return slide.renderRegion(
    level,
    x,
    y,
    width,
    height,
    (image) => encode(width === outWidth && height === outHeight ? image : image.resize(outWidth, outHeight, { fit: 'fill', kernel: 'lanczos3' })),
    { signal },
  );
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
