// Reads ../shared/fixtures/dicom: damaged copies made here are refused with the reason, never read as garbage.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Slide, WsiError, type WsiErrorCode } from '../../server/wsi/index.js';
import { readInstanceHeader } from '../../server/wsi/formats/dicom/dataset.js';
import { openDicomSeries } from '../../server/wsi/formats/dicom/index.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { fixture, fixturesDir, fixtureTest, type FixtureName } from '../support/fixtures.js';
import type { ExecutionContext } from 'ava';

const WG26 = path.join(fixturesDir, 'dicom/wg26-bpaec');

async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-damaged-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A writable copy of the 3DHISTECH series (or of some of its files). */
async function copyOfSeries(t: ExecutionContext, keep: (name: string) => boolean = () => true): Promise<string> {
  const dir = path.join(await scratch(t), 'series');
  await mkdir(dir);
  for (const name of await readdir(WG26)) if (keep(name)) await copyFile(path.join(WG26, name), path.join(dir, name));
  return dir;
}

async function copyOf(t: ExecutionContext, name: FixtureName): Promise<string> {
  const target = path.join(await scratch(t), path.basename(name));
  await copyFile(fixture(name), target);
  return target;
}

/** Replace every occurrence of `from` by `to` (the same length) in a file. */
async function rewrite(file: string, from: string, to: string): Promise<void> {
  if (from.length !== to.length) throw new Error('a rewrite keeps the length');
  const bytes = await readFile(file);
  let at = bytes.indexOf(from, 0, 'latin1');
  if (at < 0) throw new Error(`${from} is not in ${file}`);
  while (at >= 0) {
    bytes.write(to, at, 'latin1');
    at = bytes.indexOf(from, at + 1, 'latin1');
  }
  await writeFile(file, bytes);
}

/** The file offset of an encapsulated instance's Basic Offset Table values. */
async function basicOffsetTable(file: string): Promise<{ at: number; entries: number }> {
  const handle = await RandomAccessFile.open(file);
  try {
    const { pixelData } = await readInstanceHeader(handle);
    if (!pixelData) throw new Error(`${file} has no Pixel Data`);
    const item = await handle.read(pixelData.offset, 8, 'the table');
    return { at: pixelData.offset + 8, entries: item.readUInt32LE(4) / 4 };
  } finally {
    await handle.close();
  }
}

async function refused(t: ExecutionContext, work: Promise<unknown>, code: WsiErrorCode, reason: RegExp): Promise<void> {
  const error = await t.throwsAsync(work, { instanceOf: WsiError });
  t.is(error?.code, code, error?.message);
  t.regex(error?.message ?? '', reason);
}

fixtureTest('a file cut short in its fragments (no offset table) is refused as truncated', async (t) => {
  const file = await copyOf(t, 'dicom/wsi2dcm/jpeg.dicom');
  await truncate(file, 90_000);
  await refused(t, Slide.open(file), 'corrupt', /runs past the end of the file .*truncated/);
});

fixtureTest('a level whose Basic Offset Table points past the end of its file is refused at open', async (t) => {
  const dir = await copyOfSeries(t);
  await truncate(path.join(dir, '5_0'), 900_000);
  await refused(t, Slide.open(dir), 'corrupt', /5_0: the Basic Offset Table puts frame \d+ past the end of the file/);
});

fixtureTest('uncompressed Pixel Data shorter than its frames is refused at open', async (t) => {
  const file = await copyOf(t, 'dicom/highdicom/sm_image.dcm');
  await truncate(file, 14_000);
  await refused(t, Slide.open(file), 'corrupt', /Pixel Data \(7500 bytes from offset \d+\) runs past the end of the file/);
});

fixtureTest('a Basic Offset Table that points into the middle of a fragment fails the read of that frame, and every read after it', async (t) => {
  const dir = await copyOfSeries(t);
  const file = path.join(dir, '5_0');
  const { at, entries } = await basicOffsetTable(file);
  t.is(entries, 27);
  const bytes = await readFile(file);
  bytes.writeUInt32LE(bytes.readUInt32LE(at + 4 * 4) + 2, at + 4 * 4);
  await writeFile(file, bytes);
  const slide = await Slide.open(dir);
  t.teardown(() => slide.close());
  t.truthy(await slide.readTile(0, 0, 0), 'frames before the lie read as they are');
  // Tile (1, 1) is frame 5; frame 4 now runs into it.
  await refused(t, slide.readTile(0, 1, 1), 'corrupt', /offset table is wrong: no fragment starts at offset \d+ \(frame 5\)/);
  await refused(t, slide.readTile(0, 2, 2), 'corrupt', /offset table is wrong/);
});

