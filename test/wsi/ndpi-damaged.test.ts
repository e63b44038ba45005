// Damaged copies of NDPI files, made here in a temporary folder from a generated slide (and from
// ../shared/fixtures where present): each must be refused with a clear error, never read as garbage.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Slide, WsiError } from '../../server/wsi/index.js';
import { ndpiOffset, readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { fixture, fixtureTest } from '../support/fixtures.js';
import { maxDifference } from '../support/ndpi-crosscheck.js';
import { makeSlide } from '../support/slides.js';

async function folder(t: ExecutionContext): Promise<string> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ndpi-damaged-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  return out;
}

async function generated(t: ExecutionContext, width: number, height: number): Promise<{ out: string; file: string }> {
  const out = await folder(t);
  const { svs } = await makeSlide({ width, height, levels: 1, seed: 3, out, format: 'ndpi' });
  return { out, file: svs };
}

/** Directory 0's entry for `tag` (NDPI: 12-byte entries after a 2-byte count), and its strip. */
async function entryOf(file: string, tag: number): Promise<{ bytes: Buffer; entry: number; stripOffset: number }> {
  const handle = await RandomAccessFile.open(file);
  try {
    const [first] = await readDirectories(handle);
    const bytes = await readFile(file);
    const count = bytes.readUInt16LE(first!.offset);
    for (let i = 0; i < count; i++) {
      const entry = first!.offset + 2 + i * 12;
      if (bytes.readUInt16LE(entry) === tag) return { bytes, entry, stripOffset: first!.offsets[0]! };
    }
    throw new Error(`no tag ${tag}`);
  } finally {
    await handle.close();
  }
}

async function readError(file: string): Promise<WsiError> {
  try {
    const slide = await Slide.open(file);
    try {
      const level = slide.levels[0]!;
      await slide.readRegion(0, 0, 0, Math.min(level.width, 4096), Math.min(level.height, 1024));
    } finally {
      await slide.close();
    }
  } catch (error) {
    if (error instanceof WsiError) return error;
    throw error;
  }
  throw new Error(`${file} opened and read without error`);
}

test('a truncated NDPI is refused as corrupt, naming what lies past the end', async (t) => {
  const { out, file } = await generated(t, 1024, 768);
  const good = await readFile(file);
  for (const fraction of [0.999, 0.6, 0.05]) {
    const damaged = path.join(out, `truncated-${fraction}.ndpi`);
    await writeFile(damaged, good.subarray(0, Math.floor(good.length * fraction)));
    const error = await readError(damaged);
    t.is(error.code, 'corrupt', `${fraction}: ${error.message}`);
    t.regex(error.message, /past the end of the|truncated|unexpected end/);
  }
});

fixtureTest('a truncated real NDPI is refused as corrupt', async (t) => {
  const out = await folder(t);
  const good = await readFile(fixture('ndpi/test3-DAPI.ndpi'));
  const damaged = path.join(out, 'truncated.ndpi');
  await writeFile(damaged, good.subarray(0, 2_900_000)); // the third level's directory and beyond are gone
  const error = await readError(damaged);
  t.is(error.code, 'corrupt', error.message);
  t.regex(error.message, /past the end of the file/);
});

test('restart offsets (McuStarts) that point past the end of the strip are refused when the slide is opened', async (t) => {
  const { out, file } = await generated(t, 1024, 768);
  const { bytes, entry } = await entryOf(file, 65426);
  const count = bytes.readUInt32LE(entry + 4);
  const values = bytes.readUInt32LE(entry + 8);
  bytes.writeUInt32LE(0xfff0_0000, values + 4 * (count - 1));
  const damaged = path.join(out, 'mcu-starts.ndpi');
  await writeFile(damaged, bytes);
  const error = await readError(damaged);
  t.is(error.code, 'corrupt');
  t.regex(error.message, /tag 65426 puts restart interval \d+ at byte \d+, past the end of the \d+-byte JPEG strip/);
});

test('restart offsets that miss the markers are refused when read', async (t) => {
  const { out, file } = await generated(t, 1024, 768);
  const { bytes, entry } = await entryOf(file, 65426);
  const values = bytes.readUInt32LE(entry + 8);
  bytes.writeUInt32LE(bytes.readUInt32LE(values + 4 * 3) + 1, values + 4 * 3);
  const damaged = path.join(out, 'mcu-starts-off.ndpi');
  await writeFile(damaged, bytes);
  const error = await readError(damaged);
  t.is(error.code, 'corrupt');
  t.regex(error.message, /no restart marker at the end of restart interval 2/);
});

test('without McuStarts the restart markers are found by scanning, with the same pixels', async (t) => {
  const { out, file } = await generated(t, 1536, 1000);
  const { bytes, entry } = await entryOf(file, 65426);
  bytes.writeUInt16LE(65399, entry); // the tag renamed: an unknown private tag, sorted out of place but still read
  const scanned = path.join(out, 'no-mcu-starts.ndpi');
  await writeFile(scanned, bytes);
  const [a, b] = await Promise.all([Slide.open(file), Slide.open(scanned)]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  for (const [x, y, w, h] of [
    [1300, 900, 236, 100],
    [0, 0, 1536, 300],
    [700, 500, 20, 20],
  ] as const) {
    const [ra, rb] = await Promise.all([a.readRegion(0, x, y, w, h), b.readRegion(0, x, y, w, h)]);
    t.is(maxDifference(ra.data, rb.data), 0);
  }
});

test('a strip without restart markers wider than a JPEG frame header holds is refused with the reason', async (t) => {
  const { out, file } = await generated(t, 69_632, 256);
  const { bytes, stripOffset } = await entryOf(file, 273);
  // The DRI segment (FF DD 00 04 ...) turned into a comment: the strip has no restart markers any more.
  const dri = bytes.indexOf(Buffer.from([0xff, 0xdd, 0x00, 0x04]), stripOffset);
  t.true(dri > stripOffset && dri < stripOffset + 1024);
  bytes[dri + 1] = 0xfe;
  const damaged = path.join(out, 'no-restarts.ndpi');
  await writeFile(damaged, bytes);
  const error = await readError(damaged);
  t.is(error.code, 'unsupported_format');
  t.regex(error.message, /level 0: a 69632×256 JPEG strip without restart markers; past 65500 pixels a JPEG can only be read a restart interval at a time/);
});

test("NDPI's 32-bit offsets get back the high bits that keep them below their directory, as OpenSlide restores them", (t) => {
  const G4 = 2 ** 32;
  t.is(ndpiOffset(2_067_399, 4_281), 4_281);
  t.is(ndpiOffset(G4 + 100, 50), G4 + 50);
  t.is(ndpiOffset(G4 + 100, 200), 200, 'not at or past its directory');
  t.is(ndpiOffset(3 * G4 + 10, G4 - 5), 2 * G4 + G4 - 5);
});
