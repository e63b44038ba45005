// Reads ../shared/fixtures, and slides of odd sizes made by the project's generator, and asks
// OpenSlide (python3-openslide) for the same slides: geometry and properties must agree, and
// pixels to a high PSNR.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import sharp from 'sharp';
import { makeSlide } from '../support/slides.js';
import { DeepZoom, OPENSLIDE_GRID, Slide } from '../../server/wsi/index.js';
import { fixture, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { askOpenSlide, openslideProblem, openslideTest, psnr } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';

/** Tiles agree with OpenSlide's to at least this PSNR (dB); level-0 regions of JPEG slides are identical. */
const MIN_TILE_PSNR = 30;

const SLIDES: FixtureName[] = [
  'CMU-1-Small-Region.svs',
  'tcga-cr-7395-01a-01-ts1.svs',
  'CropBreastSlide.tiff',
  'small.svs',
  'generated/aperio-synthetic-6000x4000.svs',
];

for (const name of SLIDES) {
  testNeeding([fixturesProblem(), openslideProblem], `${name}: properties, levels, associated images, Deep Zoom geometry and tiles agree with OpenSlide`, async (t) => {
    await crossCheck(t, fixture(name));
  });
}

for (const [width, height, tileSize, levels] of [
  [2049, 1537, 256, 2],
  [3001, 1999, 240, 3],
] as const) {
  openslideTest(`a generated ${width}×${height} slide with ${tileSize}-px tiles and ${levels} levels agrees with OpenSlide`, async (t) => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-crosscheck-'));
    t.teardown(() => rm(out, { recursive: true, force: true }));
    const { svs } = await makeSlide({ width, height, tileSize, levels, seed: width, out });
    await crossCheck(t, svs);
  });
}

async function crossCheck(t: ExecutionContext, file: string): Promise<void> {
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);

  // Three tiles per Deep Zoom level: first, middle, last.
  const tiles: [number, number, number][] = [];
  dz.levels.forEach((l, level) => {
    for (const [c, r] of [[0, 0], [l.cols >> 1, l.rows >> 1], [l.cols - 1, l.rows - 1]] as const) tiles.push([level, c, r]);
  });
  const w = Math.min(300, slide.width);
  const h = Math.min(200, slide.height);
  const region: [number, number, number, number, number] = [0, (slide.width - w) >> 1, (slide.height - h) >> 1, w, h];
  const reference = await askOpenSlide(file, { tiles, regions: [region] });

  t.is(slide.vendor, reference.vendor);
  t.deepEqual(
    slide.levels.map((l) => [l.width, l.height]),
    reference.levels.map(([lw, lh]) => [lw, lh]),
  );
  slide.levels.forEach((l, i) => t.true(Math.abs(l.downsample - reference.levels[i]![2]) < 1e-9, `downsample of level ${i}`));
  t.deepEqual(
    Object.fromEntries(slide.associatedImages.map((n) => [n, Object.values(slide.associatedSize(n)!)])),
    reference.associated,
  );
  for (const key of ['openslide.vendor', 'openslide.mpp-x', 'openslide.mpp-y', 'openslide.objective-power', 'openslide.level-count']) {
    t.is(slide.properties[key], reference.properties[key], key);
  }
  for (const [key, value] of Object.entries(reference.properties)) {
    if (key.startsWith('aperio.')) t.is(slide.properties[key], value, key);
  }
  t.deepEqual({ dims: dz.levels.map((l) => [l.width, l.height]), tiles: dz.levels.map((l) => [l.cols, l.rows]) }, reference.dz);

  const mine = await slide.readRegion(0, region[1], region[2], w, h);
  t.is(psnr(mine.data, await readFile(reference.regions[0]!.file)), Infinity, 'level-0 pixels are identical');

  let compared = 0;
  for (const { request, size, file: refFile } of reference.tiles) {
    const [level, col, row] = request;
    const { body } = await dz.tile({ level, col, row }, 'png', 100);
    const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
    if (info.width !== size[0] || info.height !== size[1]) {
      // OpenSlide's Python DeepZoomGenerator scales with PIL's thumbnail(), which keeps the aspect
      // ratio and so can come out one pixel short of the Deep Zoom size; ours is the exact size.
      t.true(Math.abs(info.width - size[0]) + Math.abs(info.height - size[1]) === 1, `tile ${request}: ${info.width}×${info.height} vs ${size}`);
      continue;
    }
    const quality = psnr(data, await readFile(refFile));
    t.true(quality >= MIN_TILE_PSNR, `tile ${request.join('/')}: PSNR ${quality.toFixed(1)} dB`);
    compared++;
  }
  t.true(compared >= tiles.length / 2, `compared ${compared} of ${tiles.length} tiles`);
}
