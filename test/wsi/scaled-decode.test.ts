import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ImplementationFn } from 'ava';
import { nativeTest as sharedNativeTest } from '../support/native.js';
import sharp from 'sharp';
import { scaledJpegCodec, scaledJpegUnavailable } from '../../server/wsi/decode/scaled-jpeg.js';
import { makeSlide } from '../support/slides.js';
import { readDirectories, type TiffDirectory } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { blank, paint } from '../../server/wsi/decode/pixels.js';
import { DeepZoom, OPENSLIDE_GRID, Slide, WsiError, type RgbImage, type TileRequest } from '../../server/wsi/index.js';
import { fixture, fixtureTest } from '../support/fixtures.js';
import { psnr } from '../support/openslide.js';

/**
 * Deep Zoom tiles that are exactly 2×2 stored JPEG tiles are decoded at half
 * size by libjpeg-turbo (native/scaled-jpeg) instead of in full and resized
 * with Lanczos. Decoded (both encoded at quality 100, so that the comparison
 * measures the filters rather than the encoder), the two agree to at least
 * MIN_PSNR, the bound the OpenSlide cross-check sets for our Lanczos against
 * OpenSlide's; and against the exact 2×2 mean of the full-resolution pixels
 * the scaled decode is at least as close as Lanczos, tile for tile in the
 * median. This holds for YCbCr slides (generated) and for Aperio's RGB tiles
 * without a colour transform (CMU-1-Small-Region), where a wrong colour space
 * would give about 10 dB.
 */
const MIN_PSNR = 30;

const nativeTest = (title: string, implementation: ImplementationFn<[]>) => sharedNativeTest(scaledJpegUnavailable(), title, implementation);

const out = mkdtemp(path.join(os.tmpdir(), 'slidebank-scaled-'));
const generated = out.then(async (dir) => (await makeSlide({ width: 6000, height: 4000, levels: 3, seed: 11, out: dir })).svs);
test.after.always(async () => rm(await out, { recursive: true, force: true }));

/** The mean of each factor×factor block: the reference both filters approximate. */
function areaMean(pixels: { width: number; data: Buffer }, factor: number, outWidth: number, outHeight: number): Buffer {
  const out = Buffer.alloc(outWidth * outHeight * 3);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let dy = 0; dy < factor; dy++) for (let dx = 0; dx < factor; dx++) sum += pixels.data[((y * factor + dy) * pixels.width + x * factor + dx) * 3 + c]!;
        out[(y * outWidth + x) * 3 + c] = Math.round(sum / (factor * factor));
      }
    }
  }
  return out;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Tiles of the slide's native grid that the scaled path serves (a spread sample), compared with the Lanczos path. */
async function compareScaledTiles(t: Parameters<ImplementationFn<[]>>[0], file: string, minimumTiles: number): Promise<void> {
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  const grid = DeepZoom.nativeGrid(slide);
  if (!grid) return void t.fail('the slide has no native grid');
  const fast = new DeepZoom(slide, grid);
  const lanczos = new DeepZoom(slide, grid, { scaledDecode: false });
  const requests: TileRequest[] = [];
  fast.levels.forEach((level, index) => {
    for (let row = 0; row < level.rows; row++) for (let col = 0; col < level.cols; col++) if (fast.source({ level: index, col, row }).scaled) requests.push({ level: index, col, row });
  });
  t.true(requests.length >= minimumTiles, `${requests.length} tiles take the scaled path`);
  const decode = async (body: Buffer) => sharp(body).raw().toBuffer({ resolveWithObject: true });
  const againstLanczos: number[] = [];
  const scaledToMean: number[] = [];
  const lanczosToMean: number[] = [];
  const step = Math.max(1, Math.floor(requests.length / 60));
  for (let i = 0; i < requests.length; i += step) {
    const request = requests[i]!;
    const source = fast.source(request);
    const a = await fast.tile(request, 'jpeg', 100);
    const b = await lanczos.tile(request, 'jpeg', 100);
    t.deepEqual([a.made, b.made], ['scaled', 'rendered']);
    t.notDeepEqual(a.body, b.body, 'the two paths really are different decoders');
    const [pa, pb] = [await decode(a.body), await decode(b.body)];
    t.deepEqual([pa.info.width, pa.info.height, pa.info.channels], [grid.tileSize, grid.tileSize, 3], `tile ${Object.values(request).join('/')}`);
    t.deepEqual([pb.info.width, pb.info.height], [grid.tileSize, grid.tileSize]);
    const full = await slide.readRegion(source.slideLevel, source.x, source.y, source.width, source.height);
    const mean = areaMean(full, source.scaled!.denominator, source.outWidth, source.outHeight);
    againstLanczos.push(psnr(pa.data, pb.data));
    scaledToMean.push(psnr(pa.data, mean));
    lanczosToMean.push(psnr(pb.data, mean));
  }
  const worst = Math.min(...againstLanczos);
  t.log(`${againstLanczos.length} tiles: PSNR scaled vs Lanczos worst ${worst.toFixed(1)} dB, median ${median(againstLanczos).toFixed(1)}; against the 2×2 mean, median scaled ${median(scaledToMean).toFixed(1)} dB, Lanczos ${median(lanczosToMean).toFixed(1)} dB`);
  t.true(worst >= MIN_PSNR, `worst PSNR against Lanczos ${worst.toFixed(1)} dB`);
  t.true(median(scaledToMean) >= median(lanczosToMean), 'the scaled decode is at least as close to the 2×2 mean as Lanczos');
}

