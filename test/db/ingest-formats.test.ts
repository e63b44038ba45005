// Ingest by format: a file is recognised by its content, never its extension; NDPI is published as a
// tiled TIFF whose tiles are blocks of the original's restart intervals (pixels compared with OpenSlide's
// reading of the original); a format de-identification has no rules for is quarantined.
import { copyFile, open, readFile, readdir, rename, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import sharp from 'sharp';
import type { PublishedLevel } from '../../server/ingest/deidentify/deidentify.js';
import type { SlideTruth } from '../../server/wsi/generate/index.js';
import { Slide } from '../../server/wsi/index.js';
import { readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { testDialect } from '../support/database.js';
import { writeWsi } from '../support/dicom-writer.js';
import { fixture, fixturesProblem } from '../support/fixtures.js';
import { ingestBench, type IngestBench } from '../support/ingest.js';
import { askOpenSlide, openslideProblem, psnr } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';
import { makeSlide } from '../support/slides.js';

const GOOD_ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

async function writeSheet(dir: string, files: string[]): Promise<void> {
  await writeFile(path.join(dir, 'metadata.csv'), stringify(files.map((file) => ({ file, ...GOOD_ROW })), { header: true }));
}

async function ingestOne(bench: IngestBench, file: string) {
  await writeSheet(bench.inbox, [file]);
  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  if (results.length !== 1) throw new Error(`${results.length} results`);
  return results[0]!;
}

/** An NDPI from the generator, under `name` in the bench's inbox, with its ground truth. */
async function ndpi(bench: IngestBench, name: string, width: number, height: number, levels?: number): Promise<{ file: string; truth: SlideTruth }> {
  const made = await makeSlide({ format: 'ndpi', width, height, levels, seed: width + height, out: bench.inbox, name });
  return { file: made.svs, truth: JSON.parse(await readFile(made.truth, 'utf8')) as SlideTruth };
}

/** Unlink directory `index` of an NDPI from the chain (NDPI's next-directory offsets are 8 bytes): a level the scanner did not store. */
async function dropDirectory(file: string, index: number): Promise<void> {
  const handle = await RandomAccessFile.open(file);
  const directories = await readDirectories(handle);
  await handle.close();
  const fd = await open(file, 'r+');
  try {
    const nextField = async (offset: number) => {
      const count = Buffer.alloc(2);
      await fd.read(count, 0, 2, offset);
      return offset + 2 + 12 * count.readUInt16LE(0);
    };
    const next = Buffer.alloc(8);
    await fd.read(next, 0, 8, await nextField(directories[index]!.offset));
    await fd.write(next, 0, 8, await nextField(directories[index - 1]!.offset));
  } finally {
    await fd.close();
  }
}

test(`a DICOM file renamed to .tif is de-identified as the DICOM it is and published as a DICOM series, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  await writeWsi(path.join(bench.inbox, 'disguised.tif'), {
    transferSyntax: '1.2.840.10008.1.2.1',
    width: 512,
    height: 512,
    tile: 256,
    frames: 4,
    pixels: { native: Buffer.alloc(4 * 256 * 256 * 3, 200) },
  });
  const result = await ingestOne(bench, 'disguised.tif');
  t.is(result.outcome, 'published', result.reason ?? '');
  const folder = path.join(bench.config.paths.slides, result.name!);
  t.deepEqual(await readdir(folder), ['level-0.dcm'], 'one instance per level, no TIFF');
  const slide = await Slide.open(folder);
  try {
    const region = await slide.readRegion(0, 0, 0, 512, 512);
    t.is(region.data.length, 512 * 512 * 3);
    t.true(region.data.every((value) => value === 200), 'every sample is the original value');
  } finally {
    await slide.close();
  }
  t.is(await bench.repository.slideCount(), 1);
});

test(`an NDPI renamed to .tif is de-identified by the NDPI rules, not rewritten as a TIFF with Hamamatsu's tags, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const { file, truth } = await ndpi(bench, 'disguised', 2048, 1536);
  await rename(file, path.join(bench.inbox, 'disguised.tif'));
  const result = await ingestOne(bench, 'disguised.tif');
  t.is(result.outcome, 'published', result.reason ?? '');
  const bytes = await readFile(path.join(bench.config.paths.slides, `${result.name}.tif`));
  for (const [key, value] of Object.entries(truth.ndpi!)) t.false(bytes.includes(Buffer.from(value, 'latin1')), `the original's ${key} is gone`);
  t.true(result.report.directories!.some((d) => d.action === 're-tiled'));
});

testNeeding([openslideProblem], `an NDPI is published as a tiled TIFF of its restart intervals, pixels identical to OpenSlide's reading of the original, its identifiers gone, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  // Level 0: 300 MCUs a row, restart intervals of 30 MCUs (240 pixels): re-tiled into 240×240 tiles.
  // Level 1 (600 wide): intervals of 25 MCUs (200 pixels), not a multiple of 16: two side by side in 400×400
  // tiles, the second tile of a row with its third interval and a repeat of it.
  const { file, truth } = await ndpi(bench, 'case-ndpi', 2400, 1800);
  const result = await ingestOne(bench, path.basename(file));
  t.is(result.outcome, 'published', result.reason ?? '');
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);

  const bytes = await readFile(published);
  for (const [key, value] of Object.entries(truth.ndpi!)) t.false(bytes.includes(Buffer.from(value, 'latin1')), `the original's ${key} is gone`);
  t.false(bytes.includes(Buffer.from('case-ndpi')), 'the original file name is gone');
  const handle = await RandomAccessFile.open(published);
  const directories = await readDirectories(handle);
  await handle.close();
  t.is(directories.length, 2, 'the two levels, no macro');
  for (const d of directories) t.deepEqual([...d.tags.keys()].filter((tag) => tag >= 65000 || tag === 306 || tag === 271 || tag === 305), [], 'no Hamamatsu tag, DateTime, Make or Software');

  const levels = result.report.levels as PublishedLevel[];
  t.deepEqual(
    levels.map((l) => `${l.width}×${l.height} ${l.tileWidth}×${l.tileHeight} ${l.how}`),
    ['2400×1800 240×240 re-tiled', '600×450 400×400 re-tiled'],
  );
  t.is(levels[0]!.note, null);
  t.is(levels[1]!.note, '2 restart intervals of 200×8 pixels side by side per tile');
  t.deepEqual(result.report.directories!.map((d) => `${d.role}:${d.action}`), ['level:re-tiled', 'level:re-tiled', 'macro:removed']);
  t.true(result.report.directories![0]!.droppedTags.includes(65442), 'the report lists the serial number tag as dropped');
  t.true(result.report.checks!.every((c) => c.passed));
  t.is(result.report.originalFormat, 'hamamatsu');
  const scan = result.report.checks!.find((c) => c.name === 'no identifying value anywhere in the file')!;
  t.regex(scan.detail, /searched \d+ bytes for \d+ values/);

  const row = await bench.database.db.knex('slides').where({ id: result.slideId }).first();
  t.like(row, { width: 2400, height: 1800, level_count: 2, objective_power: 20 });
  t.true(Math.abs(row.mpp_x - truth.mpp) < 1e-4, `MPP carried over (${row.mpp_x})`);

  // Pixels: OpenSlide's reads of the original NDPI, OpenSlide's generic-tiff reads of the published file, and the engine's.
  const regions: [number, number, number, number, number][] = [
    [0, 0, 0, 512, 300],
    [0, 1100, 700, 700, 500], // across tiles and restart intervals
    [0, 2000, 1500, 300, 240],
  ];
  const original = await askOpenSlide(file, { regions });
  const reread = await askOpenSlide(published, { regions });
  t.is(reread.vendor, 'generic-tiff');
  // OpenSlide 3.4.1 gives a generic TIFF no openslide.mpp-x; the resolution tags hold it, in pixels per centimetre.
  t.is(reread.properties['tiff.ResolutionUnit'], 'centimeter');
  t.true(Math.abs(10_000 / Number(reread.properties['tiff.XResolution']) - truth.mpp) < 1e-4, 'MPP in the resolution tags');
  const slide = await Slide.open(published);
  t.teardown(() => slide.close());
  let compared = 0;
  for (const [i, [level, x, y, w, h]] of regions.entries()) {
    const a = await readFile(original.regions[i]!.file);
    const b = await readFile(reread.regions[i]!.file);
    const engine = (await slide.readRegion(level, x, y, w, h)).data;
    t.true(a.equals(b), `region ${i}: OpenSlide reads the published TIFF exactly as the original NDPI`);
    t.true(a.equals(engine), `region ${i}: the engine reads the published TIFF exactly as OpenSlide reads the original`);
    compared += w * h;
  }
  // Level 1: OpenSlide's level 2 of the original is the stored 600-pixel level (it paints 56 whole MCU rows of its 56.25).
  const low = await askOpenSlide(file, { regions: [[2, 0, 0, 600, 448]] });
  const lowReread = await askOpenSlide(published, { regions: [[1, 0, 0, 600, 448]] });
  const lowOriginal = await readFile(low.regions[0]!.file);
  t.true(lowOriginal.equals(await readFile(lowReread.regions[0]!.file)), 'level 1: OpenSlide reads the published TIFF exactly as the original NDPI');
  t.true(lowOriginal.equals((await slide.readRegion(1, 0, 0, 600, 448)).data), 'level 1: the engine reads the published TIFF exactly as OpenSlide reads the original');
  // The whole level, with its last partial MCU row, as the engine reads the original.
  const before = await Slide.open(file);
  t.teardown(() => before.close());
  const stored = before.levels.findIndex((l) => l.width === 600);
  t.true((await before.readRegion(stored, 0, 0, 600, 450)).data.equals((await slide.readRegion(1, 0, 0, 600, 450)).data), 'level 1 whole: the same pixels as the engine reads from the original');
  t.log(`${compared + 600 * 448} pixels identical three ways`);
});

