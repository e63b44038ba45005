// DICOM export of slide files: every instance checked by dciodvfy, read back by pydicom and by
// Slidebank's own DICOM reader, frames compared with the source tiles.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { exportSlideAsDicom, type ExportResult, type OffsetTableChoice } from '../../server/wsi/dicom-writer/index.js';
import { Slide } from '../../server/wsi/index.js';
import { dciodvfy, dciodvfyProblem } from '../support/dciodvfy.js';
import { fixture, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { askPydicom, pydicomProblem } from '../support/pydicom.js';
import { testNeeding } from '../support/requirements.js';
import { makeSlide } from '../support/slides.js';

const root = mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-export-'));
test.after.always(async () => rm(await root, { recursive: true, force: true }));

async function exportTo(t: ExecutionContext, file: string, offsetTable: OffsetTableChoice = 'auto'): Promise<{ dir: string; result: ExportResult }> {
  const dir = await mkdtemp(path.join(await root, 'series-'));
  const result = await exportSlideAsDicom(file, dir, {
    name: 'SB-TEST-0001',
    published: new Date('2026-11-02T09:30:00Z'),
    softwareVersion: '0.1.0',
    uidKey: `test:${path.basename(file)}`,
    offsetTable,
  });
  t.log(result.instances.map((i) => `${path.basename(i.file)}: ${i.frames} frame(s), ${i.photometric}, ${i.transferSyntax}, ${i.offsetTable} offset table`).join('\n'));
  return { dir, result };
}

/** dciodvfy finds no error in any instance; its warnings are listed in the test's log. */
async function verifiesClean(t: ExecutionContext, result: ExportResult): Promise<void> {
  for (const instance of result.instances) {
    const { errors, warnings } = await dciodvfy(instance.file);
    t.log(`dciodvfy ${path.basename(instance.file)}: ${errors.length} error(s), ${warnings.length} warning(s)${warnings.map((w) => `\n  ${w}`).join('')}`);
    t.deepEqual(errors, [], path.basename(instance.file));
  }
}

/**
 * Slidebank's DICOM reader opens the series with the source's levels, and
 * every frame is the stored tile: the same complete JPEG (or JPEG 2000
 * codestream) bytes, decoding to identical pixels.
 */
async function readsBackAsTheSource(t: ExecutionContext, source: string, dir: string): Promise<void> {
  const original = await Slide.open(source);
  const copy = await Slide.open(dir);
  try {
    t.deepEqual(
      copy.levels.map(({ jpeg: _j, downsample: _d, ...geometry }) => geometry),
      original.levels.map(({ jpeg: _j, downsample: _d, ...geometry }) => geometry),
    );
    t.true(copy.associatedImages.includes('thumbnail'));
    // A slide without a recorded pixel size is written with 1 µm (Pixel Spacing is required).
    t.deepEqual(copy.mpp, original.mpp ?? { x: 1, y: 1 });
    for (const [level, info] of original.levels.entries()) {
      for (let row = 0; row < info.tilesDown; row++) {
        for (let col = 0; col < info.tilesAcross; col++) {
          if (info.jpeg) t.true(sameFrame(await copy.readStoredJpeg(level, col, row), await original.readStoredJpeg(level, col, row)), `stored JPEG (${col}, ${row}) at level ${level}`);
          const [a, b] = [await copy.readTile(level, col, row), await original.readTile(level, col, row)];
          if (!a.data.equals(b.data)) t.fail(`tile (${col}, ${row}) at level ${level} differs`);
        }
      }
    }
  } finally {
    await copy.close();
    await original.close();
  }
}

/** The same bytes, but for the zero byte that pads a frame of odd length to an even one (PS3.5 A.4). */
function sameFrame(frame: Buffer, tile: Buffer): boolean {
  const padded = frame.length === tile.length + 1 && tile.length % 2 === 1 && frame[tile.length] === 0;
  return (frame.length === tile.length || padded) && frame.subarray(0, tile.length).equals(tile);
}

/** pydicom decodes every frame of every level to the source tile's pixels, within `tolerance`; the largest difference is logged. */
async function pydicomAgrees(t: ExecutionContext, source: string, result: ExportResult, tolerance: number): Promise<void> {
  const original = await Slide.open(source);
  try {
    for (const instance of result.instances.filter((i) => i.kind === 'volume')) {
      const level = instance.level!;
      const info = original.levels[level]!;
      const frames = Array.from({ length: instance.frames }, (_, i) => i);
      const decoded = await askPydicom(instance.file, frames);
      t.is(decoded.frames, info.tilesAcross * info.tilesDown);
      t.deepEqual([decoded.totalColumns, decoded.totalRows, decoded.columns, decoded.rows], [info.width, info.height, info.tileWidth, info.tileHeight]);
      let worst = 0;
      for (const n of frames) {
        const tile = await original.readTile(level, n % info.tilesAcross, Math.floor(n / info.tilesAcross));
        const frame = decoded.pixels[n]!;
        t.is(frame.length, tile.data.length);
        for (let i = 0; i < frame.length; i++) worst = Math.max(worst, Math.abs(frame[i]! - tile.data[i]!));
      }
      t.log(`pydicom, level ${level} (${instance.photometric}): largest sample difference from the source tiles ${worst}`);
      t.true(worst <= tolerance, `level ${level}: ${worst} > ${tolerance}`);
    }
  } finally {
    await original.close();
  }
}

const tools = [dciodvfyProblem, pydicomProblem];

testNeeding(tools, 'a generated SVS of odd size (YCbCr 4:2:0 tiles) exports as YBR_FULL_422 frames that dciodvfy, pydicom and the DICOM reader accept', async (t) => {
  const made = await makeSlide({ width: 1531, height: 1023, tileSize: 256, levels: 2, seed: 3, out: path.join(await root, 'made-1531') });
  const { dir, result } = await exportTo(t, made.svs);
  t.deepEqual(
    result.instances.map((i) => [path.basename(i.file), i.frames, i.photometric, i.transferSyntax]),
    [
      ['level-0.dcm', 24, 'YBR_FULL_422', '1.2.840.10008.1.2.4.50'],
      ['level-1.dcm', 2, 'YBR_FULL_422', '1.2.840.10008.1.2.4.50'],
      ['thumbnail.dcm', 1, 'YBR_FULL_422', '1.2.840.10008.1.2.4.50'],
    ],
  );
  await verifiesClean(t, result);
  await readsBackAsTheSource(t, made.svs, dir);
  await pydicomAgrees(t, made.svs, result, 0);
});

testNeeding(tools, 'the Extended Offset Table, chosen past 4 GiB of frames, is read by pydicom and the DICOM reader (forced here on a small slide)', async (t) => {
  const made = await makeSlide({ width: 1000, height: 777, tileSize: 240, levels: 1, seed: 5, out: path.join(await root, 'made-eot') });
  const { dir, result } = await exportTo(t, made.svs, 'extended');
  t.deepEqual(result.instances.map((i) => i.offsetTable), ['extended', 'basic']);
  await verifiesClean(t, result);
  await readsBackAsTheSource(t, made.svs, dir);
  await pydicomAgrees(t, made.svs, result, 0);
});

function fixtureExport(name: FixtureName, photometric: string, transferSyntax: string, tolerance: number, note: string): void {
  testNeeding([fixturesProblem(), ...tools], `${name} exports as ${photometric} frames (${note})`, async (t) => {
    const { dir, result } = await exportTo(t, fixture(name));
    for (const instance of result.instances.filter((i) => i.kind === 'volume')) t.deepEqual([instance.photometric, instance.transferSyntax], [photometric, transferSyntax]);
    await verifiesClean(t, result);
    await readsBackAsTheSource(t, fixture(name), dir);
    await pydicomAgrees(t, fixture(name), result, tolerance);
  });
}

fixtureExport('CMU-1-Small-Region.svs', 'RGB', '1.2.840.10008.1.2.4.50', 0, 'Aperio RGB tiles with JPEGTables spliced in and the Adobe marker added: pydicom decodes them identically');
fixtureExport('tcga-cr-7395-01a-01-ts1.svs', 'YBR_ICT', '1.2.840.10008.1.2.4.91', 0, 'Aperio JPEG 2000 codestreams with the irreversible component transform, copied as they are');

// Slides published from DICOM series: their JPEG frames, handed out by the DICOM driver, are copied again.
// The frames are the source's byte for byte (readsBackAsTheSource); pydicom's floating-point YCbCr conversion is 1 off the engine's in a few samples of this one, as for the source itself.
fixtureExport('dicom/wsi2dcm/jpeg.dicom', 'YBR_FULL_422', '1.2.840.10008.1.2.4.50', 1, 'a DICOM source: its frames copied as they are, the series named anew');
fixtureExport('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm', 'YBR_FULL_422', '1.2.840.10008.1.2.4.50', 0, 'a DICOM source of another writer');