fixtureTest('a Basic Offset Table out of order, or listing other than the declared frames, is refused at open', async (t) => {
  const dir = await copyOfSeries(t);
  const file = path.join(dir, '6_0');
  const { at } = await basicOffsetTable(file);
  const bytes = await readFile(file);
  const [second, third] = [bytes.readUInt32LE(at + 4), bytes.readUInt32LE(at + 8)];
  bytes.writeUInt32LE(third, at + 4);
  bytes.writeUInt32LE(second, at + 8);
  await writeFile(file, bytes);
  await refused(t, Slide.open(dir), 'corrupt', /6_0: the Basic Offset Table is wrong: frame 3's offset \d+ does not follow frame 2's/);

  const lying = await copyOfSeries(t);
  // Number of Frames 27 → 28: one more frame than the table (and the pixel data) hold.
  await rewrite(path.join(lying, '5_0'), 'IS\x02\x0027', 'IS\x02\x0028');
  await refused(t, Slide.open(lying), 'corrupt', /the Basic Offset Table lists 27 frames, the instance declares 28/);
});

fixtureTest('an unsupported transfer syntax is refused, naming it', async (t) => {
  const file = await copyOf(t, 'dicom/wsi2dcm/jpeg.dicom');
  await rewrite(file, '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.57');
  await refused(t, Slide.open(file), 'unsupported_compression', /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.57 \(JPEG Lossless \(Process 14\)\) is not supported/);
  const big = await copyOf(t, 'dicom/highdicom/sm_image.dcm');
  await rewrite(big, '1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.2\0');
  await refused(t, Slide.open(big), 'unsupported_compression', /transfer syntax 1\.2\.840\.10008\.1\.2\.2 \(Explicit VR Big Endian\) is not supported/);
});

fixtureTest('a folder mixing two series is refused', async (t) => {
  const dir = await copyOfSeries(t);
  await copyFile(fixture('dicom/highdicom/sm_image.dcm'), path.join(dir, 'other.dcm'));
  await refused(t, Slide.open(dir), 'unsupported_format', /the folder mixes instances of 2 series; a slide is one series/);
});

fixtureTest('a DICOM object that is not a whole-slide image is refused, naming its SOP class', async (t) => {
  const file = await copyOf(t, 'dicom/highdicom/sm_image.dcm');
  // VL Whole Slide Microscopy Image Storage → VL Slide-Coordinates Microscopic Image Storage (the same length).
  await rewrite(file, '1.2.840.10008.5.1.4.1.1.77.1.6', '1.2.840.10008.5.1.4.1.1.77.1.3');
  await refused(t, Slide.open(file), 'unsupported_format', /a DICOM object of SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.77\.1\.3, not a whole-slide image/);
  const dir = await copyOfSeries(t);
  await copyFile(file, path.join(dir, 'extra'));
  await refused(t, Slide.open(dir), 'unsupported_format', /extra: a DICOM object of SOP class/);
});

fixtureTest('an instance cut before its Pixel Data is refused as such; an object without pixels of another SOP class is named', async (t) => {
  const file = await copyOf(t, 'dicom/highdicom/sm_image.dcm');
  const handle = await RandomAccessFile.open(file);
  const { pixelData } = await readInstanceHeader(handle);
  await handle.close();
  // Explicit VR: the Pixel Data element's header is 12 bytes before its value.
  await truncate(file, pixelData!.offset - 12);
  await refused(t, Slide.open(file), 'corrupt', /sm_image\.dcm: the data set ends without Pixel Data/);
  // Microscopy Bulk Simple Annotations, padded with NULs to the same length.
  await rewrite(file, '1.2.840.10008.5.1.4.1.1.77.1.6', '1.2.840.10008.5.1.4.1.1.91.1\0\0');
  await refused(t, Slide.open(file), 'unsupported_format', /a DICOM object of SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.91\.1, not a whole-slide image/);
});

fixtureTest('a file that is not DICOM is refused; a folder without DICOM files too; stray files beside a series are passed over', async (t) => {
  const dir = await scratch(t);
  const text = path.join(dir, 'notes.dcm');
  await writeFile(text, 'not a slide, but long enough to have a preamble: '.repeat(10));
  await refused(t, Slide.open(text), 'unsupported_format', /not a TIFF file/);
  await refused(t, openDicomSeries(text), 'unsupported_format', /not a DICOM file \(no "DICM" after the 128-byte preamble\)/);
  await refused(t, Slide.open(dir), 'unsupported_format', /no DICOM files in the folder/);

  const series = await copyOfSeries(t);
  await copyFile(text, path.join(series, 'README'));
  const slide = await Slide.open(series);
  t.is(slide.levels.length, 8);
  await slide.close();
});

fixtureTest('a series without one of its levels opens with the levels it has; without any VOLUME instance it is refused', async (t) => {
  // DICOM declares no count of levels: a series is the instances it holds (a level split into a concatenation is checked whole).
  const dir = await copyOfSeries(t, (name) => name !== '7_0');
  const slide = await Slide.open(dir);
  t.deepEqual(
    slide.levels.map((l) => l.width),
    [3072, 1536, 384, 192, 96, 48, 24],
  );
  t.deepEqual(slide.levels.map((l) => l.downsample), [1, 2, 8, 16, 32, 64, 128]);
  await slide.close();
  const associatedOnly = await copyOfSeries(t, (name) => !name.endsWith('_0'));
  await refused(t, Slide.open(associatedOnly), 'unsupported_format', /no VOLUME instance \(Image Type value 3\) to make a pyramid of; found REGIONLOCALIZER, LABEL/);
});