testNeeding([openslideProblem], `an NDPI with restart intervals one MCU wide is re-tiled 32 intervals a tile, edges included, every pixel as decoded from the original, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  // 313 MCUs a row at level 0 and 79 at level 1, both prime: restart intervals of one MCU (8×8 pixels). The rows end in
  // a partial MCU (2500 of 2504 pixels, 625 of 632), and the last tile of a row holds 25 (level 0) or 15 (level 1)
  // intervals and repeats of the last.
  const { file } = await ndpi(bench, 'narrow', 2500, 1875);
  const result = await ingestOne(bench, path.basename(file));
  t.is(result.outcome, 'published', result.reason ?? '');
  const levels = result.report.levels as PublishedLevel[];
  t.deepEqual(
    levels.map((l) => `${l.width}×${l.height} ${l.tileWidth}×${l.tileHeight} ${l.how}: ${l.note}`),
    ['2500×1875 256×256 re-tiled: 32 restart intervals of 8×8 pixels side by side per tile', '625×468 256×256 re-tiled: 32 restart intervals of 8×8 pixels side by side per tile'],
  );
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  const after = await Slide.open(published);
  t.teardown(() => after.close());
  t.deepEqual(after.levels.map((l) => [l.width, l.height]), [[2500, 1875], [625, 468]]);
  const handle = await RandomAccessFile.open(published);
  const directories = await readDirectories(handle);
  await handle.close();
  t.deepEqual(directories.map((d) => [d.tilesAcross, d.tilesDown]), [[10, 8], [3, 2]]);

  // The reference: each stored strip decoded in one piece by libjpeg-turbo (sharp), partial MCUs included. (OpenSlide
  // 3.4.1 counts the intervals of a row rounding down and so misplaces rows of the original here.) The published TIFF
  // read whole by OpenSlide and by the engine, and the original by the engine.
  const original = await RandomAccessFile.open(file);
  const stored = (await readDirectories(original)).slice(0, 2);
  const strips = await Promise.all(stored.map((d) => original.read(d.offsets[0]!, d.byteCounts[0]!, 'strip')));
  await original.close();
  const reread = await askOpenSlide(published, { regions: after.levels.map(({ width, height }, k) => [k, 0, 0, width, height]) });
  t.is(reread.vendor, 'generic-tiff');
  const before = await Slide.open(file);
  t.teardown(() => before.close());
  for (const [k, { width, height }] of after.levels.entries()) {
    const { data, info } = await sharp(strips[k]!, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
    t.deepEqual([info.width, info.height], [width, height]);
    t.true(data.equals(await readFile(reread.regions[k]!.file)), `level ${k} (${width}×${height}): OpenSlide reads the published TIFF as libjpeg-turbo decodes the original strip`);
    t.true(data.equals((await after.readRegion(k, 0, 0, width, height)).data), `level ${k}: the engine reads the published TIFF as libjpeg-turbo decodes the original strip`);
    const level = before.levels.findIndex((l) => l.width === width);
    t.true(data.equals((await before.readRegion(level, 0, 0, width, height)).data), `level ${k}: the engine reads the original alike`);
  }
});

testNeeding([openslideProblem], `an NDPI level whose restart intervals are too wide to put two side by side is re-encoded, the others re-tiled, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  // Level 0: intervals of 4095 MCUs (32760 pixels, the whole row), not a multiple of 16; two would be 65520 pixels,
  // past what libjpeg decodes. Level 1 (8190 wide): 1024 MCUs, intervals of 8192 pixels, re-tiled.
  const made = await makeSlide({ format: 'ndpi', width: 32_760, height: 256, levels: 2, restartInterval: 4095, seed: 1, out: bench.inbox, name: 'wide' });
  const result = await ingestOne(bench, path.basename(made.svs));
  t.is(result.outcome, 'published', result.reason ?? '');
  const levels = result.report.levels as PublishedLevel[];
  t.deepEqual(
    levels.map((l) => `${l.width}×${l.height} ${l.tileWidth}×${l.tileHeight} ${l.how}`),
    ['32760×256 256×256 re-encoded', '8190×64 8192×32 re-tiled'],
  );
  t.is(levels[0]!.note, 're-encoded: its restart intervals are 32760 pixels wide, not a multiple of 16 as TIFF tiles must be, and two side by side (65520 pixels) are wider than a JPEG decoder takes (65500)');
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  const slide = await Slide.open(published);
  t.teardown(() => slide.close());
  const original = await askOpenSlide(made.svs, { regions: [[0, 0, 0, 32_760, 256]] });
  const expected = await readFile(original.regions[0]!.file);
  t.true(expected.some((value) => value < 100), 'the level holds tissue, not only background');
  const quality = psnr(expected, (await slide.readRegion(0, 0, 0, 32_760, 256)).data);
  t.true(quality > 35, `re-encoded level within ${quality.toFixed(1)} dB`);
  // Level 1 against its strip decoded in one piece by libjpeg-turbo: OpenSlide 3.4.1 paints none of it (its one
  // interval a row, 8192 pixels, is wider than the level's 8190).
  const handle = await RandomAccessFile.open(made.svs);
  const stored = (await readDirectories(handle))[1]!;
  const strip = await handle.read(stored.offsets[0]!, stored.byteCounts[0]!, 'level 1');
  await handle.close();
  const { data } = await sharp(strip, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
  t.true(data.equals((await slide.readRegion(1, 0, 0, 8190, 64)).data), 'the re-tiled level identical');
  t.log(`the re-encoded level at ${quality.toFixed(1)} dB PSNR against OpenSlide's reading of the original`);
});

