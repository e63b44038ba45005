// Reads ../shared/fixtures: every slide opens with the properties and associated images
// recorded in ../shared/fixtures/SOURCES.md.
import test from 'ava';
import sharp from 'sharp';
import { Slide, WsiError } from '../../server/wsi/index.js';
import { fixture, fixtureTest } from '../support/fixtures.js';

const near = (a: number, b: number, tolerance = 1e-3) => Math.abs(a - b) <= tolerance;

fixtureTest('CMU-1-Small-Region.svs: Aperio, one level, label and macro, MPP and magnification', async (t) => {
  const slide = await Slide.open(fixture('CMU-1-Small-Region.svs'));
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'aperio');
  t.deepEqual(slide.levels.map((l) => [l.width, l.height, l.tileWidth, l.tileHeight]), [[2220, 2967, 240, 240]]);
  t.deepEqual(slide.associatedImages, ['label', 'macro', 'thumbnail']);
  t.deepEqual(slide.associatedSize('label'), { width: 387, height: 463 });
  t.deepEqual(slide.associatedSize('macro'), { width: 1280, height: 431 });
  t.deepEqual(slide.associatedSize('thumbnail'), { width: 574, height: 768 });
  t.deepEqual(slide.mpp, { x: 0.499, y: 0.499 });
  t.is(slide.objectivePower, 20);
  t.is(slide.properties['aperio.Filename'], 'CMU-1');
  t.is(slide.properties['aperio.ScanScope ID'], 'CPAPERIOCS');
  t.is(slide.properties['aperio.OriginalWidth'], '46000', 'a repeated key keeps its last value');
  t.is(slide.properties['aperio.Originalheight'], '33014');
  t.regex(slide.properties['openslide.comment'] ?? '', /^Aperio Image Library v11\.2\.1/);
  const label = await slide.readAssociated('label');
  t.is(label.data.length, 387 * 463 * 3);
});

fixtureTest('tcga-cr-7395-01a-01-ts1.svs: JPEG 2000 levels decode, the thumbnail sits between levels, no MPP', async (t) => {
  const slide = await Slide.open(fixture('tcga-cr-7395-01a-01-ts1.svs'));
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'aperio');
  t.deepEqual(slide.levels.map((l) => [l.width, l.height, l.tileWidth, l.jpeg]), [[4443, 3567, 256, false], [2221, 1783, 256, false]]);
  t.true(near(slide.levels[1]!.downsample, 2.0005, 1e-4));
  t.deepEqual(slide.associatedImages, ['thumbnail']);
  t.deepEqual(slide.associatedSize('thumbnail'), { width: 956, height: 768 });
  t.is(slide.mpp, undefined);
  t.is(slide.objectivePower, undefined);
  const region = await slide.readRegion(1, 1000, 800, 64, 64);
  const mean = region.data.reduce((a, b) => a + b, 0) / region.data.length;
  t.true(mean > 40 && mean < 250, `decoded tissue, mean ${mean}`);
});

fixtureTest('small.svs: an image smaller than its one tile', async (t) => {
  const slide = await Slide.open(fixture('small.svs'));
  t.teardown(() => slide.close());
  t.deepEqual(slide.levels.map((l) => [l.width, l.height, l.tileWidth]), [[16, 16, 64]]);
  t.deepEqual(slide.associatedImages, ['thumbnail']);
  t.deepEqual(slide.mpp, { x: 0.499, y: 0.499 });
  const region = await slide.readRegion(0, 0, 0, 16, 16);
  t.is(region.data.length, 16 * 16 * 3);
});

fixtureTest('unreadable.svs: opens with its properties; pixel reads fail with the decoder reason, every time', async (t) => {
  const slide = await Slide.open(fixture('unreadable.svs'));
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'aperio');
  t.is(slide.properties['openslide.mpp-x'], '0.499');
  const first = await t.throwsAsync(slide.readRegion(0, 0, 0, 16, 16), { instanceOf: WsiError });
  t.is(first?.code, 'decode_failed');
  t.regex(first?.message ?? '', /Bogus marker length/);
  const again = await t.throwsAsync(slide.readTile(0, 0, 0), { instanceOf: WsiError });
  t.is(again, first, 'the first error is sticky');
});

fixtureTest('CropBreastSlide.tiff: generic tiled TIFF, six floor-halved levels, no associated images or MPP', async (t) => {
  const slide = await Slide.open(fixture('CropBreastSlide.tiff'));
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'generic-tiff');
  t.deepEqual(slide.levels.map((l) => [l.width, l.height]), [[2033, 1525], [1016, 762], [508, 381], [254, 190], [127, 95], [63, 47]]);
  const expected = [1, 2.0011, 4.0023, 8.0151, 16.0303, 32.3583];
  slide.levels.forEach((l, i) => t.true(near(l.downsample, expected[i]!, 1e-4), `level ${i}: ${l.downsample}`));
  t.deepEqual(slide.associatedImages, []);
  t.is(slide.mpp, undefined);
  t.is(slide.properties['tiff.ResolutionUnit'], 'inch');
});

fixtureTest('boxes.tiff: Deflate tiles decode to the same pixels libvips reads, at every level', async (t) => {
  const slide = await Slide.open(fixture('boxes.tiff'));
  t.teardown(() => slide.close());
  t.deepEqual(slide.levels.map((l) => [l.width, l.height]), [[300, 250], [150, 125], [75, 62], [37, 31]]);
  t.deepEqual(slide.levels.map((l) => Math.round(l.downsample * 1e4) / 1e4), [1, 2, 4.0161, 8.0863]);
  for (const [i, level] of slide.levels.entries()) {
    const mine = await slide.readRegion(i, 0, 0, level.width, level.height);
    const page = [0, 1, 2, 3][i]!;
    const reference = await sharp(fixture('boxes.tiff'), { page }).removeAlpha().raw().toBuffer();
    t.true(mine.data.equals(reference), `level ${i}`);
  }
});

fixtureTest('unopenable.tiff: refused at open with the compression named', async (t) => {
  const error = await t.throwsAsync(Slide.open(fixture('unopenable.tiff')), { instanceOf: WsiError });
  t.is(error?.code, 'unsupported_compression');
  t.regex(error?.message ?? '', /unsupported compression 52479/);
});

fixtureTest('generated/aperio-synthetic-6000x4000.svs: three levels at 1/4/16, label, macro, fake identifying fields', async (t) => {
  const slide = await Slide.open(fixture('generated/aperio-synthetic-6000x4000.svs'));
  t.teardown(() => slide.close());
  t.deepEqual(slide.levels.map((l) => [l.width, l.height, l.downsample]), [[6000, 4000, 1], [1500, 1000, 4], [375, 250, 16]]);
  t.deepEqual(slide.associatedImages, ['label', 'macro', 'thumbnail']);
  t.like(slide.properties, {
    'aperio.Filename': 'SYNTH-0001',
    'aperio.Date': '01/02/24',
    'aperio.Time': '10:11:12',
    'aperio.User': '0b1e2c3d-0000-4000-8000-00000000beef',
    'aperio.ScanScope ID': 'SS9999',
    'openslide.objective-power': '20',
  });
  t.is(slide.bestLevelForDownsample(3.9), 0);
  t.is(slide.bestLevelForDownsample(4), 1);
  t.is(slide.bestLevelForDownsample(1000), 2);
});

test('a missing file is not_found', async (t) => {
  const error = await t.throwsAsync(Slide.open('/nonexistent/slide.svs'), { instanceOf: WsiError });
  t.is(error?.code, 'not_found');
});