test('only whole interior blocks of stored JPEG tiles at 2, 4 or 8 times the resolution take the scaled path', async (t) => {
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, DeepZoom.nativeGrid(slide)!);
  const top = dz.levels.length - 1;
  // One level below full resolution: 2×2 tiles of level 0.
  t.deepEqual(dz.source({ level: top - 1, col: 3, row: 2 }).scaled, { col: 6, row: 4, across: 2, down: 2, denominator: 2 });
  // Native levels pass through instead; the last column of a level is partly outside the image.
  t.is(dz.source({ level: top, col: 3, row: 2 }).scaled, undefined);
  const below = dz.levels[top - 1]!;
  t.is(dz.source({ level: top - 1, col: below.cols - 1, row: 0 }).scaled, undefined);
  // With overlap, tiles never line up with stored tiles.
  const overlapping = new DeepZoom(slide, { tileSize: 240, overlap: 1 });
  t.is(overlapping.source({ level: top - 1, col: 3, row: 2 }).scaled, undefined);
});

nativeTest('generated YCbCr slide: scaled tiles match the Lanczos tiles', async (t) => {
  await compareScaledTiles(t, await generated, 50);
});

if (!scaledJpegUnavailable()) {
  fixtureTest('CMU-1-Small-Region (RGB tiles without colour transform): scaled tiles match the Lanczos tiles', async (t) => {
    await compareScaledTiles(t, fixture('CMU-1-Small-Region.svs'), 10);
  });
}

nativeTest('png and webp tiles, and tiles with scaledDecode off, take the general path', async (t) => {
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const grid = DeepZoom.nativeGrid(slide)!;
  const request = { level: new DeepZoom(slide, grid).levels.length - 2, col: 1, row: 1 };
  const png = await new DeepZoom(slide, grid).tile(request, 'png', 90);
  const reference = await new DeepZoom(slide, grid, { scaledDecode: false }).tile(request, 'png', 90);
  t.deepEqual(png.body, reference.body);
});