/** Replace the JPEG strip of directory `index` of an NDPI with `jpeg` (no longer than the strip), in place. */
async function replaceStrip(file: string, index: number, jpeg: Buffer): Promise<void> {
  const handle = await RandomAccessFile.open(file);
  const directory = (await readDirectories(handle))[index]!;
  await handle.close();
  if (jpeg.length > directory.byteCounts[0]!) throw new Error(`a ${jpeg.length}-byte JPEG does not fit the ${directory.byteCounts[0]}-byte strip`);
  const bytes = await readFile(file);
  const fd = await open(file, 'r+');
  try {
    await fd.write(jpeg, 0, jpeg.length, directory.offsets[0]!);
    const entries = bytes.readUInt16LE(directory.offset);
    for (let i = 0; i < entries; i++) {
      const entry = directory.offset + 2 + i * 12;
      if (bytes.readUInt16LE(entry) !== 279) continue; // StripByteCounts: one LONG, in the entry
      const value = Buffer.alloc(4);
      value.writeUInt32LE(jpeg.length);
      await fd.write(value, 0, 4, entry + 8);
    }
  } finally {
    await fd.close();
  }
}

testNeeding([openslideProblem], `an NDPI level without restart markers is decoded and re-encoded, and the report says so, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const { file } = await ndpi(bench, 'no-restarts', 2400, 1800);
  // Level 1 (600×450) written again as one JPEG without restart markers, as some scanners' small levels are.
  const handle = await RandomAccessFile.open(file);
  const level1 = (await readDirectories(handle))[1]!;
  const strip = await handle.read(level1.offsets[0]!, level1.byteCounts[0]!, 'level 1');
  await handle.close();
  const plain = await sharp(strip).jpeg({ quality: 60, chromaSubsampling: '4:4:4' }).toBuffer();
  t.false(plain.includes(Buffer.from([0xff, 0xdd])), 'no DRI segment');
  await replaceStrip(file, 1, plain);

  const result = await ingestOne(bench, path.basename(file));
  t.is(result.outcome, 'published', result.reason ?? '');
  const levels = result.report.levels as PublishedLevel[];
  t.deepEqual(
    levels.map((l) => `${l.width}×${l.height} ${l.tileWidth}×${l.tileHeight} ${l.how}`),
    ['2400×1800 240×240 re-tiled', '600×450 256×256 re-encoded'],
  );
  t.is(levels[1]!.note, 're-encoded: its JPEG strip has no restart markers');
  t.deepEqual(result.report.directories!.map((d) => `${d.role}:${d.action}`), ['level:re-tiled', 'level:re-encoded', 'macro:removed']);
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  const low = await askOpenSlide(file, { regions: [[2, 0, 0, 600, 448]] });
  const slide = await Slide.open(published);
  t.teardown(() => slide.close());
  const quality = psnr(await readFile(low.regions[0]!.file), (await slide.readRegion(1, 0, 0, 600, 448)).data);
  t.true(quality > 35, `re-encoded level within ${quality.toFixed(1)} dB`);
  t.log(`the re-encoded level at ${quality.toFixed(1)} dB PSNR against OpenSlide's reading of the original`);
});

