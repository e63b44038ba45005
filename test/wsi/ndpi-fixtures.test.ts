// Reads ../shared/fixtures/ndpi (two real NanoZoomer files) and asks OpenSlide (python3-openslide 3.4.1)
// for the same slides: geometry, properties and the macro must agree, regions must be identical, and
// Deep Zoom tiles agree to a high PSNR.
import { Slide } from '../../server/wsi/index.js';
import { readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { fixture, fixtureTest, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { crossCheckNdpi, type LevelRegion } from '../support/ndpi-crosscheck.js';
import { openslideProblem } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';

const SLIDES: FixtureName[] = ['ndpi/test3-DAPI.ndpi', 'ndpi/test3-TRITC.ndpi'];

// Level 0 is 3968×4864 with one restart interval per 8-pixel row of MCUs, handed out in 16-row tiles
// (level 3: 32-row tiles);
// levels 1–3 are stored, 4–6 are level 3 decoded at 1/2, 1/4 and 1/8.
const REGIONS: LevelRegion[] = [
  [0, 1000, 1000, 300, 200], // many intervals and tiles
  [0, 5, 13, 40, 6], // crosses an interval and a tile boundary (row 16), inside two intervals
  [0, 3800, 4850, 168, 14], // the bottom-right corner
  [0, 0, 4000, 3968, 40], // whole rows
  [1, 1900, 30, 84, 40],
  [3, 100, 130, 200, 20], // crosses the tile boundary at row 128
  [4, 10, 60, 200, 20], // a level decoded at 1/2, across its 16-row tiles
  [5, 0, 0, 124, 152],
  [6, 0, 0, 62, 76],
];

for (const name of SLIDES) {
  testNeeding([fixturesProblem(), openslideProblem], `${name}: levels, properties, macro, regions and Deep Zoom tiles agree with OpenSlide`, async (t) => {
    const agreement = await crossCheckNdpi(t, fixture(name), REGIONS);
    t.log(`${agreement.regions} regions, max difference ${agreement.maxRegionDifference}; ${agreement.tiles} tiles, min PSNR ${agreement.minTilePsnr.toFixed(1)} dB`);
  });
}

fixtureTest('NDPI: the 64-bit header is recognised and Hamamatsu properties are named as OpenSlide names them', async (t) => {
  const file = await RandomAccessFile.open(fixture('ndpi/test3-DAPI.ndpi'));
  t.teardown(() => file.close());
  const directories = await readDirectories(file);
  t.is(directories.length, 6, 'four levels, the macro and the slide map');
  const slide = await Slide.open(fixture('ndpi/test3-DAPI.ndpi'));
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'hamamatsu');
  t.like(slide.properties, {
    'hamamatsu.SourceLens': '40',
    'openslide.objective-power': '40',
    'hamamatsu.XOffsetFromSlideCentre': '12538720',
    'hamamatsu.YOffsetFromSlideCentre': '-96063',
    'hamamatsu.ZOffsetFromSlideCentre': '0',
    'hamamatsu.ScannerSerialNumber': '950291',
    'hamamatsu.NDP.S/N': '950291',
    'hamamatsu.Created': '2011/05/23',
    'openslide.mpp-x': '0.2281750559028887',
    'tiff.Make': 'Hamamatsu',
  });
  t.deepEqual(slide.mpp, { x: 10_000 / 43826, y: 10_000 / 43826 });
  t.is(slide.objectivePower, 40);
  t.deepEqual(slide.associatedImages, ['macro']);
});
