// Reads ../shared/fixtures: damaged variants of good slides are made here, in a temp folder,
// the way OpenSlide's test suite derives its corrupt cases.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Slide, WsiError } from '../../server/wsi/index.js';
import { readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { Tag } from '../../server/wsi/tiff/tags.js';
import { fixture, fixtureTest } from '../support/fixtures.js';

const dir = mkdtemp(path.join(os.tmpdir(), 'slidebank-damaged-'));

async function variant(name: string, bytes: Buffer): Promise<string> {
  const file = path.join(await dir, name);
  await writeFile(file, bytes);
  return file;
}

/** Where each directory's entries start, and the byte offset of a tag's entry (classic little-endian TIFF). */
async function layout(file: string) {
  const handle = await RandomAccessFile.open(file);
  try {
    const dirs = await readDirectories(handle);
    const bytes = await readFile(file);
    const entryOf = (d: number, tag: number): number => {
      const at = dirs[d]!.offset;
      const count = bytes.readUInt16LE(at);
      for (let i = 0; i < count; i++) if (bytes.readUInt16LE(at + 2 + i * 12) === tag) return at + 2 + i * 12;
      throw new Error(`tag ${tag} not in directory ${d}`);
    };
    return { dirs, bytes, entryOf };
  } finally {
    await handle.close();
  }
}

async function openError(file: string): Promise<WsiError> {
  try {
    const slide = await Slide.open(file);
    try {
      await slide.readRegion(0, 0, 0, slide.levels[0]!.width, Math.min(slide.levels[0]!.height, 512));
    } finally {
      await slide.close();
    }
  } catch (error) {
    if (error instanceof WsiError) return error;
    throw error;
  }
  throw new Error(`${file} opened and read without error`);
}

fixtureTest('a truncated slide is refused as corrupt, naming what lies past the end', async (t) => {
  const good = await readFile(fixture('CMU-1-Small-Region.svs'));
  for (const fraction of [0.999, 0.5, 0.01]) {
    const error = await openError(await variant(`truncated-${fraction}.svs`, good.subarray(0, Math.floor(good.length * fraction))));
    t.is(error.code, 'corrupt', `${fraction}: ${error.message}`);
    t.regex(error.message, /past the end of the file|truncated/);
  }
});

fixtureTest('a first-directory offset past the end of the file is corrupt', async (t) => {
  const bytes = Buffer.from(await readFile(fixture('small.svs')));
  bytes.writeUInt32LE(bytes.length + 1000, 4);
  const error = await openError(await variant('ifd-past-end.svs', bytes));
  t.is(error.code, 'corrupt');
  t.regex(error.message, /directory 0 at offset \d+ lies past the end/);
});

fixtureTest('a directory chain that loops is corrupt, not an endless walk', async (t) => {
  const { dirs, bytes } = await layout(fixture('small.svs'));
  const last = dirs.at(-1)!;
  const patched = Buffer.from(bytes);
  const count = patched.readUInt16LE(last.offset);
  patched.writeUInt32LE(dirs[0]!.offset, last.offset + 2 + count * 12);
  const error = await openError(await variant('loop.svs', patched));
  t.is(error.code, 'corrupt');
  t.regex(error.message, /loops back to offset/);
});

fixtureTest('absurd dimensions are corrupt', async (t) => {
  const { bytes, entryOf } = await layout(fixture('small.svs'));
  const patched = Buffer.from(bytes);
  const entry = entryOf(0, Tag.ImageWidth);
  const type = patched.readUInt16LE(entry + 2);
  if (type === 3) patched.writeUInt16LE(0, entry + 8);
  else patched.writeUInt32LE(2 ** 31, entry + 8);
  const error = await openError(await variant('absurd.svs', patched));
  t.is(error.code, 'corrupt');
  t.regex(error.message, /absurd dimensions/);
});

fixtureTest('a tile count that does not match the image is corrupt', async (t) => {
  const { bytes, entryOf } = await layout(fixture('CMU-1-Small-Region.svs'));
  const patched = Buffer.from(bytes);
  const entry = entryOf(0, Tag.TileWidth);
  patched.writeUInt16LE(16, entry + 8); // 16-px tiles would need far more offsets than the file has
  const error = await openError(await variant('tile-count.svs', patched));
  t.is(error.code, 'corrupt');
  t.regex(error.message, /tile offsets .* for \d+ tiles/);
});

fixtureTest('a tile whose data points past the end fails that read as corrupt', async (t) => {
  const { dirs, bytes } = await layout(fixture('CMU-1-Small-Region.svs'));
  const patched = Buffer.from(bytes);
  const offsets = dirs[0]!.tags.get(Tag.TileOffsets) as number[];
  // Find the TileOffsets array in the file and point the first tile beyond the end.
  const needle = Buffer.alloc(8);
  needle.writeUInt32LE(offsets[0]!, 0);
  needle.writeUInt32LE(offsets[1]!, 4);
  const at = patched.indexOf(needle);
  t.true(at > 0);
  patched.writeUInt32LE(patched.length + 10, at);
  const slide = await Slide.open(await variant('tile-past-end.svs', patched));
  t.teardown(() => slide.close());
  const error = await t.throwsAsync(slide.readTile(0, 0, 0), { instanceOf: WsiError });
  t.is(error?.code, 'corrupt');
  t.regex(error?.message ?? '', /tile \(0, 0\) at level 0 lies past the end/);
});

test('a file that is not a TIFF is unsupported_format', async (t) => {
  const error = await openError(await variant('notes.svs', Buffer.from('Patient notes, not a slide.\n'.repeat(20))));
  t.is(error.code, 'unsupported_format');
  t.regex(error.message, /not a TIFF file/);
});

test('an empty file is unsupported_format', async (t) => {
  const error = await openError(await variant('empty.svs', Buffer.alloc(0)));
  t.is(error.code, 'unsupported_format');
  t.regex(error.message, /too short to be a TIFF/);
});