testNeeding([openslideProblem], `a level the scanner did not store is made by scaled decoding so that no step is more than 4×, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  // Stored: 4096, 1024 and 256 wide; without the middle one, a 16× step.
  const { file } = await ndpi(bench, 'gap', 4096, 3072, 3);
  await dropDirectory(file, 1);
  const result = await ingestOne(bench, path.basename(file));
  t.is(result.outcome, 'published', result.reason ?? '');
  const levels = result.report.levels as PublishedLevel[];
  t.deepEqual(
    levels.map((l) => `${l.width} ${l.how}`),
    ['4096 re-tiled', '1024 scaled decoding', '256 re-tiled'],
  );
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  // OpenSlide's levels of the original: 4096, 2048, 1024, 512 (4096 at 1/2, 1/4, 1/8), 256 (stored), 128, 64, 32.
  const original = await askOpenSlide(file, { regions: [[4, 0, 0, 256, 192], [2, 1600, 800, 400, 300], [0, 3000, 2000, 600, 500]] });
  const ours = await askOpenSlide(published, { regions: [[2, 0, 0, 256, 192], [1, 1600, 800, 400, 300], [0, 3000, 2000, 600, 500]] });
  t.deepEqual(ours.levels.map(([w]) => w), [4096, 1024, 256]);
  const stored = await readFile(original.regions[0]!.file);
  t.true(stored.equals(await readFile(ours.regions[0]!.file)), 'the stored 256-pixel level is re-tiled, identical');
  t.true((await readFile(original.regions[2]!.file)).equals(await readFile(ours.regions[2]!.file)), 'level 0 identical');
  const made = psnr(await readFile(original.regions[1]!.file), await readFile(ours.regions[1]!.file));
  t.true(made > 35, `the made level agrees with OpenSlide's scaled decoding of the original to ${made.toFixed(1)} dB`);
  t.log(`the level made by scaled decoding: ${made.toFixed(1)} dB PSNR against OpenSlide's`);
});

