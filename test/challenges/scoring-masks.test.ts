import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { lzwDecode, MaskError, openMask, packBitsDecode } from '../../server/challenges/submissions/mask-reader.js';
import { lzwEncode } from '../../server/wsi/tiff/writer.js';
import { packedPng, scratch } from './scoring-helpers.js';

/** A grey image whose rows differ in every way PNG's filters care about: gradients, noise and flat runs. */
function pattern(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height);
  let seed = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const band = Math.floor(y / 7) % 4;
      data[y * width + x] = band === 0 ? (x + y) & 255 : band === 1 ? seed >>> 24 : band === 2 ? 0 : (x * 3) & 255;
    }
  }
  return data;
}

/** Every row of the mask at `file`, read band by band. */
async function readAll(file: string): Promise<{ width: number; height: number; data: Uint8Array; bands: number }> {
  const reader = await openMask(file);
  const data = new Uint8Array(reader.width * reader.height);
  let next = 0;
  let bands = 0;
  try {
    for await (const band of reader.bands()) {
      if (band.firstRow !== next) throw new Error(`band at row ${band.firstRow}, expected ${next}`);
      data.set(band.data, band.firstRow * reader.width);
      next += band.rows;
      bands++;
    }
  } finally {
    await reader.close();
  }
  return { width: reader.width, height: reader.height, data, bands };
}

const raw = (data: Uint8Array, width: number, height: number) => sharp(data, { raw: { width, height, channels: 1 } }).toColourspace('b-w');

test('a PNG with every row filter reads back pixel for pixel, in several bands', async (t) => {
  const dir = await scratch(t);
  const [width, height] = [2500, 1900];
  const data = pattern(width, height);
  const file = path.join(dir, 'mask.png');
  await raw(data, width, height).png({ adaptiveFiltering: true, compressionLevel: 9 }).toFile(file);
  const read = await readAll(file);
  t.is(read.width, width);
  t.is(read.height, height);
  t.true(read.bands > 1, `${read.bands} bands`);
  t.true(Buffer.from(read.data).equals(Buffer.from(data)));
});

for (const [depth, colourType] of [[1, 0], [2, 0], [4, 3], [8, 3]] as const) {
  test(`a ${colourType === 0 ? 'grey' : 'palette'} PNG of ${depth} bits per pixel reads back its samples as labels`, async (t) => {
    const dir = await scratch(t);
    const [width, height] = [13, 9]; // rows that end inside a byte
    const samples = Uint8Array.from({ length: width * height }, (_, i) => (i * 7 + (i >> 3)) % (1 << depth));
    const file = path.join(dir, 'mask.png');
    await writeFile(file, packedPng(width, height, depth, colourType, samples));
    const read = await readAll(file);
    t.deepEqual([read.width, read.height], [width, height]);
    t.deepEqual([...read.data], [...samples]);
  });
}

for (const [label, options] of [
  ['in strips, uncompressed', { compression: 'none' }],
  ['in strips, LZW with horizontal differencing', { compression: 'lzw', predictor: 'horizontal' }],
  ['in strips, PackBits', { compression: 'packbits' }],
  ['tiled 64×64, Deflate', { compression: 'deflate', tile: true, tileWidth: 64, tileHeight: 64 }],
] as const) {
  test(`a TIFF ${label} reads back pixel for pixel`, async (t) => {
    const dir = await scratch(t);
    const [width, height] = [301, 203];
    const data = pattern(width, height);
    const file = path.join(dir, 'mask.tif');
    await raw(data, width, height).tiff(options).toFile(file);
    const read = await readAll(file);
    t.deepEqual([read.width, read.height], [width, height]);
    t.true(Buffer.from(read.data).equals(Buffer.from(data)));
  });
}

test('16-bit, colour and JPEG-compressed masks are refused for their pixel format', async (t) => {
  const dir = await scratch(t);
  const sixteen = path.join(dir, 'sixteen.png');
  await sharp(new Uint16Array(16 * 16), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('grey16').png().toFile(sixteen);
  const colour = path.join(dir, 'colour.tif');
  await sharp({ create: { width: 16, height: 16, channels: 3, background: '#fff' } }).tiff().toFile(colour);
  const jpeg = path.join(dir, 'jpeg.tif');
  await raw(new Uint8Array(64 * 64), 64, 64).tiff({ compression: 'jpeg' }).toFile(jpeg);
  const codes = [];
  for (const file of [sixteen, colour, jpeg]) {
    const error = await t.throwsAsync(openMask(file, 'The mask'), { instanceOf: MaskError });
    codes.push([error.code, error.message]);
  }
  t.deepEqual(codes, [
    ['wrong_pixel_format', 'The mask is a PNG of 16-bit grey pixels; masks must be grey or palette images of 8 bits or fewer per pixel.'],
    ['wrong_pixel_format', 'The mask is a TIFF of 3 samples of 8 bits per pixel; masks must be 8-bit single-channel (grey) images.'],
    ['wrong_pixel_format', 'The mask is a TIFF compressed with scheme 7; masks must be uncompressed or losslessly compressed with Deflate, LZW or PackBits.'],
  ]);
});

test('a truncated PNG and a damaged one are unreadable, said while reading', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'cut.png');
  await raw(pattern(200, 200), 200, 200).png().toFile(file);
  const whole = await readFile(file);
  await truncate(file, Math.floor(whole.length / 2));
  const cut = await t.throwsAsync(readAll(file), { instanceOf: MaskError });
  t.is(cut.code, 'unreadable_image');
  t.regex(cut.message, /truncated PNG/);
  const damaged = Buffer.from(whole);
  damaged.fill(0x55, 60, 120); // inside the first IDAT
  await writeFile(file, damaged);
  const bad = await t.throwsAsync(readAll(file), { instanceOf: MaskError });
  t.is(bad.code, 'unreadable_image');
});

test('LZW decodes what the TIFF writer encodes, across table resets', (t) => {
  const data = pattern(700, 300); // 210 000 bytes: the 4096-code table fills and is cleared many times
  t.true(Buffer.from(lzwDecode(lzwEncode(data), data.length)).equals(Buffer.from(data)));
  t.true(Buffer.from(lzwDecode(lzwEncode(new Uint8Array(5000)), 5000)).equals(Buffer.alloc(5000)));
});

test('PackBits decodes the example of the TIFF 6.0 specification', (t) => {
  const packed = Uint8Array.from([0xfe, 0xaa, 0x02, 0x80, 0x00, 0x2a, 0xfd, 0xaa, 0x03, 0x80, 0x00, 0x2a, 0x22, 0xf7, 0xaa]);
  const unpacked = [0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0xaa, 0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0x22, ...new Array<number>(10).fill(0xaa)];
  t.deepEqual([...packBitsDecode(packed, 24)], unpacked);
});
