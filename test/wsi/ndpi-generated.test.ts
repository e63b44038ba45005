// NDPI files made by the project's generator at sizes the real fixtures do not reach (odd sizes,
// a width that is not a whole number of MCUs, several levels, a level wider than a JPEG frame
// header holds), read by the engine and by OpenSlide (python3-openslide): OpenSlide opening them
// as `hamamatsu` is the proof that they are real NDPI.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import sharp from 'sharp';
import { makeSlide as generate } from '../../server/wsi/generate/index.js';
import { Slide } from '../../server/wsi/index.js';
import { readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { crossCheckNdpi, maxDifference, type LevelRegion } from '../support/ndpi-crosscheck.js';
import { askOpenSlide, openslideTest } from '../support/openslide.js';
import { makeSlide } from '../support/slides.js';

async function generated(t: ExecutionContext, width: number, height: number, levels: number, restartInterval = 32): Promise<string> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ndpi-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const { svs } = await makeSlide({ width, height, levels, seed: width, out, format: 'ndpi', restartInterval });
  return svs;
}

/** A stored level's strip, decoded whole by sharp (libjpeg-turbo), where a frame header can hold it. */
async function wholeStrip(file: string, directory: number): Promise<{ width: number; height: number; data: Buffer }> {
  const handle = await RandomAccessFile.open(file);
  try {
    const dir = (await readDirectories(handle))[directory]!;
    const strip = await handle.read(dir.offsets[0]!, dir.byteCounts[0]!, 'strip');
    const { data, info } = await sharp(strip, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data };
  } finally {
    await handle.close();
  }
}

openslideTest('a generated 3008×1999 NDPI agrees with OpenSlide: levels, properties, macro, level-0 regions across intervals and tiles, Deep Zoom tiles', async (t) => {
  const file = await generated(t, 3008, 1999, 2);
  // Level 0: restart intervals of 64×8 pixels, tiles of 256×64. The other levels' downsamples are not
  // whole numbers (1999 rows), where OpenSlide's read_region draws at a sub-pixel offset: their
  // pixels are compared through the Deep Zoom tiles, and in the next test.
  const regions: LevelRegion[] = [
    [0, 60, 100, 300, 200],
    [0, 250, 250, 12, 12], // the corner of four tiles and of intervals
    [0, 2900, 1900, 108, 92], // near the bottom right, where OpenSlide still paints
  ];
  const agreement = await crossCheckNdpi(t, file, regions);
  t.log(`${agreement.regions} regions, max difference ${agreement.maxRegionDifference}; ${agreement.tiles} tiles, min PSNR ${agreement.minTilePsnr.toFixed(1)} dB`);
});

openslideTest('a generated 3072×2048 NDPI with three stored levels agrees with OpenSlide at every level, stored or decoded at 1/2, 1/4, 1/8', async (t) => {
  const file = await generated(t, 3072, 2048, 3);
  // Stored: 3072, 768 and 192 wide; the others are one of them at 1/2, 1/4 or 1/8.
  const regions: LevelRegion[] = [
    [0, 1000, 500, 300, 200],
    [1, 700, 400, 100, 50],
    [2, 700, 480, 52, 16],
    [3, 100, 0, 276, 248],
    [4, 0, 100, 192, 24],
    [5, 0, 0, 96, 64],
    [6, 0, 0, 48, 32],
  ];
  const agreement = await crossCheckNdpi(t, file, regions);
  t.log(`${agreement.regions} regions, max difference ${agreement.maxRegionDifference}; ${agreement.tiles} tiles, min PSNR ${agreement.minTilePsnr.toFixed(1)} dB`);
});

openslideTest('a generated NDPI 69632 pixels wide (past a JPEG frame header) agrees with OpenSlide', async (t) => {
  const file = await generated(t, 69_632, 304, 2);
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  t.is(slide.width, 69_632);
  const regions: LevelRegion[] = [
    [0, 65_400, 100, 300, 80], // across pixel 65,535
    [0, 69_400, 0, 232, 304],
    [1, 34_500, 50, 200, 40],
  ];
  const agreement = await crossCheckNdpi(t, file, regions);
  t.log(`${agreement.regions} regions, max difference ${agreement.maxRegionDifference}; ${agreement.tiles} tiles, min PSNR ${agreement.minTilePsnr.toFixed(1)} dB`);
});