nativeTest('the codec refuses bad input with a reason, and a damaged tile falls back to the decoder that names the fault', async (t) => {
  const codec = scaledJpegCodec()!;
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const good = await slide.readStoredJpeg(0, 0, 0);
  const notJpeg = await t.throwsAsync(codec.mosaic([good, Buffer.from('not a jpeg at all')], 2, 240, 240, 2, 80));
  t.regex(notJpeg?.message ?? '', /^tile 2 of 2: /);
  const wrongSize = await t.throwsAsync(codec.mosaic([good], 1, 256, 256, 2, 80));
  t.regex(wrongSize?.message ?? '', /tile 1 of 1 is 240x240, not 256x256/);
  t.throws(() => codec.mosaic([good, good, good], 2, 240, 240, 2, 80), { instanceOf: TypeError, message: /whole rows/ });
  t.throws(() => codec.mosaic([good], 1, 240, 240, 3 as 2, 80), { instanceOf: TypeError });
  t.throws(() => codec.mosaic([good, 'x' as unknown as Buffer], 2, 240, 240, 2, 80), { instanceOf: TypeError, message: /Buffer/ });
  // Truncated entropy data: a decoder warning, so the codec declines.
  const truncated = good.subarray(0, good.length - 200);
  await t.throwsAsync(codec.mosaic([truncated], 1, 240, 240, 2, 80));
  const bogus = Buffer.from(good);
  bogus.set([0xff, 0xc4, 0x00, 0x01], 2);
  const bogusError = await t.throwsAsync(codec.mosaic([bogus], 1, 240, 240, 2, 80));
  t.regex(bogusError?.message ?? '', /Bogus marker length/);
  // A failure leaves no decoder behind in a bad state: every pool thread decodes good tiles again.
  const mosaics = await Promise.all(Array.from({ length: 16 }, () => codec.mosaic([good, good, good, good], 2, 240, 240, 2, 80)));
  for (const mosaic of mosaics) t.like(await sharp(mosaic).metadata(), { format: 'jpeg', width: 240, height: 240 });
});

/**
 * A copy of the generated slide, named `name`, with one stored tile damaged: a
 * marker segment of length 1 right after its SOI (libjpeg's "Bogus marker
 * length"). `tileOffset` picks the tile from the file's directories.
 */
async function damagedCopy(name: string, tileOffset: (directories: TiffDirectory[]) => number): Promise<string> {
  const damaged = path.join(await out, name);
  await copyFile(await generated, damaged);
  const file = await RandomAccessFile.open(damaged);
  const directories = await readDirectories(file).finally(() => file.close());
  const handle = await open(damaged, 'r+');
  await handle.write(Buffer.from([0xff, 0xc4, 0x00, 0x01]), 0, 4, tileOffset(directories) + 2);
  await handle.close();
  return damaged;
}

nativeTest('a scaled tile over a damaged stored tile fails as the general path does: decode_failed, naming the tile and the fault', async (t) => {
  // (2, 6): inside the 2×2 block of Deep Zoom tile (1, 3) one level down
  const damaged = await damagedCopy('damaged.svs', ([level0]) => level0!.offsets[6 * level0!.tilesAcross + 2]!);

  const slide = await Slide.open(damaged);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, DeepZoom.nativeGrid(slide)!);
  const request = { level: dz.levels.length - 2, col: 1, row: 3 };
  t.deepEqual(dz.source(request).scaled, { col: 2, row: 6, across: 2, down: 2, denominator: 2 });
  const error = await t.throwsAsync(dz.tile(request, 'jpeg', 80), { instanceOf: WsiError });
  t.is(error?.code, 'decode_failed');
  t.regex(error?.message ?? '', /tile \(2, 6\) at level 0 cannot be decoded \(.*Bogus marker length/);
});

/** Stored tiles of `level` covering (0, 0)–(width, height), decoded one by one by the general path and laid side by side. */
async function composedByGeneralPath(slide: Slide, level: number, width: number, height: number): Promise<RgbImage> {
  const { tileWidth: tw, tileHeight: th } = slide.levels[level]!;
  const positions: [number, number][] = [];
  for (let row = 0; row * th < height; row++) for (let col = 0; col * tw < width; col++) positions.push([col, row]);
  const tiles = await slide.readTiles(level, positions);
  const out = blank(width, height);
  positions.forEach(([col, row], i) => paint(out, tiles[i]!, col * tw, row * th, Math.min(tw, width - col * tw), Math.min(th, height - row * th)));
  return out;
}

