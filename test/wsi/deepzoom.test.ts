import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { makeSlide } from '../support/slides.js';
import { DeepZoom, OPENSLIDE_GRID, Slide } from '../../server/wsi/index.js';

/** A generated 6000×4000 slide with levels at 1, 4 and 16, shared by the tests below. */
const out = mkdtemp(path.join(os.tmpdir(), 'slidebank-dz-'));
const slideFile = out.then(async (dir) => (await makeSlide({ width: 6000, height: 4000, levels: 3, seed: 5, out: dir })).svs);
test.after.always(async () => rm(await out, { recursive: true, force: true }));

test('levels follow the DZI conventions: N = ceil(log2(max side)), halving rounds up, level 0 is 1×1', async (t) => {
  const slide = await Slide.open(await slideFile);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  t.is(dz.levels.length, 14); // ceil(log2(6000)) = 13
  t.like(dz.levels[13], { width: 6000, height: 4000, cols: 24, rows: 16 });
  t.like(dz.levels[12], { width: 3000, height: 2000 });
  t.like(dz.levels[0], { width: 1, height: 1, cols: 1, rows: 1 });
  dz.levels.slice(1).forEach((level, i) => {
    t.is(dz.levels[i]!.width, Math.ceil(level.width / 2));
    t.is(dz.levels[i]!.height, Math.ceil(level.height / 2));
  });
});

test('each Deep Zoom level reads the stored level with the largest downsample not above its own; low levels never touch level 0', async (t) => {
  const slide = await Slide.open(await slideFile);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  t.deepEqual(slide.levels.map((l) => l.downsample), [1, 4, 16]);
  const expected = (level: number) => {
    const downsample = 2 ** (13 - level);
    return downsample >= 16 ? 2 : downsample >= 4 ? 1 : 0;
  };
  dz.levels.forEach((level, i) => t.is(level.slideLevel, expected(i), `Deep Zoom level ${i}`));
  for (let level = 0; level <= 11; level++) t.not(dz.source({ level, col: 0, row: 0 }).slideLevel, 0);
});

test('tile rectangles carry the overlap inside the slide and none at its edges', async (t) => {
  const slide = await Slide.open(await slideFile);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  t.like(dz.source({ level: 13, col: 0, row: 0 }), { slideLevel: 0, x: 0, y: 0, width: 255, height: 255, outWidth: 255, outHeight: 255 });
  t.like(dz.source({ level: 13, col: 1, row: 1 }), { x: 253, y: 253, width: 256, height: 256, outWidth: 256, outHeight: 256 });
  t.like(dz.source({ level: 13, col: 23, row: 15 }), { x: 23 * 254 - 1, y: 15 * 254 - 1, outWidth: 6000 - 23 * 254 + 1, outHeight: 4000 - 15 * 254 + 1 });
  t.throws(() => dz.source({ level: 13, col: 24, row: 0 }), { message: /no tile 24_0 at Deep Zoom level 13; it has 24×16 tiles/ });
  t.throws(() => dz.source({ level: 14, col: 0, row: 0 }), { message: /no Deep Zoom level 14; levels are 0–13/ });
});

test('the native grid passes stored tiles through at native levels, and only interior ones', async (t) => {
  const slide = await Slide.open(await slideFile);
  t.teardown(() => slide.close());
  const grid = DeepZoom.nativeGrid(slide);
  t.deepEqual(grid, { tileSize: 240, overlap: 0 });
  const dz = new DeepZoom(slide, grid!);
  t.deepEqual(dz.source({ level: 13, col: 3, row: 2 }).stored, { col: 3, row: 2 });
  t.deepEqual(dz.source({ level: 11, col: 1, row: 1 }).stored, { col: 1, row: 1 }, 'level 11 is stored level 1 (1500×1000)');
  t.is(dz.source({ level: 12, col: 1, row: 1 }).stored, undefined, 'level 12 has no stored counterpart');
  t.deepEqual(dz.source({ level: 13, col: 24, row: 0 }).stored, { col: 24, row: 0 }, '6000 = 25 × 240: the last column is whole');
  t.is(dz.source({ level: 13, col: 0, row: 16 }).stored, undefined, '4000 is not a multiple of 240: the last row is cropped');
  const { body, made } = await dz.tile({ level: 13, col: 3, row: 2 }, 'jpeg', 80);
  t.is(made, 'stored');
  t.deepEqual([body[0], body[1]], [0xff, 0xd8]);
  t.is((await dz.tile({ level: 13, col: 3, row: 2 }, 'png', 80)).made, 'rendered', 'other formats are rendered');
});

test('a stored level rounded down by a pixel serves its Deep Zoom level as it is with sameSizeLevels; OpenSlide\'s choice otherwise', async (t) => {
  // 6001×4003: the generator rounds levels down (1500×1000, 375×250), so their downsamples are a hair above 4 and 16.
  const file = (await makeSlide({ width: 6001, height: 4003, levels: 3, seed: 7, out: await out, name: 'rounded' })).svs;
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  t.true(slide.levels[1]!.downsample > 4 && slide.levels[2]!.downsample > 16);
  const grid = DeepZoom.nativeGrid(slide)!;
  const openslide = new DeepZoom(slide, grid);
  const sameSize = new DeepZoom(slide, grid, { sameSizeLevels: true });
  t.like(sameSize.levels[11], { width: 1501, height: 1001 });
  t.is(openslide.levels[11]!.slideLevel, 0, 'OpenSlide draws 1501×1001 from level 0 at a quarter size');
  t.is(openslide.levels[9]!.slideLevel, 1);
  t.is(sameSize.levels[11]!.slideLevel, 1, 'level 1 (1500×1000) is within a pixel');
  t.is(sameSize.levels[9]!.slideLevel, 2, 'level 2 (375×250) serves 376×251');
  sameSize.levels.forEach((level, i) => {
    if (i !== 11 && i !== 9) t.is(level.slideLevel, openslide.levels[i]!.slideLevel, `Deep Zoom level ${i} is unchanged`);
  });

  const interior = { level: 11, col: 2, row: 1 };
  t.deepEqual(sameSize.source(interior).stored, { col: 2, row: 1 });
  t.is(openslide.source(interior).stored, undefined);
  const passed = await sameSize.tile(interior, 'jpeg', 90);
  t.is(passed.made, 'stored');
  t.deepEqual(passed.body, await slide.readStoredJpeg(1, 2, 1), 'level 1\'s own tile, as stored');
  // The last column of 1501 has no stored pixels: 1500 − 6·240 = 60 stored columns stretched to 61.
  const edge = { level: 11, col: 6, row: 1 };
  t.like(sameSize.source(edge), { slideLevel: 1, x: 1440, width: 60, outWidth: 61, height: 240, outHeight: 240 });
  const stretched = await sameSize.tile(edge, 'png', 90);
  t.is(stretched.made, 'rendered');
  t.like(await sharp(stretched.body).metadata(), { width: 61, height: 240 });
});