openslideTest('a generated NDPI with restart intervals 32760 pixels wide (4095 MCUs, two wider than a JPEG decoder takes) is read a block of one interval, as OpenSlide and libjpeg-turbo read it', async (t) => {
  const file = await generated(t, 32_760, 256, 2, 4095);
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  t.is(slide.levels[0]!.tileWidth, 32_760, 'a block of one interval, not two');
  const whole = await wholeStrip(file, 0);
  t.is(maxDifference((await slide.readRegion(0, 0, 0, 32_760, 256)).data, whole.data), 0, 'level 0 whole, as its strip decoded in one piece');
  const regions: [number, number, number, number, number][] = [
    [0, 0, 0, 400, 256],
    [0, 32_200, 60, 560, 150], // the right end of the interval
  ];
  const reference = await askOpenSlide(file, { regions });
  t.is(reference.vendor, 'hamamatsu');
  t.is(reference.properties['openslide.level[0].tile-width'], '32760');
  for (const [i, [level, x, y, w, h]] of regions.entries()) {
    t.is(maxDifference((await slide.readRegion(level, x, y, w, h)).data, await readFile(reference.regions[i]!.file)), 0, `region ${i} as OpenSlide reads it`);
  }
});

openslideTest('a generated NDPI 3001×1999 (not a whole number of MCUs) is read whole, identical to its strips decoded in one piece; OpenSlide opens it alike', async (t) => {
  const file = await generated(t, 3001, 1999, 2, 47);
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  const reference = await askOpenSlide(file, {});
  t.is(reference.vendor, 'hamamatsu');
  t.deepEqual(
    slide.levels.map((l) => [l.width, l.height]),
    reference.levels.map(([w, h]) => [w, h]),
  );
  for (const [key, value] of Object.entries(reference.properties)) if (key !== 'openslide.quickhash-1') t.is(slide.properties[key], value, key);
  // OpenSlide 3.4.1 counts the intervals of a row rounding down and so misplaces every row here;
  // the strips decoded whole by libjpeg-turbo are the reference instead.
  for (const [directory, level] of [
    [0, 0],
    [1, slide.levels.findIndex((l) => l.width === 750)],
  ] as const) {
    const whole = await wholeStrip(file, directory);
    const ours = await slide.readRegion(level, 0, 0, whole.width, whole.height);
    t.is(maxDifference(ours.data, whole.data), 0, `level ${level}, the last partial interval and MCU included`);
  }
});

test('the generator refuses options that make no NDPI', async (t) => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ndpi-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await t.throwsAsync(makeSlide({ width: 512, height: 512, out, format: 'ndpi', restartInterval: 0 }), { message: /restartInterval must be a whole number/ });
  await t.throwsAsync(makeSlide({ width: 512, height: 512, out, format: 'ndpi', bigtiff: true }), { message: /bigtiff does not apply to NDPI/ });
  await t.throwsAsync(makeSlide({ width: 512, height: 512, out, format: 'tiff' as 'ndpi' }), { message: /format must be one of svs, ndpi/ });
});

openslideTest('an NDPI past 4 GiB (its data after a 4 GiB hole): the 64-bit offsets are read as OpenSlide reads them', async (t) => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ndpi-64-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  // Straight from the generator, not through the test cache: a copy of the sparse file would not be sparse.
  const { svs: file } = await generate({ width: 2048, height: 1536, levels: 2, seed: 9, out, format: 'ndpi', ndpiDataOffset: 2 ** 32 + 12_345 });
  t.true((await stat(file)).size > 2 ** 32);
  const handle = await RandomAccessFile.open(file);
  const directories = await readDirectories(handle).finally(() => handle.close());
  t.true(directories[0]!.offset > 2 ** 32, 'the first directory lies past 4 GiB');
  t.is(directories[0]!.offsets[0], 2 ** 32 + 12_345, 'the strip offset has its high bits back');
  const agreement = await crossCheckNdpi(t, file, [
    [0, 1000, 700, 300, 200],
    [1, 500, 300, 100, 100],
    [2, 0, 0, 512, 384],
  ]);
  t.log(`${agreement.regions} regions, max difference ${agreement.maxRegionDifference}; ${agreement.tiles} tiles, min PSNR ${agreement.minTilePsnr.toFixed(1)} dB`);
});
