import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { makeSlide, SlideOptionsError, type MakeSlideOptions, type SlideTruth } from '../../server/wsi/generate/index.js';
import { abbreviateJpeg } from '../../server/wsi/generate/jpeg-tables.js';
import { renderLabel } from '../../server/wsi/generate/label.js';
import { PixelClass, TissueRenderer, generateLayout, type Point } from '../../server/wsi/generate/tissue.js';
import { Compression, Photometric, TiffWriter, horizontalDifference, lzwEncode } from '../../server/wsi/tiff/writer.js';
import { openslideTest } from '../support/openslide.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-generate-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

// ---------------------------------------------------------------------------
// A small, independent TIFF/BigTIFF reader, so that the tests do not trust the writer.

interface Field {
  type: number;
  count: number;
  numbers: number[];
  bytes: Buffer;
  /** Where the value lives (the entry itself when inline). */
  valueOffset: number;
  inline: boolean;
}
interface Ifd {
  offset: number;
  tags: number[];
  fields: Map<number, Field>;
}
interface ParsedTiff {
  version: 42 | 43;
  ifds: Ifd[];
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 16: 8 };

function parseTiff(buf: Buffer): ParsedTiff {
  if (buf.toString('latin1', 0, 2) !== 'II') throw new Error('not little-endian TIFF');
  const version = buf.readUInt16LE(2);
  if (version !== 42 && version !== 43) throw new Error(`bad version ${version}`);
  const big = version === 43;
  const offsetAt = (at: number) => (big ? Number(buf.readBigUInt64LE(at)) : buf.readUInt32LE(at));
  let next = big ? offsetAt(8) : offsetAt(4);
  const ifds: Ifd[] = [];
  while (next !== 0) {
    const offset = next;
    const count = big ? Number(buf.readBigUInt64LE(offset)) : buf.readUInt16LE(offset);
    let p = offset + (big ? 8 : 2);
    const tags: number[] = [];
    const fields = new Map<number, Field>();
    for (let i = 0; i < count; i++) {
      const tag = buf.readUInt16LE(p);
      const type = buf.readUInt16LE(p + 2);
      const n = big ? Number(buf.readBigUInt64LE(p + 4)) : buf.readUInt32LE(p + 4);
      const field = p + (big ? 12 : 8);
      const size = n * (TYPE_SIZE[type] ?? 1);
      const inline = size <= (big ? 8 : 4);
      const valueOffset = inline ? field : offsetAt(field);
      const bytes = buf.subarray(valueOffset, valueOffset + size);
      const numbers: number[] = [];
      for (let k = 0; k < (type === 5 ? n * 2 : n); k++) {
        if (type === 3) numbers.push(bytes.readUInt16LE(k * 2));
        else if (type === 4 || type === 5) numbers.push(bytes.readUInt32LE(k * 4));
        else if (type === 16) numbers.push(Number(bytes.readBigUInt64LE(k * 8)));
      }
      tags.push(tag);
      fields.set(tag, { type, count: n, numbers, bytes, valueOffset, inline });
      p += big ? 20 : 12;
    }
    ifds.push({ offset, tags, fields });
    next = offsetAt(p);
  }
  return { version, ifds };
}

const num = (ifd: Ifd, tag: number) => ifd.fields.get(tag)?.numbers[0];
const text = (ifd: Ifd, tag: number) => ifd.fields.get(tag)?.bytes.toString('latin1').replace(/\0$/, '');

/** JPEG marker codes before the first scan, and the SOF's size. */
function jpegMarkers(stream: Buffer): { markers: number[]; width: number; height: number } {
  const markers: number[] = [];
  let width = 0;
  let height = 0;
  let i = 2;
  while (i + 4 <= stream.length && stream[i] === 0xff) {
    const m = stream[i + 1]!;
    markers.push(m);
    if (m === 0xc0) {
      height = stream.readUInt16BE(i + 5);
      width = stream.readUInt16BE(i + 7);
    }
    if (m === 0xda) break;
    i += 2 + stream.readUInt16BE(i + 2);
  }
  return { markers, width, height };
}

// ---------------------------------------------------------------------------
// Geometry, written here again so that the tests check the generator's own.

function inside(ring: readonly Point[], x: number, y: number): boolean {
  let odd = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) odd = !odd;
  }
  return odd;
}

function distanceToRing(ring: readonly Point[], x: number, y: number): number {
  let best = Infinity;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [ax, ay] = ring[j]!;
    const [bx, by] = ring[i]!;
    const dx = bx - ax;
    const dy = by - ay;
    const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy || 1)));
    best = Math.min(best, Math.hypot(x - (ax + t * dx), y - (ay + t * dy)));
  }
  return best;
}

function shoelace(ring: readonly Point[]): number {
  let s = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) s += ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
  return Math.abs(s) / 2;
}

function perimeter(ring: readonly Point[]): number {
  let s = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) s += Math.hypot(ring[i]![0] - ring[j]![0], ring[i]![1] - ring[j]![1]);
  return s;
}

type Expected = 'background' | 'tissue' | 'tumour';