nativeTest('decode gives a block of stored tiles as RGB pixels, cropped to the size asked, as the general decoder does', async (t) => {
  const codec = scaledJpegCodec()!;
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const smallest = slide.levels.length - 1;
  const { width, height, tilesAcross, tilesDown } = slide.levels[smallest]!;
  t.deepEqual([width, height, tilesAcross, tilesDown], [375, 250, 2, 2], 'a level whose edge tiles carry padding');
  const jpegs = await Promise.all([0, 1].flatMap((row) => [0, 1].map((col) => slide.readStoredJpeg(smallest, col, row))));
  const pixels = await codec.decode(jpegs, 2, 240, 240, 1, width, height);
  t.is(pixels.length, width * height * 3);
  const reference = await composedByGeneralPath(slide, smallest, width, height);
  t.true(psnr(pixels, reference.data) >= 50, `${psnr(pixels, reference.data).toFixed(1)} dB`);
  // At half size: the 2×2 mean of the full decode, closely.
  const half = await codec.decode(jpegs, 2, 240, 240, 2, 187, 125);
  t.is(half.length, 187 * 125 * 3);
  t.true(psnr(half, areaMean(reference, 2, 187, 125)) >= 35, `${psnr(half, areaMean(reference, 2, 187, 125)).toFixed(1)} dB`);

  t.throws(() => codec.decode(jpegs, 2, 240, 240, 1, 481, 250), { instanceOf: TypeError, message: /must lie inside the mosaic/ });
  t.throws(() => codec.decode(jpegs, 2, 240, 240, 1, 0, 250), { instanceOf: TypeError });
  t.throws(() => codec.decode(jpegs, 2, 240, 240, 3 as 1, 80, 80), { instanceOf: TypeError, message: /denominator of 1, 2, 4 or 8/ });
  t.throws(() => codec.mosaic(jpegs, 2, 240, 240, 1 as 2, 80), { instanceOf: TypeError, message: /denominator of 2, 4 or 8/ });
  await t.throwsAsync(codec.decode([jpegs[0]!, Buffer.from('not a jpeg')], 2, 240, 240, 1, 480, 240), { message: /^tile 2 of 2: / });
});

/**
 * Every tile of OpenSlide's 254/1 grid whose source rectangle is 1, 2, 4 or 8
 * times the tile and starts on a multiple of that factor (a spread sample),
 * made by libjpeg-turbo (decoded, cut, encoded) and by the general path
 * (sharp, Lanczos): at full resolution the same decoder and encoder give the
 * same pixels; at reduced size the two filters agree to MIN_PSNR.
 */
async function compareCroppedTiles(t: Parameters<ImplementationFn<[]>>[0], file: string, minimumTiles: number): Promise<void> {
  const slide = await Slide.open(file);
  t.teardown(() => slide.close());
  const fast = new DeepZoom(slide, OPENSLIDE_GRID);
  const general = new DeepZoom(slide, OPENSLIDE_GRID, { scaledDecode: false });
  const requests: TileRequest[] = [];
  fast.levels.forEach((level, index) => {
    for (let row = 0; row < level.rows; row++) for (let col = 0; col < level.cols; col++) if (fast.source({ level: index, col, row }).cropped) requests.push({ level: index, col, row });
  });
  t.true(requests.length >= minimumTiles, `${requests.length} tiles take the cropped path`);
  const decode = async (body: Buffer) => sharp(body).raw().toBuffer({ resolveWithObject: true });
  const byFactor = new Map<number, number[]>();
  const step = Math.max(1, Math.floor(requests.length / 80));
  for (let i = 0; i < requests.length; i += step) {
    const request = requests[i]!;
    const source = fast.source(request);
    const a = await fast.tile(request, 'jpeg', 100);
    const b = await general.tile(request, 'jpeg', 100);
    t.deepEqual([a.made, b.made], ['cropped', 'rendered']);
    const [pa, pb] = [await decode(a.body), await decode(b.body)];
    t.deepEqual([pa.info.width, pa.info.height], [source.outWidth, source.outHeight], `tile ${Object.values(request).join('/')}`);
    const factor = source.cropped!.denominator;
    byFactor.set(factor, [...(byFactor.get(factor) ?? []), psnr(pa.data, pb.data)]);
  }
  t.log([...byFactor].map(([factor, values]) => `1/${factor}: ${values.length} tiles, worst ${Math.min(...values).toFixed(1)} dB`).join('; '));
  t.true(byFactor.has(1) && byFactor.has(2), 'tiles at full and at half resolution were compared');
  t.true(byFactor.get(1)!.every((value) => value === Infinity), 'at full resolution the pixels are the general path\'s');
  for (const [factor, values] of byFactor) t.true(Math.min(...values) >= MIN_PSNR, `1/${factor}: worst ${Math.min(...values).toFixed(1)} dB`);
}

