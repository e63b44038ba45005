/**
 * Levels whose stored tiles are long (here 1024 pixels square; a slide
 * published from an NDPI with full-row restart intervals has 3968×64) are
 * rendered from the decoded-tile cache, so that neighbouring renders decode
 * each stored tile once. The pixels must be those of the stored tiles: each
 * render is compared with libvips decoding the whole level independently.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { makeSlide } from '../support/slides.js';
import { psnr } from '../support/openslide.js';
import { scaledJpegCodec } from '../../server/wsi/decode/scaled-jpeg.js';
import { DecodedTileCache, DeepZoom, OPENSLIDE_GRID, scaledJpegUnavailable, Slide } from '../../server/wsi/index.js';

const out = mkdtemp(path.join(os.tmpdir(), 'slidebank-long-tiles-'));
/** 3000×2200 with 1024-pixel tiles: three tiles across, partial at the right and bottom edges. */
const slideFile = out.then(async (dir) => (await makeSlide({ width: 3000, height: 2200, levels: 1, seed: 12, out: dir, tileSize: 1024 })).svs);
test.after.always(async () => rm(await out, { recursive: true, force: true }));

async function wholeLevel(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file, { page: 0, limitInputPixels: false }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function crop(image: { data: Buffer; width: number }, x: number, y: number, width: number, height: number): Buffer {
  const rows: Buffer[] = [];
  for (let r = 0; r < height; r++) rows.push(image.data.subarray(((y + r) * image.width + x) * 3, ((y + r) * image.width + x + width) * 3));
  return Buffer.concat(rows);
}

test('renders of a level with long tiles are the stored pixels, and neighbouring renders decode each stored tile once', async (t) => {
  const file = await slideFile;
  const cache = new DecodedTileCache(256 * 1024 * 1024);
  const slide = await Slide.open(file, { tileCache: cache });
  t.teardown(() => slide.close());
  t.is(slide.levels[0]!.tileWidth, 1024);
  const reference = await wholeLevel(file);
  t.is(reference.width, 3000);

  // Deep Zoom sized regions: inside one tile, across a tile corner, at the right and bottom edges.
  const regions = [
    [100, 100, 254, 254],
    [900, 900, 256, 256],
    [1000, 30, 254, 254],
    [2800, 2000, 200, 200],
    [2746, 1946, 254, 254],
  ] as const;
  for (const [x, y, width, height] of regions) {
    const rendered = await slide.renderRegion(0, x, y, width, height, (image) => image.raw().toBuffer());
    t.true(rendered.equals(crop(reference, x, y, width, height)), `region ${width}×${height} at (${x}, ${y})`);
    const read = await slide.readRegion(0, x, y, width, height);
    t.true(read.data.equals(crop(reference, x, y, width, height)), `readRegion ${width}×${height} at (${x}, ${y})`);
  }
  // Five regions over tiles (0,0), (0,0)-(1,1), (0,0)-(1,0), (2,1)-(2,2): the six stored tiles they touch, each decoded once.
  t.is(cache.size.entries, 6);
});

test('Deep Zoom tiles of a long-tile level at full resolution are cut from the decoded-tile cache and encoded by libjpeg-turbo, with the general path\'s pixels', async (t) => {
  if (scaledJpegUnavailable()) {
    if (process.env.CI || process.env.SLIDEBANK_REQUIRE_NATIVE === '1') return void t.fail(scaledJpegUnavailable());
    return void t.pass(`the scaled-JPEG addon is not built (${scaledJpegUnavailable()}): both paths are the general one`);
  }
  const slide = await Slide.open(await slideFile, { tileCache: new DecodedTileCache(256 * 1024 * 1024) });
  t.teardown(() => slide.close());
  const fast = new DeepZoom(slide, OPENSLIDE_GRID);
  const general = new DeepZoom(slide, OPENSLIDE_GRID, { scaledDecode: false });
  const top = fast.levels.length - 1;
  const reference = await wholeLevel(await slideFile);
  // Inside one stored tile, across a corner of four, and at the right edge.
  for (const [col, row] of [[1, 1], [4, 4], [fast.levels[top]!.cols - 1, 2]] as const) {
    const request = { level: top, col, row };
    const source = fast.source(request);
    const a = await fast.tile(request, 'jpeg', 100);
    const b = await general.tile(request, 'jpeg', 100);
    t.deepEqual([a.made, b.made], ['cropped', 'rendered'], `tile ${col}_${row}`);
    const pa = await sharp(a.body).raw().toBuffer();
    t.true(pa.equals(await sharp(b.body).raw().toBuffer()), `tile ${col}_${row}: the pixels of the general path`);
    // Encoded at quality 100 from the stored pixels: close to them (4:2:0 chroma keeps it from equal).
    t.is(pa.length, source.width * source.height * 3);
    const stored = crop(reference, source.x, source.y, source.width, source.height);
    t.true(psnr(pa, stored) >= 35, `tile ${col}_${row}: ${psnr(pa, stored).toFixed(1)} dB against the stored pixels`);
  }
  // Half resolution needs a resize: the general path.
  const half = await fast.tile({ level: top - 1, col: 1, row: 1 }, 'jpeg', 80);
  t.is(half.made, 'rendered');
});

test('encode refuses pixels that are not width × height RGB', async (t) => {
  const codec = scaledJpegCodec();
  if (!codec) return void (process.env.CI || process.env.SLIDEBANK_REQUIRE_NATIVE === '1' ? t.fail(scaledJpegUnavailable()) : t.pass('the addon is not built'));
  const pixels = Buffer.alloc(10 * 8 * 3, 128);
  const jpeg = await codec.encode(pixels, 10, 8, 90);
  t.like(await sharp(jpeg).metadata(), { format: 'jpeg', width: 10, height: 8 });
  t.throws(() => codec.encode(pixels, 10, 9, 90), { instanceOf: TypeError, message: /width x height RGB pixels/ });
  t.throws(() => codec.encode(pixels, 10, 8, 0), { instanceOf: TypeError, message: /quality must be 1-100/ });
  t.throws(() => codec.encode('pixels' as unknown as Buffer, 10, 8, 90), { instanceOf: TypeError, message: /must be a Buffer/ });
});