testNeeding([fixturesProblem(), openslideProblem], `a NanoZoomer fixture is published re-tiled (intervals a whole row wide), pixels identical to OpenSlide's, its serial numbers and dates gone, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  await copyFile(fixture('ndpi/test3-DAPI.ndpi'), path.join(bench.inbox, 'test3-DAPI.ndpi'));
  const result = await ingestOne(bench, 'test3-DAPI.ndpi');
  t.is(result.outcome, 'published', result.reason ?? '');
  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  const bytes = await readFile(published);
  // NDP.S/N and SerialNumber, Macro.S/N, Created, Updated and the shading data's Date.
  for (const value of ['950291', '950410', '2011/05/23', '2017/01/27']) t.false(bytes.includes(Buffer.from(value, 'latin1')), `${value} is gone`);
  const levels = result.report.levels as PublishedLevel[];
  // Restart intervals a whole row wide (3968 pixels, 8 rows): tiles as wide as the level, 64 rows tall.
  t.deepEqual(levels.map((l) => `${l.width}×${l.height} ${l.tileWidth}×${l.tileHeight} ${l.how}`), [
    '3968×4864 3968×64 re-tiled',
    '1984×2432 1984×128 re-tiled',
    '992×1216 992×256 re-tiled',
    '496×608 496×496 re-tiled',
  ]);
  const regions: [number, number, number, number, number][] = [[0, 1000, 1500, 1200, 900], [2, 0, 0, 992, 1216]];
  const original = await askOpenSlide(fixture('ndpi/test3-DAPI.ndpi'), { regions });
  const reread = await askOpenSlide(published, { regions: [[0, 1000, 1500, 1200, 900], [2, 0, 0, 992, 1216]] });
  for (const i of [0, 1]) t.true((await readFile(original.regions[i]!.file)).equals(await readFile(reread.regions[i]!.file)), `region ${i} identical`);
});

/** McuStarts (tag 65426) of an NDPI's first directory: where its values lie in the file, and the strip's length. */
async function mcuStarts(file: string): Promise<{ at: number; count: number; stripLength: number }> {
  const handle = await RandomAccessFile.open(file);
  try {
    const [first] = await readDirectories(handle);
    const bytes = await readFile(file);
    const entries = bytes.readUInt16LE(first!.offset);
    for (let i = 0; i < entries; i++) {
      const entry = first!.offset + 2 + i * 12;
      if (bytes.readUInt16LE(entry) === 65426) return { at: bytes.readUInt32LE(entry + 8), count: bytes.readUInt32LE(entry + 4), stripLength: first!.byteCounts[0]! };
    }
    throw new Error('no McuStarts');
  } finally {
    await handle.close();
  }
}

test(`damaged NDPI copies are quarantined with the reason and nothing partial is published, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const truncated = await ndpi(bench, 'truncated', 2048, 1536);
  await truncate(truncated.file, Math.floor((await stat(truncated.file)).size * 0.6));
  // Restart offsets past the end of the strip.
  const past = await ndpi(bench, 'past-end', 2048, 1536);
  const starts = await mcuStarts(past.file);
  const fd = await open(past.file, 'r+');
  const beyond = Buffer.alloc(4 * 8);
  for (let i = 0; i < 8; i++) beyond.writeUInt32LE(starts.stripLength + 1000 * (i + 1), 4 * i);
  await fd.write(beyond, 0, beyond.length, starts.at + 4 * (starts.count - 8));
  // A restart offset that does not lead to a restart marker: found only while the intervals are re-tiled.
  const shifted = await ndpi(bench, 'shifted', 2048, 1536);
  const moved = await mcuStarts(shifted.file);
  const fd2 = await open(shifted.file, 'r+');
  const value = Buffer.alloc(4);
  await fd2.read(value, 0, 4, moved.at + 4 * (moved.count - 5));
  value.writeUInt32LE(value.readUInt32LE(0) + 3);
  await fd2.write(value, 0, 4, moved.at + 4 * (moved.count - 5));
  await fd.close();
  await fd2.close();

  await writeSheet(bench.inbox, ['truncated.ndpi', 'past-end.ndpi', 'shifted.ndpi']);
  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  const by = Object.fromEntries(results.map((r) => [r.file, r]));
  t.is(by['truncated.ndpi']!.outcome, 'quarantined');
  t.regex(by['truncated.ndpi']!.reason!, /cannot be read as a slide: .*(truncated|past the end)/);
  t.is(by['past-end.ndpi']!.outcome, 'quarantined');
  t.regex(by['past-end.ndpi']!.reason!, /cannot be read as a slide: .*tag 65426 puts restart interval \d+ at byte \d+, past the end of the \d+-byte JPEG strip/);
  t.is(by['shifted.ndpi']!.outcome, 'quarantined');
  t.regex(by['shifted.ndpi']!.reason!, /writing the de-identified copy failed: .*no restart marker at the end of restart interval/);
  for (const r of results) t.false(r.reason!.includes(bench.inbox), 'reasons do not carry the folder path');
  t.deepEqual(await readdir(bench.config.paths.slides).catch(() => []), [], 'nothing, not even a partial file, in the slide store');
  t.is(await bench.repository.slideCount(), 0);
});