nativeTest('generated slide, 254/1 grid: tiles cut from stored tiles by libjpeg-turbo match the general path', async (t) => {
  await compareCroppedTiles(t, await generated, 100);
});

if (!scaledJpegUnavailable()) {
  fixtureTest('CMU-1-Small-Region (RGB tiles), 254/1 grid: tiles cut by libjpeg-turbo match the general path', async (t) => {
    await compareCroppedTiles(t, fixture('CMU-1-Small-Region.svs'), 10);
  });
}

test('only tiles whose source is the tile at 1, 2, 4 or 8 times, on that factor\'s grid and inside the level, take the cropped path', async (t) => {
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  const top = dz.levels.length - 1;
  // Full resolution, tile (3, 2): level-0 pixels from (3·254 − 1, 2·254 − 1), 256 a side, across stored tiles 3–4 and 2–3.
  t.deepEqual(dz.source({ level: top, col: 3, row: 2 }).cropped, { col: 3, row: 2, across: 2, down: 2, denominator: 1, left: 41, top: 27, width: 256, height: 256 });
  // Half resolution: 512 level-0 pixels a side from (2·(254 − 1), 2·(2·254 − 1)), decoded at 1/2.
  t.deepEqual(dz.source({ level: top - 1, col: 1, row: 2 }).cropped, { col: 2, row: 4, across: 3, down: 3, denominator: 2, left: 13, top: 27, width: 256, height: 256 });
  // The last column is cut short at the image's edge, never reading the stored tile's padding.
  const last = dz.levels[top]!;
  t.deepEqual(dz.source({ level: top, col: last.cols - 1, row: 0 }).cropped, { col: 24, row: 0, across: 1, down: 2, denominator: 1, left: 81, top: 0, width: 159, height: 255 });
  // An odd width: the last column of the half-resolution level has one source pixel too few to halve, so it is resized.
  const odd = await Slide.open((await makeSlide({ width: 3001, height: 1999, levels: 2, seed: 3, out: await out })).svs);
  t.teardown(() => odd.close());
  const oddZoom = new DeepZoom(odd, OPENSLIDE_GRID);
  const half = oddZoom.levels.length - 2;
  const edge = oddZoom.source({ level: half, col: oddZoom.levels[half]!.cols - 1, row: 0 });
  t.deepEqual([edge.width, edge.outWidth], [2 * edge.outWidth - 1, edge.outWidth]);
  t.is(edge.cropped, undefined);
  t.truthy(oddZoom.source({ level: half, col: 0, row: 0 }).cropped);
  // The native grid's tiles that are stored or scaled tiles are not cropped.
  const native = new DeepZoom(slide, DeepZoom.nativeGrid(slide)!);
  t.like(native.source({ level: top, col: 3, row: 2 }), { stored: { col: 3, row: 2 }, cropped: undefined });
  t.like(native.source({ level: top - 1, col: 3, row: 2 }), { scaled: { col: 6, row: 4, across: 2, down: 2, denominator: 2 }, cropped: undefined });
});