/** The class of a level-0 point according to the truth polygons, or undefined within `margin` of an outline. */
function truthClass(truth: SlideTruth, x: number, y: number, margin: number): Expected | undefined {
  const rings = [...truth.tissue, ...truth.tumours.flatMap((t) => [t.outer, ...t.holes])];
  if (rings.some((ring) => distanceToRing(ring, x, y) < margin)) return undefined;
  if (x < margin || y < margin || x > truth.width - margin || y > truth.height - margin) return undefined;
  const tumour = truth.tumours.some((t) => inside(t.outer, x, y) && !t.holes.some((h) => inside(h, x, y)));
  if (tumour) return 'tumour';
  return truth.tissue.some((ring) => inside(ring, x, y)) ? 'tissue' : 'background';
}

/** A few points of each class, at least `margin` level-0 px from any outline, spread over the slide. */
function samplePoints(truth: SlideTruth, margin: number, perClass = 4): { x: number; y: number; expected: Expected }[] {
  const found: Record<Expected, { x: number; y: number }[]> = { background: [], tissue: [], tumour: [] };
  const step = Math.max(8, Math.floor(Math.min(truth.width, truth.height) / 60));
  for (let y = step; y < truth.height; y += step) {
    for (let x = step; x < truth.width; x += step) {
      const cls = truthClass(truth, x, y, margin);
      if (cls) found[cls].push({ x, y });
    }
  }
  const out: { x: number; y: number; expected: Expected }[] = [];
  for (const cls of ['background', 'tissue', 'tumour'] as const) {
    const list = found[cls];
    if (list.length === 0) throw new Error(`no ${cls} point ${margin} px away from every outline`);
    for (let k = 0; k < perClass; k++) out.push({ ...list[Math.floor((k * list.length) / perClass)]!, expected: cls });
  }
  return out;
}

