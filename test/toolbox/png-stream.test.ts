import test from 'ava';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { GreyPng16Writer } from '../../server/toolbox/png-stream.js';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'slidebank-png-'));
}

test('rows written in several calls make a 16-bit grey PNG with exactly those samples', async (t) => {
  const dir = await tempDir();
  const file = path.join(dir, 'map.png');
  const writer = GreyPng16Writer.open(file, 5, 4);
  const samples = Uint16Array.from({ length: 20 }, (_, i) => i * 3000 + 7);
  await writer.writeRows(samples.subarray(0, 10));
  await writer.writeRows(samples.subarray(10));
  await writer.finish();
  const { data, info } = await sharp(file).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height, info.channels], [5, 4, 1]);
  t.deepEqual([...new Uint16Array(data.buffer, data.byteOffset, data.length / 2)], [...samples]);
  t.deepEqual(await readdir(dir), ['map.png']);
});

test('finish refuses an image with rows missing, and rows that do not fit are refused', async (t) => {
  const dir = await tempDir();
  const writer = GreyPng16Writer.open(path.join(dir, 'short.png'), 4, 3);
  await t.throwsAsync(writer.writeRows(new Uint16Array(5)), { message: /not whole rows/ });
  await writer.writeRows(new Uint16Array(4));
  await t.throwsAsync(writer.finish(), { message: 'finish: 1 of 3 rows written' });
  await writer.abort();
  t.deepEqual(await readdir(dir), []);
});

// The failure behind a red CI run: an abort while the first writes were still
// in flight raised an unhandled stream error that ended the process.
test('abort at any moment, even before the file is open, leaves no file and raises nothing', async (t) => {
  const dir = await tempDir();
  for (let n = 0; n < 60; n++) {
    const writer = GreyPng16Writer.open(path.join(dir, `early-${n}.png`), 300, 200);
    if (n % 2 === 1) void writer.writeRows(new Uint16Array(300 * 100).fill(n));
    // From no wait at all to well after the file is open and its first bytes are being written.
    for (let turn = 0; turn < n % 12; turn++) await new Promise((resolve) => setImmediate(resolve));
    await writer.abort();
  }
  const late = GreyPng16Writer.open(path.join(dir, 'late.png'), 300, 200);
  await late.writeRows(new Uint16Array(300 * 200).fill(1));
  await late.abort();
  t.deepEqual(await readdir(dir), []);
});