nativeTest('crop cuts the rectangle asked from the mosaic, and refuses one outside it', async (t) => {
  const codec = scaledJpegCodec()!;
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const jpegs = await Promise.all([0, 1].flatMap((row) => [0, 1].map((col) => slide.readStoredJpeg(0, col, row))));
  const whole = await codec.decode(jpegs, 2, 240, 240, 1, 480, 480);
  const cut = await sharp(await codec.crop(jpegs, 2, 240, 240, 1, 100, 150, 256, 200, 100)).raw().toBuffer({ resolveWithObject: true });
  t.deepEqual([cut.info.width, cut.info.height], [256, 200]);
  const expected = Buffer.alloc(256 * 200 * 3);
  for (let row = 0; row < 200; row++) whole.copy(expected, row * 256 * 3, ((150 + row) * 480 + 100) * 3, ((150 + row) * 480 + 356) * 3);
  t.true(psnr(cut.data, expected) >= 40, `${psnr(cut.data, expected).toFixed(1)} dB after encoding at quality 100`);
  t.throws(() => codec.crop(jpegs, 2, 240, 240, 1, 300, 0, 256, 200, 80), { instanceOf: TypeError, message: /must lie inside the mosaic/ });
  t.throws(() => codec.crop(jpegs, 2, 240, 240, 2, 0, 0, 256, 200, 80), { instanceOf: TypeError, message: /must lie inside the mosaic/ });
  t.throws(() => codec.crop(jpegs, 2, 240, 240, 1, 2 ** 31 - 1, 0, 256, 200, 80), { instanceOf: TypeError, message: /must lie inside the mosaic/ }, 'a left edge whose sum with the width overflows 32 bits');
  t.throws(() => codec.crop(jpegs, 2, 240, 240, 1, 0, 0, 256, 200, 0), { instanceOf: TypeError, message: /quality must be 1-100/ });
  t.throws(() => (codec.crop as (...args: unknown[]) => unknown)(jpegs, 2, 240, 240, 1, 0, 0, 256, 200), { instanceOf: TypeError, message: /^crop\(tiles/ });
  await t.throwsAsync(codec.crop([jpegs[0]!, Buffer.from('not a jpeg')], 2, 240, 240, 1, 200, 0, 60, 60, 80), { message: /^tile 2 of 2: / });
});

nativeTest('a cropped tile over a damaged stored tile fails as the general path does: decode_failed, naming the tile and the fault', async (t) => {
  // (3, 2): inside 254/1 tile (3, 2) at full resolution
  const damaged = await damagedCopy('damaged-cropped.svs', ([level0]) => level0!.offsets[2 * level0!.tilesAcross + 3]!);

  const slide = await Slide.open(damaged);
  t.teardown(() => slide.close());
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  const request = { level: dz.levels.length - 1, col: 3, row: 2 };
  t.like(dz.source(request).cropped, { col: 3, row: 2, across: 2, down: 2 });
  const error = await t.throwsAsync(dz.tile(request, 'jpeg', 80), { instanceOf: WsiError });
  t.is(error?.code, 'decode_failed');
  t.regex(error?.message ?? '', /tile \(3, 2\) at level 0 cannot be decoded \(.*Bogus marker length/);
});

if (!scaledJpegUnavailable()) {
  fixtureTest('CMU-1-Small-Region (RGB tiles without colour transform): decode gives the general decoder\'s colours', async (t) => {
    const slide = await Slide.open(fixture('CMU-1-Small-Region.svs'));
    t.teardown(() => slide.close());
    const jpegs = await Promise.all([0, 1, 2].flatMap((row) => [0, 1, 2].map((col) => slide.readStoredJpeg(0, col, row))));
    const pixels = await scaledJpegCodec()!.decode(jpegs, 3, 240, 240, 1, 700, 720);
    const reference = await composedByGeneralPath(slide, 0, 700, 720);
    // A wrong colour space would give about 10 dB.
    t.true(psnr(pixels, reference.data) >= 50, `${psnr(pixels, reference.data).toFixed(1)} dB`);
  });
}

nativeTest('the smallest level, kept decoded for the overview levels, has the general decoder\'s pixels', async (t) => {
  const slide = await Slide.open(await generated);
  t.teardown(() => slide.close());
  const smallest = slide.levels.length - 1;
  const { width, height } = slide.levels[smallest]!;
  await slide.warmOverview();
  const overview = await slide.readRegion(smallest, 0, 0, width, height);
  const reference = await composedByGeneralPath(slide, smallest, width, height);
  t.true(psnr(overview.data, reference.data) >= 50, `${psnr(overview.data, reference.data).toFixed(1)} dB`);
});

nativeTest('a damaged tile in the smallest level fails the overview as the general path does: decode_failed, naming the tile', async (t) => {
  const slide0 = await Slide.open(await generated);
  const smallest = slide0.levels.length - 1;
  const { width, height } = slide0.levels[smallest]!;
  await slide0.close();
  // The smallest level is the last tiled directory of the pyramid (before the label and macro).
  const damaged = await damagedCopy('damaged-overview.svs', (directories) => directories.filter((d) => d.tiled && d.width === width && d.height === height)[0]!.offsets[1]!);

  const slide = await Slide.open(damaged);
  t.teardown(() => slide.close());
  const error = await t.throwsAsync(slide.readRegion(smallest, 0, 0, width, height), { instanceOf: WsiError });
  t.is(error?.code, 'decode_failed');
  t.regex(error?.message ?? '', /tile \(1, 0\) at level 2 cannot be decoded/);
});