/** The point of the hole farthest from its outline, and that distance. */
function holeCentre(truth: SlideTruth): { x: number; y: number; room: number } {
  const hole = truth.tumours.flatMap((t) => t.holes)[0]!;
  const xs = hole.map((p) => p[0]);
  const ys = hole.map((p) => p[1]);
  let best = { x: 0, y: 0, room: -1 };
  for (let y = Math.min(...ys); y <= Math.max(...ys); y += 2) {
    for (let x = Math.min(...xs); x <= Math.max(...xs); x += 2) {
      if (!inside(hole, x, y)) continue;
      const room = distanceToRing(hole, x, y);
      if (room > best.room) best = { x, y, room };
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// OpenSlide through Debian's python3-openslide

const PYTHON = '/usr/bin/python3';

interface Window {
  level: number;
  /** Top-left in level-0 pixels, as read_region takes it. */
  x: number;
  y: number;
  size: number;
}

interface OpenSlideReport {
  vendor: string;
  levelCount: number;
  dimensions: [number, number][];
  downsamples: number[];
  associated: Record<string, [number, number]>;
  properties: Record<string, string>;
  means: [number, number, number][];
  regionSha256: string[];
  labelSha256: string;
  macroLabelDifference: number;
  thumbnailMeans: [number, number, number][];
}

const OPENSLIDE_SCRIPT = `
import hashlib, json, sys
import openslide
from PIL import ImageChops, ImageStat
path, windows, thumb_points, label_top = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
s = openslide.OpenSlide(path)
means, shas = [], []
for w in windows:
    img = s.read_region((w['x'], w['y']), w['level'], (w['size'], w['size'])).convert('RGB')
    means.append(ImageStat.Stat(img).mean)
    shas.append(hashlib.sha256(img.tobytes()).hexdigest())
label = s.associated_images['label'].convert('RGB')
macro = s.associated_images['macro'].convert('RGB')
crop = macro.crop((16, label_top, 16 + label.width, label_top + label.height))
thumb = s.associated_images['thumbnail'].convert('RGB')
print(json.dumps({
    'vendor': openslide.OpenSlide.detect_format(path),
    'levelCount': s.level_count,
    'dimensions': s.level_dimensions,
    'downsamples': s.level_downsamples,
    'associated': {k: v.size for k, v in s.associated_images.items()},
    'properties': dict(s.properties),
    'means': means,
    'regionSha256': shas,
    'labelSha256': hashlib.sha256(label.tobytes()).hexdigest(),
    'macroLabelDifference': sum(ImageStat.Stat(ImageChops.difference(crop, label)).mean) / 3,
    'thumbnailMeans': [ImageStat.Stat(thumb.crop((p[0] - 2, p[1] - 2, p[0] + 3, p[1] + 3))).mean for p in thumb_points],
}))
`;

function openslideReport(svs: string, windows: Window[], thumbPoints: [number, number][] = []): OpenSlideReport {
  const result = spawnSync(PYTHON, ['-c', OPENSLIDE_SCRIPT, svs, JSON.stringify(windows), JSON.stringify(thumbPoints), String(Math.floor((431 - 400) / 2))], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`openslide failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as OpenSlideReport;
}

// ---------------------------------------------------------------------------
// Slides shared by the tests, made once per file

const made = new Map<string, Promise<{ dir: string; svs: string; xml: string; truthFile: string; truth: SlideTruth }>>();
function slide(key: string, options: Omit<MakeSlideOptions, 'out'>) {
  let entry = made.get(key);
  if (!entry) {
    entry = (async () => {
      const dir = await tempDir();
      const result = await makeSlide({ ...options, out: dir });
      const truth = JSON.parse(await readFile(result.truth, 'utf8')) as SlideTruth;
      return { dir, svs: result.svs, xml: result.xml, truthFile: result.truth, truth };
    })();
    made.set(key, entry);
  }
  return entry;
}
const standard = () => slide('standard', { width: 3000, height: 2000, seed: 7 });
const odd = () => slide('odd', { width: 2049, height: 1537, tileSize: 256, seed: 3 });

// ---------------------------------------------------------------------------
// The TIFF writer

test('tiff writer: a stripped RGB image reads back pixel for pixel, as classic TIFF and as BigTIFF', async (t) => {
  const dir = await tempDir();
  const width = 37;
  const height = 23;
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + (i >> 5)) & 0xff;
  for (const bigtiff of [false, true]) {
    const file = path.join(dir, `plain-${bigtiff}.tif`);
    const writer = await TiffWriter.create(file, { bigtiff });
    const image = writer.beginImage({ width, height, rowsPerStrip: 8, compression: Compression.None, photometric: Photometric.RGB, description: 'odd' });
    for (let y = 0; y < height; y += 8) await image.write(pixels.subarray(y * width * 3, Math.min(height, y + 8) * width * 3));
    image.end();
    await writer.close();
    t.is(writer.format, bigtiff ? 'bigtiff' : 'classic');
    const parsed = parseTiff(await readFile(file));
    t.is(parsed.version, bigtiff ? 43 : 42);
    t.deepEqual(parsed.ifds[0]!.tags, [...parsed.ifds[0]!.tags].sort((a, b) => a - b), 'tags in ascending order');
    t.is(parsed.ifds[0]!.fields.get(273)!.type, bigtiff ? 16 : 4, 'strip offsets are LONG8 in BigTIFF');
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    t.deepEqual([info.width, info.height, info.channels], [width, height, 3]);
    t.true(data.equals(pixels));
  }
});

test('tiff writer: LZW with the horizontal predictor round-trips through libtiff, across code-width changes and table resets', async (t) => {
  const dir = await tempDir();
  const width = 300;
  const height = 200;
  const pixels = Buffer.alloc(width * height * 3);
  // Runs of colour with noise: long enough for 12-bit codes and several Clear codes per strip.
  for (let i = 0; i < width * height; i++) {
    const v = ((i % width) >> 4) * 13 + ((i * 2654435761) >>> 29);
    pixels[i * 3] = v & 0xff;
    pixels[i * 3 + 1] = (v * 3) & 0xff;
    pixels[i * 3 + 2] = (i / width) & 0xff;
  }
  const rows = 100;
  const file = path.join(dir, 'lzw.tif');
  const writer = await TiffWriter.create(file);
  const image = writer.beginImage({ width, height, rowsPerStrip: rows, compression: Compression.LZW, photometric: Photometric.RGB, predictor: 2 });
  for (let y = 0; y < height; y += rows) {
    const strip = Buffer.from(pixels.subarray(y * width * 3, (y + rows) * width * 3));
    await image.write(lzwEncode(horizontalDifference(strip, width)));
  }
  image.end();
  await writer.close();
  const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  t.true(data.equals(pixels));
  t.true(lzwEncode(new Uint8Array(0)).length > 0);
});

test('tiff writer: switches to BigTIFF by itself when an offset would not fit in 32 bits', async (t) => {
  const dir = await tempDir();
  const file = path.join(dir, 'auto.tif');
  const writer = await TiffWriter.create(file, { classicLimit: 200 });
  const image = writer.beginImage({ width: 16, height: 16, compression: Compression.None, photometric: Photometric.RGB });
  await image.write(Buffer.alloc(16 * 16 * 3, 200));
  image.end();
  await writer.close();
  t.is(writer.format, 'bigtiff');
  t.is(parseTiff(await readFile(file)).version, 43);
  const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  t.true(data.every((v) => v === 200));
});

test('tiff writer: refuses tiles that are not multiples of 16, extra chunks, and early ends', async (t) => {
  const dir = await tempDir();
  const writer = await TiffWriter.create(path.join(dir, 'bad.tif'));
  t.throws(() => writer.beginImage({ width: 100, height: 100, tile: { width: 250, height: 250 }, compression: 7, photometric: 6 }), {
    message: /multiples of 16/,
  });
  const image = writer.beginImage({ width: 16, height: 16, compression: Compression.None, photometric: Photometric.RGB });
  t.throws(() => image.end(), { message: /after 0 of 1/ });
  await image.write(Buffer.alloc(768));
  await t.throwsAsync(image.write(Buffer.alloc(768)), { message: /already has all/ });
  image.end();
  await writer.abort();
});

test('abbreviated JPEG: tables hold DQT and DHT only, the stream SOF and SOS without tables or APPn', async (t) => {
  const raw = Buffer.alloc(32 * 32 * 3, 128);
  const jpeg = await sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
  const { tables, stream } = abbreviateJpeg(jpeg);
  const tableMarkers = jpegMarkers(tables).markers;
  t.true(tableMarkers.every((m) => m === 0xdb || m === 0xc4));
  t.deepEqual(tables.subarray(-2), Buffer.from([0xff, 0xd9]));
  const { markers } = jpegMarkers(stream);
  t.deepEqual(markers, [0xc0, 0xda]);
  // Tables + stream make a JPEG any decoder reads.
  const whole = Buffer.concat([tables.subarray(0, -2), stream.subarray(2)]);
  const decoded = await sharp(whole).raw().toBuffer();
  t.true(decoded.every((v) => Math.abs(v - 128) <= 2));
});

// ---------------------------------------------------------------------------
// Tissue

test('tissue: tumours lie inside tissue, the hole inside its tumour, and the renderer agrees with the polygons', (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const layout = generateLayout(4000, 2500, seed);
    t.true(layout.tissue.length >= 2, `seed ${seed}: at least two tissue sections`);
    t.true(layout.tumours.length >= 2);
    t.is(layout.tumours.filter((tm) => tm.holes.length > 0).length, 1, 'exactly one tumour has a hole');
    for (const tumour of layout.tumours) {
      t.true(tumour.outer.every(([x, y]) => layout.tissue.some((ring) => inside(ring, x, y))), `seed ${seed}: tumour inside tissue`);
      for (const hole of tumour.holes) t.true(hole.every(([x, y]) => inside(tumour.outer, x, y)), `seed ${seed}: hole inside tumour`);
    }
    const renderer = new TissueRenderer(layout);
    const colours = renderer.meanColours();
    const truth = { ...layout, tumours: layout.tumours } as unknown as SlideTruth;
    for (const p of samplePoints(truth, 40, 3)) {
      t.is(renderer.classAt(p.x, p.y), PixelClass[p.expected]);
      // A 32×32 patch at level 0 and an 8×8 one at downsample 4 average close to the class colour.
      for (const scale of [1, 4]) {
        const size = 32 / scale;
        const out = Buffer.alloc(size * size * 3);
        const region = { x: Math.round((p.x - 16) / scale), y: Math.round((p.y - 16) / scale), width: size, height: size, scaleX: scale, scaleY: scale };
        renderer.render(region, out);
        const mean = [0, 1, 2].map((c) => {
          let s = 0;
          for (let i = c; i < out.length; i += 3) s += out[i]!;
          return s / (size * size);
        });
        t.is(nearestClass(mean, colours), p.expected, `seed ${seed} (${p.x},${p.y}) scale ${scale}`);
      }
    }
  }
});

/** Hue in degrees (0–360) and HSV saturation of an RGB pixel. */
function hueOf(r: number, g: number, b: number): { hue: number; saturation: number } {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  if (d === 0) return { hue: 0, saturation: 0 };
  let hue = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  hue *= 60;
  if (hue < 0) hue += 360;
  return { hue, saturation: d / max };
}
/** DAB: brown, hue 10–50°, clearly saturated and not pale. */
const isBrown = (r: number, g: number, b: number) => {
  const { hue, saturation } = hueOf(r, g, b);
  return hue >= 10 && hue <= 50 && saturation >= 0.35 && Math.max(r, g, b) < 200;
};
/** Haematoxylin: blue to blue-violet, hue 200–260°. */
const isBlue = (r: number, g: number, b: number) => {
  const { hue, saturation } = hueOf(r, g, b);
  return hue >= 200 && hue <= 260 && saturation >= 0.25;
};
/** Eosin and H&E nuclei: pink to purple, hue 265–345°. */
const isPinkOrPurple = (r: number, g: number, b: number) => {
  const { hue, saturation } = hueOf(r, g, b);
  return hue >= 265 && hue <= 345 && saturation >= 0.15;
};

test('tissue: IHC renders as H-DAB (brown DAB in the positive tumour, blue haematoxylin elsewhere, no pink); H&E stays pink and purple', (t) => {
  for (const seed of [1, 2, 3]) {
    const layout = generateLayout(4000, 2500, seed);
    const truth = { ...layout } as unknown as SlideTruth;
    const points = samplePoints(truth, 100, 3).filter((p) => p.expected !== 'background');
    const renderers = { ihc: new TissueRenderer(layout, 'ihc'), he: new TissueRenderer(layout, 'he') };
    for (const p of points) {
      for (const [stain, renderer] of Object.entries(renderers)) {
        const size = 96;
        const out = Buffer.alloc(size * size * 3);
        renderer.render({ x: p.x - size / 2, y: p.y - size / 2, width: size, height: size, scaleX: 1, scaleY: 1 }, out);
        let brown = 0;
        let blue = 0;
        let pink = 0;
        for (let i = 0; i < out.length; i += 3) {
          const [r, g, b] = [out[i]!, out[i + 1]!, out[i + 2]!];
          if (isBrown(r, g, b)) brown++;
          if (isBlue(r, g, b)) blue++;
          if (isPinkOrPurple(r, g, b)) pink++;
        }
        const share = (n: number) => n / (size * size);
        const where = `seed ${seed} ${stain} ${p.expected} (${p.x},${p.y}): brown ${share(brown).toFixed(3)}, blue ${share(blue).toFixed(3)}, pink ${share(pink).toFixed(3)}`;
        if (stain === 'he') {
          t.is(brown, 0, where);
          t.true(share(pink) > 0.5, where);
        } else if (p.expected === 'tumour') {
          t.true(share(brown) > 0.08, `DAB in the positive tumour: ${where}`);
          t.true(share(brown) > share(blue), where);
          t.is(pink, 0, where);
        } else {
          t.is(brown, 0, `no DAB outside the tumour: ${where}`);
          t.true(share(blue) > 0.01, `haematoxylin nuclei: ${where}`);
          t.is(pink, 0, where);
        }
      }
    }
    // Seen whole (the thumbnail's scale), the tumour is brown and the tissue blue-grey.
    const colours = renderers.ihc.meanColours();
    const tumourHue = hueOf(...colours.tumour).hue;
    const tissueHue = hueOf(...colours.tissue).hue;
    t.true(tumourHue >= 10 && tumourHue <= 50, `tumour mean ${colours.tumour.join(',')} (hue ${tumourHue.toFixed(0)})`);
    t.true(tissueHue >= 200 && tissueHue <= 280, `tissue mean ${colours.tissue.join(',')} (hue ${tissueHue.toFixed(0)})`);
  }
});

test('tissue: the IHC rendering is deterministic and leaves H&E as it was', (t) => {
  const layout = generateLayout(2000, 1500, 9);
  const region = { x: 0, y: 0, width: 500, height: 375, scaleX: 4, scaleY: 4 };
  const paint = (stain?: 'he' | 'ihc') => {
    const out = Buffer.alloc(region.width * region.height * 3);
    new TissueRenderer(layout, stain).render(region, out);
    return createHash('sha256').update(out).digest('hex');
  };
  t.is(paint('ihc'), paint('ihc'));
  t.is(paint('he'), paint());
  t.not(paint('ihc'), paint('he'));
});

function nearestClass(mean: number[], colours: SlideTruth['colours']): Expected {
  let best: Expected = 'background';
  let bestDistance = Infinity;
  for (const cls of ['background', 'tissue', 'tumour'] as const) {
    const d = Math.hypot(...colours[cls].map((v, i) => v - mean[i]!));
    if (d < bestDistance) [best, bestDistance] = [cls, d];
  }
  return best;
}

test('tissue: a region the class map calls background is background pixel for pixel; mixed regions follow the outlines', (t) => {
  const layout = generateLayout(3000, 2000, 11);
  const renderer = new TissueRenderer(layout);
  let background = 0;
  let mixed = 0;
  for (let y = 0; y < 2000; y += 240) {
    for (let x = 0; x < 3000; x += 240) {
      const region = { x, y, width: 240, height: 240, scaleX: 1, scaleY: 1 };
      const kind = renderer.regionKind(region);
      const out = Buffer.alloc(240 * 240 * 3);
      renderer.render(region, out);
      if (kind === 'background') {
        background++;
        for (let i = 0; i < out.length; i += 3) if (out[i] !== 243 || out[i + 1] !== 242 || out[i + 2] !== 240) return t.fail(`tile ${x},${y}`);
      } else if (kind === 'mixed') {
        mixed++;
        // Sample pixels: glass colour exactly where the polygons say background.
        for (let k = 0; k < 200; k++) {
          const px = (k * 37) % 240;
          const py = (k * 101) % 240;
          const i = (py * 240 + px) * 3;
          const isGlass = out[i] === 243 && out[i + 1] === 242 && out[i + 2] === 240;
          const cls = renderer.classAt(x + px + 0.5, y + py + 0.5);
          if (cls === 0) t.true(isGlass, `(${x + px},${y + py}) should be glass`);
        }
      }
    }
  }
  t.true(background > 10 && mixed > 5, `${background} background and ${mixed} mixed tiles`);
});

// ---------------------------------------------------------------------------
// The slide

test('determinism: the same seed gives byte-identical files; another seed gives other content', async (t) => {
  const first = await standard();
  const again = await slide('standard-again', { width: 3000, height: 2000, seed: 7 });
  const other = await slide('other-seed', { width: 3000, height: 2000, seed: 8 });
  for (const kind of ['svs', 'xml', 'truthFile'] as const) {
    const a = await readFile(first[kind]);
    t.true(a.equals(await readFile(again[kind])), `${kind} is identical`);
    t.false(a.equals(await readFile(other[kind])), `${kind} differs with another seed`);
  }
  t.notDeepEqual(first.truth.tissue, other.truth.tissue);
  t.notDeepEqual(first.truth.identifying, other.truth.identifying);
});

test('the truth records the slide: size, pyramid, identifying fields, label text, polygons and areas', async (t) => {
  const { truth, dir } = await standard();
  t.like(truth, { width: 3000, height: 2000, mpp: 0.499, objectivePower: 20, tileSize: 240, seed: 7, quality: 75, tiff: 'classic' });
  t.deepEqual(truth.levels, [
    { width: 3000, height: 2000, downsample: 1 },
    { width: 750, height: 500, downsample: 4 },
  ]);
  t.deepEqual(truth.thumbnail, { width: 1024, height: 683 });
  for (const key of ['Filename', 'Date', 'Time', 'Time Zone', 'User', 'ScanScope ID', 'Barcode', 'ImageID']) {
    t.true(typeof truth.identifying[key] === 'string' && truth.identifying[key] !== '', key);
  }
  t.regex(truth.identifying.Date!, /^\d\d\/\d\d\/\d\d$/);
  t.regex(truth.identifying.Time!, /^\d\d:\d\d:\d\d$/);
  t.regex(truth.identifying.User!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.regex(truth.identifying['ScanScope ID']!, /^SS\d+$/);
  t.is(truth.label.text.length, 3);
  t.true(truth.label.text.includes(truth.identifying.Barcode!), 'the label shows the barcode number');
  t.true(truth.label.text.includes(truth.identifying.Date!), 'the label shows the date');
  t.regex(truth.label.text[1]!, /^[A-Z]+ [A-Z]+$/, 'and a patient-like name');
  t.is(truth.identifying.Filename, truth.label.text[1]!.replace(' ', '_'));

  t.true(truth.tissue.length >= 2);
  t.true(truth.tumours.length >= 2);
  t.is(truth.tumours.filter((tm) => tm.holes.length === 1).length, 1);
  const tissue = truth.tissue.reduce((s, r) => s + shoelace(r), 0);
  const whole = truth.tumours.reduce((s, tm) => s + shoelace(tm.outer), 0);
  const holes = truth.tumours.reduce((s, tm) => s + tm.holes.reduce((h, r) => h + shoelace(r), 0), 0);
  t.is(truth.areas.tissue, tissue);
  t.is(truth.areas.wholeTumour, whole);
  t.is(truth.areas.holes, holes);
  t.is(truth.areas.viableTumour, whole - holes);
  t.true(holes > 0 && whole > holes && tissue > whole);
  for (const ring of [...truth.tissue, ...truth.tumours.flatMap((tm) => [tm.outer, ...tm.holes])]) {
    t.true(ring.every(([x, y]) => Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x < 3000 && y < 2000));
  }
  t.deepEqual((await readdir(dir)).sort(), ['synthetic-7.svs', 'synthetic-7.truth.json', 'synthetic-7.xml'], 'no temporary files left');
});

test('the SVS is laid out as Aperio writes it', async (t) => {
  const { svs, truth } = await standard();
  const buf = await readFile(svs);
  const tiff = parseTiff(buf);
  t.is(tiff.version, 42);
  t.is(tiff.ifds.length, 5);
  const [level0, thumb, level1, label, macro] = tiff.ifds as [Ifd, Ifd, Ifd, Ifd, Ifd];

  const firstIfd = Math.min(...tiff.ifds.map((i) => i.offset));
  for (const ifd of tiff.ifds) {
    t.deepEqual(ifd.tags, [...ifd.tags].sort((a, b) => a - b), 'tags ascending');
    t.is(ifd.offset % 2, 0, 'IFD word-aligned');
    for (const field of ifd.fields.values()) if (!field.inline) t.is(field.valueOffset % 2, 0, 'values word-aligned');
    const offsets = ifd.fields.get(324)?.numbers ?? ifd.fields.get(273)!.numbers;
    t.true(offsets.every((o, i) => o < firstIfd && (i === 0 || o > offsets[i - 1]!)), 'data streamed in order before the IFDs');
    t.deepEqual(ifd.fields.get(258)!.numbers, [8, 8, 8]);
    t.is(num(ifd, 277), 3);
    t.is(num(ifd, 284), 1);
  }

  for (const [ifd, size] of [
    [level0, [3000, 2000]],
    [level1, [750, 500]],
  ] as const) {
    t.deepEqual([num(ifd, 256), num(ifd, 257), num(ifd, 322), num(ifd, 323)], [...size, 240, 240]);
    t.deepEqual([num(ifd, 254), num(ifd, 259), num(ifd, 262)], [0, 7, 6]);
    t.deepEqual(ifd.fields.get(530)!.numbers, [2, 2]);
    const tables = ifd.fields.get(347)!.bytes;
    t.true(jpegMarkers(tables).markers.includes(0xdb) && jpegMarkers(tables).markers.includes(0xc4));
    const offsets = ifd.fields.get(324)!.numbers;
    const counts = ifd.fields.get(325)!.numbers;
    t.is(offsets.length, Math.ceil(size[0] / 240) * Math.ceil(size[1] / 240));
    for (let i = 0; i < offsets.length; i++) {
      const tile = buf.subarray(offsets[i]!, offsets[i]! + counts[i]!);
      const { markers, width, height } = jpegMarkers(tile);
      t.deepEqual(markers, [0xc0, 0xda], 'abbreviated: no tables, no APP0');
      t.deepEqual([width, height], [240, 240], 'edge tiles are full size');
      t.deepEqual(tile.subarray(-2), Buffer.from([0xff, 0xd9]));
    }
  }

  const kv = (ifd: Ifd) => text(ifd, 270)!;
  t.regex(kv(level0), /^Aperio Image Library v12\.0\.15 \r\n3000x2000 \[0,0 3000x2000\] \(240x240\) JPEG\/RGB Q=75\|AppMag = 20\|StripeWidth = 2040\|/);
  t.regex(kv(level0), /\|MPP = 0\.4990\|/);
  t.regex(kv(level0), /\|OriginalWidth = 3000\|OriginalHeight = 2000$/);
  t.regex(kv(thumb), /^Aperio Image Library v12\.0\.15 \n3000x2000 -> 1024x683 - \|AppMag = 20\|/);
  t.regex(kv(level1), /^Aperio Image Library v12\.0\.15 \r\n3000x2000 -> 750x500 - \|AppMag = 20\|.*\|MPP = 0\.4990\|/);
  for (const ifd of [level0, thumb, level1]) {
    for (const [key, value] of Object.entries(truth.identifying)) t.true(kv(ifd).includes(`|${key} = ${value}`), `${key} in every description`);
  }

  t.deepEqual([num(thumb, 256), num(thumb, 257), num(thumb, 259), num(thumb, 262), num(thumb, 278)], [1024, 683, 7, 6, 16]);
  t.false(thumb.fields.has(322), 'the thumbnail is stripped');
  t.deepEqual([num(label, 254), num(label, 259), num(label, 262), num(label, 317), num(label, 256), num(label, 257)], [1, 5, 2, 2, 400, 400]);
  t.regex(kv(label), /\nlabel 400x400$/);
  t.deepEqual([num(macro, 254), num(macro, 259), num(macro, 262), num(macro, 256), num(macro, 257)], [9, 7, 6, 1280, 431]);
  t.regex(kv(macro), /\nmacro 1280x431$/);
});

openslideTest('OpenSlide reads the slide as Aperio, with the truth\'s pyramid, associated images, and colours of the right class', async (t) => {
  const { svs, truth } = await standard();
  const points = samplePoints(truth, 72);
  const windows: Window[] = points.flatMap((p) => [
    { level: 0, x: p.x - 16, y: p.y - 16, size: 32 },
    { level: 1, x: p.x - 32, y: p.y - 32, size: 16 },
  ]);
  const hole = holeCentre(truth);
  const holeSize = Math.max(4, Math.min(16, Math.floor(hole.room)));
  windows.push({ level: 0, x: Math.round(hole.x - holeSize / 2), y: Math.round(hole.y - holeSize / 2), size: holeSize });
  const thumbScale = truth.width / truth.thumbnail.width;
  const report = openslideReport(
    svs,
    windows,
    points.map((p) => [Math.round(p.x / thumbScale), Math.round(p.y / thumbScale)]),
  );

  t.is(report.vendor, 'aperio');
  t.is(report.properties['openslide.vendor'], 'aperio');
  t.is(report.levelCount, truth.levels.length);
  t.deepEqual(report.dimensions, truth.levels.map((l) => [l.width, l.height]));
  report.downsamples.forEach((d, i) => t.true(Math.abs(d - truth.levels[i]!.downsample) < 1e-9));
  t.deepEqual(Object.keys(report.associated).sort(), ['label', 'macro', 'thumbnail']);
  t.deepEqual(report.associated.label, [400, 400]);
  t.deepEqual(report.associated.macro, [1280, 431]);
  t.deepEqual(report.associated.thumbnail, [1024, 683]);
  t.is(Number(report.properties['openslide.mpp-x']), 0.499);
  t.is(Number(report.properties['openslide.mpp-y']), 0.499);
  t.is(report.properties['openslide.objective-power'], '20');
  t.is(report.properties['aperio.Filename'], truth.identifying.Filename);
  t.is(report.properties['aperio.Date'], truth.identifying.Date);
  t.is(report.properties['openslide.level[0].tile-width'], '240');

  // Colours through OpenSlide's JPEG path: the class the truth says, and close to what was rendered.
  const renderer = new TissueRenderer(generateLayout(truth.width, truth.height, truth.seed));
  windows.forEach((w, i) => {
    const expected = i < points.length * 2 ? points[Math.floor(i / 2)]!.expected : 'tissue';
    const mean = report.means[i]!;
    t.is(nearestClass(mean, truth.colours), expected, `window ${JSON.stringify(w)} reads ${mean.map(Math.round).join(',')}`);
    const scale = truth.levels[w.level]!.downsample;
    const out = Buffer.alloc(w.size * w.size * 3);
    renderer.render({ x: Math.round(w.x / scale), y: Math.round(w.y / scale), width: w.size, height: w.size, scaleX: scale, scaleY: scale }, out);
    const rendered = [0, 1, 2].map((c) => {
      let s = 0;
      for (let k = c; k < out.length; k += 3) s += out[k]!;
      return s / (w.size * w.size);
    });
    for (let c = 0; c < 3; c++) t.true(Math.abs(rendered[c]! - mean[c]!) < 6, `channel ${c}: rendered ${rendered[c]}, OpenSlide ${mean[c]}`);
  });
  report.thumbnailMeans.forEach((mean, i) => t.is(nearestClass(mean, truth.colours), points[i]!.expected, `thumbnail at point ${i}`));

  // The label is lossless: OpenSlide's pixels are the rendered label's.
  const label = renderLabel(truth.label.text);
  t.is(report.labelSha256, createHash('sha256').update(label.data).digest('hex'));
  t.true(report.macroLabelDifference < 12, `the macro shows the label (mean difference ${report.macroLabelDifference})`);
});

openslideTest('an odd-sized slide with 256-px tiles: pyramid, padded edge tiles and colours up to the last pixel', async (t) => {
  const { svs, truth } = await odd();
  t.deepEqual(
    truth.levels.map((l) => [l.width, l.height]),
    [
      [2049, 1537],
      [512, 384],
    ],
  );
  t.true(Math.abs(truth.levels[1]!.downsample - (2049 / 512 + 1537 / 384) / 2) < 1e-12);
  const tiff = parseTiff(await readFile(svs));
  t.is(tiff.ifds[0]!.fields.get(324)!.count, 9 * 7);
  t.is(num(tiff.ifds[0]!, 322), 256);
  const points = samplePoints(truth, 72, 2);
  const windows: Window[] = [
    ...points.map((p) => ({ level: 0, x: p.x - 16, y: p.y - 16, size: 32 })),
    { level: 0, x: 2049 - 9, y: 1537 - 9, size: 8 }, // the last pixels of the last tile
  ];
  const report = openslideReport(svs, windows);
  t.is(report.vendor, 'aperio');
  t.deepEqual(report.dimensions, [
    [2049, 1537],
    [512, 384],
  ]);
  t.deepEqual(Object.keys(report.associated).sort(), ['label', 'macro', 'thumbnail']);
  points.forEach((p, i) => t.is(nearestClass(report.means[i]!, truth.colours), p.expected));
  t.is(nearestClass(report.means.at(-1)!, truth.colours), 'background');
});

openslideTest('--bigtiff: a BigTIFF with the same tiles that OpenSlide reads to the same pixels', async (t) => {
  const classic = await standard();
  const big = await slide('bigtiff', { width: 3000, height: 2000, seed: 7, bigtiff: true });
  const tiff = parseTiff(await readFile(big.svs));
  t.is(tiff.version, 43);
  t.is(tiff.ifds[0]!.fields.get(324)!.type, 16, 'TileOffsets are LONG8');
  t.is(big.truth.tiff, 'bigtiff');
  const windows: Window[] = samplePoints(classic.truth, 72, 1).map((p) => ({ level: 0, x: p.x - 64, y: p.y - 64, size: 128 }));
  const a = openslideReport(classic.svs, windows);
  const b = openslideReport(big.svs, windows);
  t.is(b.vendor, 'aperio');
  t.deepEqual(b.dimensions, a.dimensions);
  t.deepEqual(b.regionSha256, a.regionSha256);
  t.is(b.labelSha256, a.labelSha256);
});

test('the XML parses back to the truth: whole tumour and viable tumour layers, holes as NegativeROA, areas and lengths', async (t) => {
  const { xml, truth } = await standard();
  const source = await readFile(xml, 'utf8');
  t.regex(source, /^<Annotations MicronsPerPixel="0\.4990">\n/);
  const annotations = [...source.matchAll(/<Annotation ([^>]*)>([\s\S]*?)<\/Annotation>/g)].map((m) => ({
    attributes: attributes(m[1]!),
    regions: [...m[2]!.matchAll(/<Region ([^>]*)>([\s\S]*?)<\/Region>/g)].map((r) => ({
      attributes: attributes(r[1]!),
      vertices: [...r[2]!.matchAll(/<Vertex X="([^"]+)" Y="([^"]+)" Z="0"\/>/g)].map((v) => [Number(v[1]), Number(v[2])] as Point),
    })),
  }));
  t.is(annotations.length, 2);
  const [whole, viable] = annotations as [(typeof annotations)[0], (typeof annotations)[0]];
  t.like(whole.attributes, { Id: '1', Name: 'whole tumour', LineColor: String(0x00ff00) });
  t.like(viable.attributes, { Id: '2', Name: 'viable tumour', LineColor: '255' });
  t.deepEqual(
    whole.regions.map((r) => r.vertices),
    truth.tumours.map((tm) => tm.outer),
  );
  t.true(whole.regions.every((r) => r.attributes.NegativeROA === '0' && r.attributes.Type === '0'));
  t.deepEqual(
    viable.regions.map((r) => [r.attributes.NegativeROA, r.vertices]),
    truth.tumours.flatMap((tm) => [['0', tm.outer], ...tm.holes.map((h) => ['1', h])]),
  );
  for (const region of [...whole.regions, ...viable.regions]) {
    t.true(Math.abs(Number(region.attributes.Area) - shoelace(region.vertices)) < 0.01);
    t.true(Math.abs(Number(region.attributes.Length) - perimeter(region.vertices)) < 0.01);
    t.true(Number(region.attributes.Area) > 0);
  }
  const ids = viable.regions.map((r) => r.attributes.Id);
  t.is(new Set(ids).size, ids.length, 'region ids are unique in a layer');
});

function attributes(source: string): Record<string, string> {
  return Object.fromEntries([...source.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

test('progress counts every tile and strip once, up to the total', async (t) => {
  const calls: [number, number][] = [];
  await makeSlide({ width: 1000, height: 600, seed: 2, out: await tempDir(), onProgress: (done, total) => calls.push([done, total]) });
  const total = calls[0]![1];
  // 5×3 level-0 tiles; a thumbnail no larger than the slide (1000×600); label (400 rows) and macro (431 rows); 16-row strips.
  t.is(total, 15 + Math.ceil(600 / 16) + 25 + 27);
  t.deepEqual(
    calls.map((c) => c[0]),
    Array.from({ length: total }, (_, i) => i + 1),
  );
  t.true(calls.every((c) => c[1] === total));
});

test('bad options are refused before anything is written; an aborted run leaves nothing behind', async (t) => {
  const dir = await tempDir();
  const out = path.join(dir, 'never');
  for (const [options, pattern] of [
    [{ width: -1, height: 500 }, /^width must be a whole number/],
    [{ width: 500, height: 500.5 }, /^height must be a whole number/],
    [{ width: 500, height: 500, tileSize: 250 }, /^tileSize must be a multiple of 16/],
    [{ width: 500, height: 500, levels: 0 }, /^levels must be/],
    [{ width: 500, height: 500, quality: 0 }, /^quality must be/],
    [{ width: 500, height: 500, name: '../escape' }, /^name must be/],
  ] as const) {
    const error = await t.throwsAsync(makeSlide({ ...options, out }), { instanceOf: SlideOptionsError, message: pattern });
    t.truthy(error?.option);
  }
  await t.throwsAsync(stat(out), { code: 'ENOENT' }, 'the output folder was not even made');

  const file = path.join(dir, 'a-file');
  await writeFile(file, 'x');
  await t.throwsAsync(makeSlide({ width: 500, height: 500, out: file }), { instanceOf: SlideOptionsError, message: /^out / });

  const target = await tempDir();
  const controller = new AbortController();
  await t.throwsAsync(
    makeSlide({
      width: 4000,
      height: 3000,
      out: target,
      signal: controller.signal,
      onProgress: (done) => {
        if (done === 20) controller.abort();
      },
    }),
    { any: true, name: 'AbortError' },
  );
  t.deepEqual(await readdir(target), []);
});
