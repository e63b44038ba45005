// DICOM series made in the test: what the real fixtures lack (a hundred thousand frames, TILED_SPARSE,
// the Extended Offset Table, Implicit VR, fragmented frames, concatenations, 16-bit and MONOCHROME1).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { Slide, WsiError } from '../../server/wsi/index.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { writeWsi, type SyntheticWsi } from '../support/dicom-writer.js';
import { askPydicom, pydicomTest } from '../support/pydicom.js';

const JPEG = '1.2.840.10008.1.2.4.50';
const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';

const root = mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-'));
test.after.always(async () => rm(await root, { recursive: true, force: true }));

async function folder(name: string): Promise<string> {
  const dir = path.join(await root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A uniformly coloured JPEG tile (YCbCr, as YBR_FULL_422 frames are). */
const jpegTile = (size: number, rgb: [number, number, number]) =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).jpeg({ quality: 95 }).toBuffer();

/** Counts the bytes Slide.open reads, by watching every positional read of slide files. */
async function bytesReadBy<T>(work: () => Promise<T>): Promise<{ result: T; bytes: number; ms: number }> {
  const original = RandomAccessFile.prototype.read;
  let bytes = 0;
  RandomAccessFile.prototype.read = function (this: RandomAccessFile, offset: number, length: number, what: string) {
    bytes += length;
    return original.call(this, offset, length, what);
  };
  const started = performance.now();
  try {
    const result = await work();
    return { result, bytes, ms: performance.now() - started };
  } finally {
    RandomAccessFile.prototype.read = original;
  }
}

const near = (pixel: Buffer, rgb: [number, number, number]) => rgb.every((v, c) => Math.abs(pixel[c]! - v) <= 3);

for (const table of ['basic', 'extended'] as const) {
  test.serial(`a TILED_FULL level of 100,000 frames (${table} offset table) opens reading only its header and offset table; frames are read when asked for`, async (t) => {
    const across = 400;
    const down = 250;
    const frames = across * down;
    const red = await jpegTile(256, [200, 30, 30]);
    const blue = await jpegTile(256, [30, 30, 200]);
    // Each frame slot is 1,000 bytes; only the first and the last frames are written, the rest are holes.
    const fragments: (Buffer | number)[][] = Array.from({ length: frames }, () => [1000]);
    fragments[0] = [red];
    fragments[frames - 1] = [blue];
    const file = path.join(await folder(`large-${table}`), 'level.dcm');
    const size = await writeWsi(file, { transferSyntax: JPEG, photometric: 'YBR_FULL_422', width: across * 256, height: down * 256, tile: 256, frames, pixels: { fragments, table } });

    const { result: slide, bytes, ms } = await bytesReadBy(() => Slide.open(file));
    t.teardown(() => slide.close());
    t.log(`opened ${frames} frames (${(size / 1e6).toFixed(0)} MB) in ${ms.toFixed(1)} ms, reading ${(bytes / 1024).toFixed(0)} KiB`);
    const tableBytes = table === 'basic' ? frames * 4 : frames * 16;
    t.true(bytes < tableBytes + 2 * 256 * 1024 + 64 * 1024, `open read ${bytes} bytes`);
    t.like(slide.levels[0], { width: across * 256, height: down * 256, tilesAcross: across, tilesDown: down, jpeg: true });

    t.true(near((await slide.readTile(0, 0, 0)).data, [200, 30, 30]));
    t.true(near((await slide.readTile(0, across - 1, down - 1)).data, [30, 30, 200]));
    const stored = await slide.readStoredJpeg(0, across - 1, down - 1);
    t.true(stored.includes(blue.subarray(2)), 'the stored frame is sent as it is');
    // The frames between were never written (zeros): nothing read them at open, and reading one now fails, naming the fault.
    const error = await t.throwsAsync(slide.readTile(0, 5, 5), { instanceOf: WsiError });
    t.is(error?.code, 'decode_failed');
    t.regex(error!.message, /does not start with a JPEG marker/);
  });
}

test.serial('a TILED_SPARSE level of 100,000 frames is indexed from its Per-Frame Functional Groups in one compact scan', async (t) => {
  const across = 400;
  const down = 250;
  const frames = 100_000;
  // Every other tile is stored (a checkerboard), frames in a shuffled order; two optical paths, the second first in the file.
  const positions: SyntheticWsi['positions'] = [];
  const fragments: (Buffer | number)[][] = [];
  const green = await jpegTile(16, [20, 180, 20]);
  for (let i = 0; i < frames / 2; i++) {
    const row = Math.floor((i * 2) / across);
    const col = ((i * 2) % across) + (row % 2);
    positions.push({ column: col * 16 + 1, row: row * 16 + 1, path: 'B' });
    fragments.push([100]);
    positions.push({ column: col * 16 + 1, row: row * 16 + 1, path: 'A' });
    fragments.push(i === 0 || i === 7 ? [green] : [100]);
  }
  const file = path.join(await folder('sparse'), 'level.dcm');
  await writeWsi(file, {
    transferSyntax: JPEG,
    photometric: 'YBR_FULL_422',
    organization: 'TILED_SPARSE',
    width: across * 16,
    height: down * 16,
    tile: 16,
    frames,
    opticalPaths: ['A', 'B'],
    positions,
    pixels: { fragments, table: 'basic' },
  });
  const { result: slide, ms } = await bytesReadBy(() => Slide.open(file));
  t.teardown(() => slide.close());
  t.log(`opened a TILED_SPARSE level of ${frames} frames in ${ms.toFixed(1)} ms`);
  t.like(slide.properties, { 'dicom.dimension-organization-type': 'TILED_SPARSE', 'dicom.optical-path': 'A', 'dicom.missing-tiles': String((across * down) / 2) });
  // Sparse levels are decoded (tiles may be missing), never passed through.
  t.false(slide.levels[0]!.jpeg);
  t.true(near((await slide.readTile(0, 0, 0)).data, [20, 180, 20]), "frame 2 (path A) at (0, 0), not frame 1 (path B)");
  t.true(near((await slide.readTile(0, 14, 0)).data, [20, 180, 20]), 'the eighth stored tile of path A');
  t.true((await slide.readTile(0, 1, 0)).data.every((v) => v === 255), 'a tile no frame covers is white');
});

test('frames split over several fragments, without offset tables, are told apart by their JPEG start markers', async (t) => {
  const tile = await jpegTile(32, [90, 60, 200]);
  const other = await jpegTile(32, [240, 200, 10]);
  const split = (jpeg: Buffer) => [jpeg.subarray(0, 100), jpeg.subarray(100, 300), jpeg.subarray(300)];
  const file = path.join(await folder('fragments'), 'level.dcm');
  await writeWsi(file, { transferSyntax: JPEG, photometric: 'YBR_FULL_422', width: 64, height: 32, tile: 32, frames: 2, pixels: { fragments: [split(tile), split(other)], table: 'none' } });
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  t.true(near((await slide.readTile(0, 0, 0)).data, [90, 60, 200]));
  t.true(near((await slide.readTile(0, 1, 0)).data, [240, 200, 10]));
});

/** 2×2 tiles of 4×4 pixels, every sample distinct enough to catch a misplaced byte. */
function samples(count: number, bytes: 1 | 2): Buffer {
  const out = Buffer.alloc(count * bytes);
  for (let i = 0; i < count; i++) {
    const v = (i * 37 + 11) % (bytes === 1 ? 256 : 65536);
    if (bytes === 1) out[i] = v;
    else out.writeUInt16LE(v * 97 % 65536, i * 2);
  }
  return out;
}

const NATIVE_CASES: { name: string; spec: Omit<SyntheticWsi, 'width' | 'height' | 'tile' | 'frames' | 'pixels'>; bytes: 1 | 2; perPixel: number }[] = [
  { name: 'Implicit VR Little Endian, RGB', spec: { transferSyntax: IMPLICIT, explicit: false }, bytes: 1, perPixel: 3 },
  { name: 'RGB in colour planes (Planar Configuration 1)', spec: { transferSyntax: EXPLICIT, planar: 1 }, bytes: 1, perPixel: 3 },
  { name: 'YBR_FULL', spec: { transferSyntax: EXPLICIT, photometric: 'YBR_FULL' }, bytes: 1, perPixel: 3 },
  { name: '16-bit MONOCHROME2', spec: { transferSyntax: EXPLICIT, photometric: 'MONOCHROME2', bitsAllocated: 16 }, bytes: 2, perPixel: 1 },
  { name: 'MONOCHROME1', spec: { transferSyntax: EXPLICIT, photometric: 'MONOCHROME1' }, bytes: 1, perPixel: 1 },
];

for (const { name, spec, bytes, perPixel } of NATIVE_CASES) {
  pydicomTest([], `uncompressed frames, ${name}, match pydicom's decoding`, async (t) => {
    const file = path.join(await folder(`native-${name.replace(/\W+/g, '-')}`), 'level.dcm');
    await writeWsi(file, { ...spec, width: 8, height: 8, tile: 4, frames: 4, pixels: { native: samples(4 * 16 * perPixel, bytes) } });
    const slide = await Slide.open(file);
    t.teardown(() => slide.close());
    const reference = await askPydicom(file, [0, 1, 2, 3]);
    for (let f = 0; f < 4; f++) {
      const ours = (await slide.readTile(0, f % 2, Math.floor(f / 2))).data;
      let max = 0;
      for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i]! - reference.pixels[f]![i]!));
      // YBR_FULL: the engine's integer rounding against pydicom's floating-point conversion.
      t.true(max <= (spec.photometric === 'YBR_FULL' ? 1 : 0), `frame ${f + 1} differs by ${max}`);
    }
  });
}

