import { readFile } from 'node:fs/promises';
import type { ExecutionContext } from 'ava';
import sharp from 'sharp';
import { DeepZoom, OPENSLIDE_GRID, Slide } from '../../server/wsi/index.js';
import { askOpenSlide, psnr } from './openslide.js';

/** Deep Zoom tiles agree with OpenSlide's DeepZoomGenerator to at least this PSNR (dB), as for the other formats. */
export const MIN_TILE_PSNR = 30;

/** A region to compare, in the coordinates of `level`. */
export type LevelRegion = [level: number, x: number, y: number, width: number, height: number];

export interface NdpiAgreement {
  regions: number;
  /** The largest difference of one sample between a region of ours and OpenSlide's. */
  maxRegionDifference: number;
  tiles: number;
  minTilePsnr: number;
}

/**
 * Compare an NDPI slide with OpenSlide 3.4.1: vendor, levels, properties,
 * the macro, Deep Zoom geometry, `regions` pixel for pixel (they must be
 * identical: both decode with libjpeg-turbo), and Deep Zoom tiles by PSNR.
 *
 * OpenSlide 3.4.1 counts a level's restart intervals rounding down, so where
 * the width or height is not a whole number of intervals it paints nothing in
 * the last partial column or row (read_region leaves them transparent, its
 * Deep Zoom tiles white). Pixels are compared where OpenSlide paints.
 */
export async function crossCheckNdpi(t: ExecutionContext, file: string, regions: LevelRegion[]): Promise<NdpiAgreement> {
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);

  const tiles: [number, number, number][] = [];
  dz.levels.forEach((l, level) => {
    const picks: [number, number][] = [[0, 0], [l.cols >> 1, l.rows >> 1], [l.cols - 1, l.rows - 1], [Math.min(1, l.cols - 1), l.rows >> 2]];
    for (const [c, r] of picks) if (!tiles.some(([lv, tc, tr]) => lv === level && tc === c && tr === r)) tiles.push([level, c, r]);
  });
  const reference = await askOpenSlide(file, {
    tiles,
    regions: regions.map(([level, x, y, w, h]) => [level, Math.round(x * slide.levels[level]!.downsample), Math.round(y * slide.levels[level]!.downsample), w, h]),
    associated: ['macro'],
  });

  t.is(slide.vendor, reference.vendor);
  t.deepEqual(
    slide.levels.map((l) => [l.width, l.height]),
    reference.levels.map(([w, h]) => [w, h]),
    'level sizes',
  );
  slide.levels.forEach((l, i) => t.true(Math.abs(l.downsample - reference.levels[i]![2]) < 1e-9, `downsample of level ${i}`));
  t.deepEqual(
    Object.fromEntries(slide.associatedImages.map((n) => [n, Object.values(slide.associatedSize(n)!)])),
    reference.associated,
  );
  for (const [key, value] of Object.entries(reference.properties)) {
    if (key === 'openslide.quickhash-1') continue; // a hash of OpenSlide's own making
    t.is(slide.properties[key], value, key);
  }
  t.deepEqual({ dims: dz.levels.map((l) => [l.width, l.height]), tiles: dz.levels.map((l) => [l.cols, l.rows]) }, reference.dz, 'Deep Zoom geometry');

  const macro = reference.associatedPixels[0]!;
  const mine = await slide.readAssociated('macro');
  t.deepEqual([mine.width, mine.height], macro.size);
  t.is(maxDifference(mine.data, await readFile(macro.file)), 0, 'macro pixels');

  // Where OpenSlide paints, level by level: whole restart intervals (its tile size).
  const painted = slide.levels.map((l, i) => {
    const tw = Number(reference.properties[`openslide.level[${i}].tile-width`]);
    const th = Number(reference.properties[`openslide.level[${i}].tile-height`]);
    return { width: Math.floor(l.width / tw) * tw, height: Math.floor(l.height / th) * th };
  });

  let maxRegionDifference = 0;
  for (const [i, [level, x, y, w, h]] of regions.entries()) {
    const area = painted[level]!;
    t.true(x + w <= area.width && y + h <= area.height, `region ${i} lies where OpenSlide paints`);
    const ours = await slide.readRegion(level, x, y, w, h);
    const difference = maxDifference(ours.data, await readFile(reference.regions[i]!.file));
    maxRegionDifference = Math.max(maxRegionDifference, difference);
    t.is(difference, 0, `region ${i} (level ${level}, ${x},${y} ${w}×${h}) is identical`);
  }

  let compared = 0;
  let minTilePsnr = Infinity;
  for (const { request, size, file: refFile } of reference.tiles) {
    const [level, col, row] = request;
    const source = dz.source({ level, col, row });
    const area = painted[source.slideLevel]!;
    if (source.x + source.width > area.width || source.y + source.height > area.height) continue;
    const { body } = await dz.tile({ level, col, row }, 'png', 100);
    const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== size[0] || info.height !== size[1]) {
      // OpenSlide's Python DeepZoomGenerator scales with PIL's thumbnail(), which keeps the aspect
      // ratio and so can come out one pixel short of the Deep Zoom size; ours is the exact size.
      t.true(Math.abs(info.width - size[0]) + Math.abs(info.height - size[1]) === 1, `tile ${request}: ${info.width}×${info.height} vs ${size}`);
      continue;
    }
    const quality = psnr(data, await readFile(refFile));
    minTilePsnr = Math.min(minTilePsnr, quality);
    t.true(quality >= MIN_TILE_PSNR, `tile ${request.join('/')}: PSNR ${quality.toFixed(1)} dB`);
    compared++;
  }
  t.true(compared >= tiles.length / 2, `compared ${compared} of ${tiles.length} tiles`);
  return { regions: regions.length, maxRegionDifference, tiles: compared, minTilePsnr };
}

export function maxDifference(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
