// Reads ../shared/fixtures/dicom: every DICOM whole-slide fixture opens with the geometry its sources record,
// and its decoded pixels match pydicom's decoding of the same frames.
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDicomSeries, Slide } from '../../server/wsi/index.js';
import { fixture, fixturesDir, fixtureTest, FIXTURES, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { psnr } from '../support/openslide.js';
import { askPydicom, pydicomTest } from '../support/pydicom.js';
import { testNeeding } from '../support/requirements.js';

interface Case {
  /** The slide as opened: a file, or a folder of instances. */
  slide: string;
  /** The instance files of each level, largest first. */
  levels: { file: FixtureName; size: [number, number] }[];
  tile: number;
  associated: Partial<Record<'label' | 'macro' | 'thumbnail', { file: FixtureName; size: [number, number] }>>;
  syntax: string;
  photometric: string;
  /** Stored JPEG tiles sent as they are (colour JPEG, every tile present). */
  passthrough: boolean;
  /** Microns per pixel, x then y. */
  mpp: [number, number];
  objectivePower?: number;
  opticalPaths: number;
  /** Largest difference of one sample from pydicom's decoding (JPEG: colour conversion rounding). */
  tolerance: number;
}

const JPEG = '1.2.840.10008.1.2.4.50';
const J2K = '1.2.840.10008.1.2.4.90';
const EXPLICIT = '1.2.840.10008.1.2.1';
const WG26 = [5, 6, 7, 8, 9, 10, 11, 12].map((n, i) => ({ file: `dicom/wg26-bpaec/${n}_0` as FixtureName, size: [3072 >> i, 2304 >> i] as [number, number] }));

/** What ../shared/fixtures/SOURCES.md records of each fixture, and what reading it must give. */
const CASES: Case[] = [
  {
    slide: 'dicom/wsi2dcm/jpeg.dicom',
    levels: [{ file: 'dicom/wsi2dcm/jpeg.dicom', size: [957, 715] }],
    tile: 256,
    associated: {},
    syntax: JPEG,
    photometric: 'YBR_FULL_422',
    passthrough: true,
    mpp: [16.783, 16.783],
    opticalPaths: 1,
    tolerance: 2,
  },
  {
    slide: 'dicom/wsi2dcm/jpeg2000.dicom',
    levels: [{ file: 'dicom/wsi2dcm/jpeg2000.dicom', size: [957, 715] }],
    tile: 256,
    associated: {},
    syntax: J2K,
    photometric: 'RGB',
    passthrough: false,
    mpp: [16.783, 16.783],
    opticalPaths: 1,
    tolerance: 0,
  },
  {
    slide: 'dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm',
    levels: [{ file: 'dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm', size: [1152, 700] }],
    tile: 256,
    associated: {},
    syntax: JPEG,
    photometric: 'YBR_FULL_422',
    passthrough: true,
    mpp: [28.969, 28.968],
    opticalPaths: 1,
    tolerance: 2,
  },
  {
    slide: 'dicom/google-pipeline/multi_frame_jpeg2000_camelyon_challenge_image.dcm',
    levels: [{ file: 'dicom/google-pipeline/multi_frame_jpeg2000_camelyon_challenge_image.dcm', size: [1696, 812] }],
    tile: 256,
    associated: {},
    syntax: J2K,
    photometric: 'RGB',
    passthrough: false,
    mpp: [28.969, 28.968],
    opticalPaths: 1,
    tolerance: 0,
  },
  {
    slide: 'dicom/pixelmed',
    levels: [{ file: 'dicom/pixelmed/boxes_0.dcm', size: [16, 16] }],
    tile: 64,
    associated: { thumbnail: { file: 'dicom/pixelmed/boxes_1.dcm', size: [16, 16] } },
    syntax: JPEG,
    photometric: 'RGB',
    passthrough: true,
    mpp: [0.499, 0.499],
    objectivePower: 20,
    opticalPaths: 1,
    tolerance: 0,
  },
  {
    slide: 'dicom/highdicom/sm_image.dcm',
    levels: [{ file: 'dicom/highdicom/sm_image.dcm', size: [50, 50] }],
    tile: 10,
    associated: {},
    syntax: EXPLICIT,
    photometric: 'RGB',
    passthrough: false,
    mpp: [0.499, 0.499],
    opticalPaths: 1,
    tolerance: 0,
  },
  {
    slide: 'dicom/highdicom/sm_image_grayscale.dcm',
    levels: [{ file: 'dicom/highdicom/sm_image_grayscale.dcm', size: [50, 50] }],
    tile: 10,
    associated: {},
    syntax: EXPLICIT,
    photometric: 'MONOCHROME2',
    passthrough: false,
    mpp: [0.499, 0.499],
    opticalPaths: 1,
    tolerance: 0,
  },
  {
    slide: 'dicom/wg26-bpaec',
    levels: WG26,
    tile: 1024,
    associated: { label: { file: 'dicom/wg26-bpaec/2', size: [579, 441] }, macro: { file: 'dicom/wg26-bpaec/1_Map', size: [233, 500] } },
    syntax: JPEG,
    photometric: 'MONOCHROME2',
    passthrough: false,
    mpp: [1.29, 1.29],
    opticalPaths: 3,
    tolerance: 0,
  },
];

async function pinned(names: FixtureName[]): Promise<void> {
  for (const name of names) {
    const digest = createHash('sha256').update(await readFile(fixture(name))).digest('hex');
    if (digest !== FIXTURES[name]) throw new Error(`${name} is not the pinned fixture (sha256 ${digest})`);
  }
}

const filesOf = (c: Case) => [...c.levels.map((l) => l.file), ...Object.values(c.associated).map((a) => a.file)];

for (const c of CASES) {
  fixtureTest(`${c.slide} opens with the recorded levels, tile size, associated images and properties`, async (t) => {
    await pinned(filesOf(c));
    const slide = await Slide.open(path.join(fixturesDir, c.slide));
    t.teardown(() => slide.close());
    t.is(slide.vendor, 'dicom');
    t.deepEqual(
      slide.levels.map((l) => [l.width, l.height]),
      c.levels.map((l) => l.size),
    );
    for (const level of slide.levels) t.like(level, { tileWidth: c.tile, tileHeight: c.tile, jpeg: c.passthrough });
    t.deepEqual(slide.associatedImages, Object.keys(c.associated).sort());
    for (const [name, { size }] of Object.entries(c.associated)) t.deepEqual(slide.associatedSize(name as 'label'), { width: size[0], height: size[1] });
    t.like(slide.properties, {
      'openslide.vendor': 'dicom',
      'openslide.level-count': String(c.levels.length),
      'dicom.photometric-interpretation': c.photometric,
      'dicom.optical-path-count': String(c.opticalPaths),
    });
    t.true(slide.properties['dicom.transfer-syntax']!.startsWith(`${c.syntax} (`));
    t.deepEqual(slide.mpp, { x: c.mpp[0], y: c.mpp[1] });
    t.is(slide.objectivePower, c.objectivePower);
    for (const key of Object.keys(slide.properties)) t.false(/manufacturer|model|uid|serial|patient/i.test(key), `${key} is identifying and not a property`);
  });

  pydicomTest([fixturesProblem()], `${c.slide}: every tile of every level, and the associated images, match pydicom's decoding`, async (t) => {
    const slide = await Slide.open(path.join(fixturesDir, c.slide));
    t.teardown(() => slide.close());
    let worst = 0;
    let samples = 0;
    let differing = 0;
    const compare = (ours: Buffer, theirs: Buffer, what: string) => {
      t.is(ours.length, theirs.length, what);
      let max = 0;
      for (let i = 0; i < ours.length; i++) {
        const d = Math.abs(ours[i]! - theirs[i]!);
        if (d > 0) differing++;
        if (d > max) max = d;
      }
      samples += ours.length;
      worst = Math.max(worst, max);
      t.true(max <= c.tolerance, `${what}: a sample differs by ${max} (tolerance ${c.tolerance})`);
    };
    for (const [i, level] of slide.levels.entries()) {
      // TILED_FULL: the first optical path's frames come first, row by row.
      const frames = Array.from({ length: level.tilesAcross * level.tilesDown }, (_, f) => f);
      const reference = await askPydicom(fixture(c.levels[i]!.file), frames);
      for (const f of frames) {
        const tile = await slide.readTile(i, f % level.tilesAcross, Math.floor(f / level.tilesAcross));
        compare(tile.data, reference.pixels[f]!, `level ${i}, frame ${f + 1}`);
      }
    }
    for (const [name, { file, size }] of Object.entries(c.associated)) {
      const ours = await slide.readAssociated(name as 'label');
      const [theirs] = (await askPydicom(fixture(file), [0])).pixels;
      // A single frame the size of the image: compare the frame's pixels that lie inside the image.
      const reference = Buffer.alloc(size[0] * size[1] * 3);
      const frameWidth = theirs!.length / 3 / size[1] >= size[0] ? Math.round(theirs!.length / 3 / Math.max(size[1], 1)) : size[0];
      for (let y = 0; y < size[1]; y++) theirs!.copy(reference, y * size[0] * 3, y * frameWidth * 3, y * frameWidth * 3 + size[0] * 3);
      compare(ours.data, reference, name);
    }
    t.log(`${c.slide}: ${samples} samples, ${differing} differ from pydicom's, by at most ${worst}`);
  });
}

fixtureTest('the 3DHISTECH fluorescence series shows its first optical path of three, and says so', async (t) => {
  const slide = await Slide.open(path.join(fixturesDir, 'dicom/wg26-bpaec'));
  t.teardown(() => slide.close());
  t.like(slide.properties, { 'dicom.optical-path-count': '3', 'dicom.optical-path': '0' });
  t.regex(slide.properties['dicom.optical-path-choice'] ?? '', /first of 3 optical paths/);
  // The other paths' frames (10–18, 19–27 of the finest level) are different images: the tile shown is frame 1's.
  const series = await openDicomSeries(path.join(fixturesDir, 'dicom/wg26-bpaec'));
  t.teardown(() => series.close());
  const level = series.levels[0]!;
  const shown = await level.frames.read(level.grid.frameAt(1, 1));
  t.true(shown.equals(await level.frames.read(4)));
  t.false(shown.equals(await level.frames.read(4 + 9)));
  t.false(shown.equals(await level.frames.read(4 + 18)));
  // Identifying attributes are kept apart from the properties, for the ingest's de-identification to decide about.
  t.like(series.identifying, { Manufacturer: '3DHISTECH Kft.' });
  t.truthy(series.identifying.SeriesInstanceUID);
  t.false(Object.values(slide.properties).includes('3DHISTECH Kft.'));
});

pydicomTest([fixturesProblem()], 'JPEG-LS frames decode to the pixels of the same image stored uncompressed (pydicom)', async (t) => {
  const slide = await Slide.open(fixture('dicom/highdicom/sm_image_jpegls.dcm'));
  t.teardown(() => slide.close());
  t.like(slide.properties, { 'dicom.transfer-syntax': '1.2.840.10008.1.2.4.80 (JPEG-LS Lossless)' });
  // pydicom without a JPEG-LS plugin cannot decode these frames: the lossless reference is its decoding of the uncompressed copy.
  const reference = await askPydicom(fixture('dicom/highdicom/sm_image.dcm'), Array.from({ length: 25 }, (_, i) => i));
  for (let f = 0; f < 25; f++) t.true((await slide.readTile(0, f % 5, Math.floor(f / 5))).data.equals(reference.pixels[f]!), `frame ${f + 1}`);
});

fixtureTest('the same slide stored as JPEG and as JPEG 2000 (wsi2dcm) decodes to the same pixels within JPEG tolerance', async (t) => {
  const jpeg = await Slide.open(fixture('dicom/wsi2dcm/jpeg.dicom'));
  const j2k = await Slide.open(fixture('dicom/wsi2dcm/jpeg2000.dicom'));
  t.teardown(() => Promise.all([jpeg.close(), j2k.close()]));
  const a = await jpeg.readRegion(0, 0, 0, 957, 715);
  const b = await j2k.readRegion(0, 0, 0, 957, 715);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  const db = psnr(a.data, b.data);
  t.log(`JPEG vs JPEG 2000: PSNR ${db.toFixed(1)} dB, mean absolute difference ${(sum / a.data.length).toFixed(2)}`);
  t.true(db >= 30, `PSNR ${db} dB`);
});

// Serial: it counts the process's open files, which concurrent tests would change.
testNeeding([fixturesProblem()], 'a DICOM series holds one file open per instance while open, and none once closed or refused', async (t) => {
  const open = async () => (await readdir('/proc/self/fd')).length;
  const before = await open();
  const slide = await Slide.open(path.join(fixturesDir, 'dicom/wg26-bpaec'));
  t.is((await open()) - before, 10, 'eight levels, the label and the localizer');
  await slide.close();
  t.is(await open(), before);
  // A refusal after the instances were opened (here: two series in one folder) closes them all too.
  const mixed = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-mixed-'));
  t.teardown(() => rm(mixed, { recursive: true, force: true }));
  await copyFile(fixture('dicom/wg26-bpaec/12_0'), path.join(mixed, 'a'));
  await copyFile(fixture('dicom/highdicom/sm_image.dcm'), path.join(mixed, 'b'));
  await t.throwsAsync(Slide.open(mixed), { message: /mixes instances of 2 series/ });
  t.is(await open(), before);
}, { serial: true });