test('a level stored as a concatenation of instances opens whole; with a part missing it is refused', async (t) => {
  const dir = await folder('concatenation');
  const tiles = [[200, 0, 0], [0, 200, 0], [0, 0, 200], [200, 200, 0]] as [number, number, number][];
  const jpegs = await Promise.all(tiles.map((rgb) => jpegTile(16, rgb)));
  const part = (number: number) =>
    writeWsi(path.join(dir, `part${number}.dcm`), {
      transferSyntax: JPEG,
      photometric: 'YBR_FULL_422',
      width: 32,
      height: 32,
      tile: 16,
      frames: 2,
      concatenation: { uid: '1.2.3.9', number, total: 2, frameOffset: (number - 1) * 2 },
      pixels: { fragments: jpegs.slice((number - 1) * 2, number * 2).map((j) => [j]), table: 'basic' },
    });
  await part(1);
  await part(2);
  const slide = await Slide.open(dir);
  for (let f = 0; f < 4; f++) t.true(near((await slide.readTile(0, f % 2, Math.floor(f / 2))).data, tiles[f]!), `tile ${f + 1}`);
  await slide.close();

  await rm(path.join(dir, 'part2.dcm'));
  const error = await t.throwsAsync(Slide.open(dir), { instanceOf: WsiError });
  t.is(error?.code, 'corrupt');
  t.regex(error!.message, /a concatenation of 2 instances, but part 2 is missing from the series/);
});
