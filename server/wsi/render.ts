import type { Sharp } from 'sharp';
import { outOfRange } from './errors.js';
import type { Slide } from './slide.js';

export interface Level0Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Largest output any single render may produce, to keep memory bounded. */
export const MAX_RENDER_PIXELS = 16 * 1024 * 1024;

/**
 * A level-0 rectangle scaled to `outWidth`×`outHeight`: read from the stored
 * level closest above the needed resolution (never the full-resolution level
 * when a smaller one suffices), resized with Lanczos, then handed to `encode`.
 */
export async function renderLevel0Region<T>(
  slide: Slide,
  region: Level0Region,
  outWidth: number,
  outHeight: number,
  encode: (image: Sharp) => Promise<T>,
): Promise<T> {
  if (outWidth < 1 || outHeight < 1 || outWidth * outHeight > MAX_RENDER_PIXELS) {
    throw outOfRange(`output ${outWidth}×${outHeight} is empty or larger than ${MAX_RENDER_PIXELS} pixels`);
  }
  const level = slide.bestLevelForDownsample(Math.min(region.width / outWidth, region.height / outHeight));
  const ds = slide.levels[level]!.downsample;
  const width = Math.max(1, Math.round(region.width / ds));
  const height = Math.max(1, Math.round(region.height / ds));
  return slide.renderRegion(level, Math.floor(region.x / ds), Math.floor(region.y / ds), width, height, (image) =>
    encode(width === outWidth && height === outHeight ? image : image.resize(outWidth, outHeight, { fit: 'fill', kernel: 'lanczos3' })),
  );
}
