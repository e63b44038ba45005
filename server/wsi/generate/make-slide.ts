/**
 * makeSlide: a deterministic synthetic Aperio SVS with known tissue and
 * tumour regions, its ImageScope XML and a ground-truth JSON.
 *
 * The SVS is laid out as Aperio writes it, so that OpenSlide reads it as
 * vendor `aperio` with associated images label, macro and thumbnail:
 * IFD 0 level 0 (tiled JPEG) → IFD 1 thumbnail (stripped JPEG) → lower levels
 * (tiled JPEG, each 4× smaller) → label (stripped LZW, NewSubfileType 1) →
 * macro (stripped JPEG, NewSubfileType 9). As in real files (CMU-1), the
 * thumbnail, label and macro descriptions break their first line with a bare
 * "\n": OpenSlide 3.4.1 splits on "\r\n" as a set and takes the associated
 * image's name from the second piece, which "\r\n" would leave empty, so
 * the image would be skipped. The descriptions carry fake
 * identifying values (and the label and macro fake identifying pixels) so
 * that de-identification has something to remove.
 *
 * JPEG: sharp encodes each tile from raw RGB with fixed settings, so every
 * tile of an IFD has the same quantisation and Huffman tables; those go into
 * JPEGTables once and each tile is stored as an abbreviated stream (TIFF
 * Technical Note 2). sharp's JPEG is YCbCr 4:2:0, hence Photometric 6 with
 * YCbCrSubSampling 2,2 (real Aperio files store RGB without a colour transform
 * under Photometric 2; OpenSlide decodes both correctly).
 */
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { aperioXml } from './aperio-xml.js';
import { Compression, Photometric, TiffWriter, chunkCount, horizontalDifference, lzwEncode, type TiffImageOptions, type TiffImageWriter } from './tiff-writer.js';
import { TissueRenderer, generateLayout, mulberry32, ringArea, type ClassName, type Point, type Rgb, type TumourRegion } from './tissue.js';

export const MPP = 0.499;
export const OBJECTIVE_POWER = 20;
const LIBRARY = 'Aperio Image Library v12.0.15';
const THUMBNAIL_SIZE = 1024;
const STRIP_ROWS = 16;
export const LABEL_SIZE = { width: 400, height: 400 } as const;
export const MACRO_SIZE = { width: 1280, height: 431 } as const;
/** JPEG encodes kept in flight while the next tiles are rendered. */
const IN_FLIGHT = 8;

export interface MakeSlideOptions {
  width: number;
  height: number;
  /** Tile edge in pixels, a multiple of 16 (default 240, as Aperio). */
  tileSize?: number;
  /** Pyramid levels, each 4× smaller (default: until the smallest is ≤ 2048 px on its longer side). */
  levels?: number;
  /** Default 1. */
  seed?: number;
  /** JPEG quality 1–100 (default 75). */
  quality?: number;
  /** Folder for the three files (made if missing). */
  out: string;
  /** Base file name (default `synthetic-<seed>`). */
  name?: string;
  /** Write BigTIFF even when classic TIFF would do. */
  bigtiff?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Stops the work; nothing is left behind. */
  signal?: AbortSignal;
}

export interface LevelInfo {
  width: number;
  height: number;
  /** As OpenSlide computes it: the mean of the two axes' ratios to level 0. */
  downsample: number;
}

export interface MakeSlideResult {
  svs: string;
  xml: string;
  truth: string;
  levels: LevelInfo[];
}

/** What `<name>.truth.json` holds. Polygons and areas are in level-0 pixels. */
export interface SlideTruth {
  generator: 'slidebank make-slide';
  version: 1;
  seed: number;
  width: number;
  height: number;
  mpp: number;
  objectivePower: number;
  tileSize: number;
  quality: number;
  tiff: 'classic' | 'bigtiff';
  levels: LevelInfo[];
  thumbnail: { width: number; height: number };
  label: { width: number; height: number; text: string[] };
  macro: { width: number; height: number };
  /** The fake identifying ImageDescription values, by Aperio key, written into level, thumbnail descriptions. */
  identifying: Record<string, string>;
  /** Mean colour of each class as rendered at level 0. */
  colours: Record<ClassName, Rgb>;
  tissue: Point[][];
  /** Whole tumour = `outer`; viable tumour = `outer` minus `holes`. */
  tumours: TumourRegion[];
  areas: { tissue: number; wholeTumour: number; holes: number; viableTumour: number };
}

/** An option a caller got wrong: `option` names it, `problem` says what is wrong (the message is both). */
export class SlideOptionsError extends Error {
  readonly option: keyof MakeSlideOptions;
  readonly problem: string;

  constructor(option: keyof MakeSlideOptions, problem: string) {
    super(`${option} ${problem}`);
    this.name = 'SlideOptionsError';
    this.option = option;
    this.problem = problem;
  }
}

// ---------------------------------------------------------------------------
// Options and pyramid

export const LIMITS = { minSize: 256, maxSize: 1_000_000, minTile: 16, maxTile: 4096 } as const;

interface Settings {
  width: number;
  height: number;
  tileSize: number;
  levels: number;
  seed: number;
  quality: number;
  out: string;
  name: string;
  bigtiff: boolean;
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** Level count by default: 4× steps until the longer side is ≤ 2048. */
export function defaultLevelCount(width: number, height: number): number {
  let levels = 1;
  let longer = Math.max(width, height);
  while (longer > 2048) {
    longer = Math.floor(longer / 4);
    levels++;
  }
  return levels;
}

export function levelSizes(width: number, height: number, levels: number): LevelInfo[] {
  return Array.from({ length: levels }, (_, k) => {
    const w = Math.max(1, Math.floor(width / 4 ** k));
    const h = Math.max(1, Math.floor(height / 4 ** k));
    return { width: w, height: h, downsample: (width / w + height / h) / 2 };
  });
}

function settings(options: MakeSlideOptions): Settings {
  const { width, height } = options;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!isWhole(value) || value < LIMITS.minSize || value > LIMITS.maxSize) {
      throw new SlideOptionsError(name, `must be a whole number from ${LIMITS.minSize} to ${LIMITS.maxSize}, got ${String(value)}`);
    }
  }
  const tileSize = options.tileSize ?? 240;
  if (!isWhole(tileSize) || tileSize < LIMITS.minTile || tileSize > LIMITS.maxTile || tileSize % 16 !== 0) {
    throw new SlideOptionsError('tileSize', `must be a multiple of 16 from ${LIMITS.minTile} to ${LIMITS.maxTile}, got ${String(tileSize)}`);
  }
  let maxLevels = 1;
  while (Math.floor(Math.min(width, height) / 4 ** maxLevels) >= 1) maxLevels++;
  const levels = options.levels ?? defaultLevelCount(width, height);
  if (!isWhole(levels) || levels < 1 || levels > maxLevels) {
    throw new SlideOptionsError('levels', `must be a whole number from 1 to ${maxLevels} for a ${width}x${height} slide, got ${String(levels)}`);
  }
  const seed = options.seed ?? 1;
  if (!isWhole(seed) || seed < 0 || seed > 0xffffffff) {
    throw new SlideOptionsError('seed', `must be a whole number from 0 to 4294967295, got ${String(seed)}`);
  }
  const quality = options.quality ?? 75;
  if (!isWhole(quality) || quality < 1 || quality > 100) {
    throw new SlideOptionsError('quality', `must be a whole number from 1 to 100, got ${String(quality)}`);
  }
  if (typeof options.out !== 'string' || options.out === '') throw new SlideOptionsError('out', 'is required: the folder to write the slide into');
  const name = options.name ?? `synthetic-${seed}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) {
    throw new SlideOptionsError('name', `must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit, got "${name}"`);
  }
  return { width, height, tileSize, levels, seed, quality, out: options.out, name, bigtiff: options.bigtiff === true };
}

// ---------------------------------------------------------------------------
// Fake identifying values

const SURNAMES = ['KIM', 'LEE', 'PARK', 'CHOI', 'JUNG', 'KANG', 'CHO', 'YOON', 'JANG', 'LIM', 'HAN', 'OH', 'SEO', 'SHIN', 'KWON', 'HWANG', 'AHN', 'SONG'];
const GIVEN = ['MINJI', 'JIHOON', 'SEOYEON', 'DONGHYUN', 'HAEUN', 'JUNHO', 'YUNA', 'SUNGMIN', 'EUNJI', 'TAEYANG', 'SOYEON', 'HYUNWOO', 'JIWON', 'MINSEO'];

interface Identity {
  patientName: string;
  barcode: string;
  /** Aperio key → value, in the order they are written. */
  fields: Record<string, string>;
  labelText: string[];
}

function identity(seed: number): Identity {
  const rand = mulberry32(seed ^ 0x1d872b41);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
  const pad = (n: number) => String(n).padStart(2, '0');
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const surname = pick(SURNAMES);
  const given = pick(GIVEN);
  const year = 15 + Math.floor(rand() * 10);
  const date = `${pad(1 + Math.floor(rand() * 12))}/${pad(1 + Math.floor(rand() * 28))}/${pad(year)}`;
  const time = `${pad(7 + Math.floor(rand() * 12))}:${pad(Math.floor(rand() * 60))}:${pad(Math.floor(rand() * 60))}`;
  const barcode = `S${pad(year)}-${digits(5)}`;
  const fields: Record<string, string> = {
    'ScanScope ID': `SS${1000 + Math.floor(rand() * 9000)}`,
    Filename: `${surname}_${given}`,
    Date: date,
    Time: time,
    'Time Zone': 'GMT+09:00',
    User: `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rand() * 4)]}${hex(3)}-${hex(12)}`,
    Barcode: barcode,
    ImageID: String(100000 + Math.floor(rand() * 900000)),
  };
  return { patientName: `${surname} ${given}`, barcode, fields, labelText: [barcode, `${surname} ${given}`, date] };
}

/** `|key = value|…` as in an Aperio ImageDescription (identifying and safe keys). */
function keyValues(s: Settings, id: Identity): string {
  const rand = mulberry32(s.seed ^ 0x3c6ef372);
  const f = id.fields;
  const pairs: [string, string][] = [
    ['AppMag', String(OBJECTIVE_POWER)],
    ['StripeWidth', '2040'],
    ['ScanScope ID', f['ScanScope ID']!],
    ['Filename', f.Filename!],
    ['Date', f.Date!],
    ['Time', f.Time!],
    ['Time Zone', f['Time Zone']!],
    ['User', f.User!],
    ['MPP', MPP.toFixed(4)],
    ['Left', (20 + rand() * 10).toFixed(6)],
    ['Top', (15 + rand() * 10).toFixed(6)],
    ['LineCameraSkew', (-0.001 * rand()).toFixed(6)],
    ['LineAreaXOffset', (0.02 * rand()).toFixed(6)],
    ['LineAreaYOffset', (-0.001 * rand()).toFixed(6)],
    ['Focus Offset', '0.000000'],
    ['Barcode', f.Barcode!],
    ['ImageID', f.ImageID!],
    ['OriginalWidth', String(s.width)],
    ['OriginalHeight', String(s.height)],
  ];
  return pairs.map(([k, v]) => `|${k} = ${v}`).join('');
}

// ---------------------------------------------------------------------------
// Label and macro: a 5×7 bitmap font, a barcode-like pattern

/** 5×7 glyphs, rows top to bottom, '#' = ink. */
const GLYPHS: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ' ': '..... ..... ..... ..... ..... ..... .....',
};

/** An RGB canvas. */
interface Canvas {
  width: number;
  height: number;
  data: Buffer;
}

function canvas(width: number, height: number, colour: Rgb): Canvas {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i += 3) [data[i], data[i + 1], data[i + 2]] = colour;
  return { width, height, data };
}

function fillRect(c: Canvas, x: number, y: number, w: number, h: number, colour: Rgb): void {
  for (let yy = Math.max(0, y); yy < Math.min(c.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(c.width, x + w); xx++) {
      const i = (yy * c.width + xx) * 3;
      [c.data[i], c.data[i + 1], c.data[i + 2]] = colour;
    }
  }
}

/** Draw text in the 5×7 font, each font pixel `scale` px square, 1 font pixel between letters. */
function drawText(c: Canvas, text: string, x: number, y: number, scale: number, colour: Rgb): void {
  [...text].forEach((ch, n) => {
    const glyph = GLYPHS[ch];
    if (glyph === undefined) throw new Error(`the label font has no glyph for "${ch}"`);
    glyph.split(' ').forEach((row, gy) => {
      [...row].forEach((bit, gx) => {
        if (bit === '#') fillRect(c, x + (n * 6 + gx) * scale, y + gy * scale, scale, scale, colour);
      });
    });
  });
}

/** A barcode-like pattern: guard bars, then 3 bars and 3 spaces of width 1–3 per character. */
function drawBarcode(c: Canvas, text: string, x: number, y: number, width: number, height: number): void {
  const modules: number[] = [1, 1, 1, 1]; // bar, space, bar, space
  for (const ch of text) {
    const code = ch.charCodeAt(0) * 2654435761;
    for (let k = 0; k < 6; k++) modules.push(1 + ((code >>> (k * 3)) % 3));
    modules.push(1);
  }
  modules.push(1, 1, 1);
  const total = modules.reduce((a, b) => a + b, 0);
  const unit = Math.max(1, Math.floor(width / total));
  let at = x + Math.floor((width - unit * total) / 2);
  modules.forEach((m, i) => {
    if (i % 2 === 0) fillRect(c, at, y, m * unit, height, [0, 0, 0]);
    at += m * unit;
  });
}

/** The label image: barcode number, patient-like name and date in the bitmap font, and a barcode. */
export function renderLabel(text: readonly string[]): Canvas {
  const { width, height } = LABEL_SIZE;
  const label = canvas(width, height, [255, 255, 255]);
  const ink: Rgb = [0, 0, 0];
  text.forEach((line, i) => {
    const scale = Math.max(1, Math.min(5, Math.floor((width - 32) / (line.length * 6))));
    drawText(label, line, 16, 20 + i * 56, scale, ink);
  });
  drawBarcode(label, text[0] ?? '', 16, 20 + text.length * 56 + 16, width - 32, height - (20 + text.length * 56 + 16) - 24);
  return label;
}

/** The macro: the glass slide photographed whole, label on the left, tissue on the right. */
function renderMacro(renderer: TissueRenderer, label: Canvas): Canvas {
  const { width, height } = MACRO_SIZE;
  const macro = canvas(width, height, [214, 219, 222]);
  const top = Math.floor((height - label.height) / 2);
  for (let y = 0; y < label.height; y++) {
    label.data.copy(macro.data, ((top + y) * width + 16) * 3, y * label.width * 3, (y + 1) * label.width * 3);
  }
  const box = { x: 16 + label.width + 24, y: 16, width: width - (16 + label.width + 24) - 16, height: height - 32 };
  const { width: W, height: H } = renderer.layout;
  const scale = Math.max(W / box.width, H / box.height);
  const w = Math.max(1, Math.min(box.width, Math.round(W / scale)));
  const h = Math.max(1, Math.min(box.height, Math.round(H / scale)));
  const pixels = Buffer.alloc(w * h * 3);
  renderer.render({ x: 0, y: 0, width: w, height: h, scaleX: W / w, scaleY: H / h }, pixels);
  const ox = box.x + Math.floor((box.width - w) / 2);
  const oy = box.y + Math.floor((box.height - h) / 2);
  for (let y = 0; y < h; y++) pixels.copy(macro.data, ((oy + y) * width + ox) * 3, y * w * 3, (y + 1) * w * 3);
  return macro;
}

// ---------------------------------------------------------------------------
// JPEG

interface AbbreviatedJpeg {
  /** SOI, the DQT and DHT segments, EOI: the JPEGTables tag. */
  tables: Buffer;
  /** SOI, SOF, SOS, entropy-coded data, EOI: one tile or strip. */
  stream: Buffer;
}

/** Split a complete JPEG into its tables and an abbreviated stream; APPn and COM are dropped. */
export function abbreviateJpeg(jpeg: Buffer): AbbreviatedJpeg {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG stream');
  const tables: Buffer[] = [];
  const kept: Buffer[] = [];
  let i = 2;
  for (;;) {
    if (i + 4 > jpeg.length || jpeg[i] !== 0xff) throw new Error('malformed JPEG stream');
    const marker = jpeg[i + 1]!;
    if (marker === 0xda) break;
    const end = i + 2 + jpeg.readUInt16BE(i + 2);
    const segment = jpeg.subarray(i, end);
    if (marker === 0xdb || marker === 0xc4) tables.push(segment);
    else if (!(marker >= 0xe0 && marker <= 0xef) && marker !== 0xfe) kept.push(segment);
    i = end;
  }
  const SOI = Buffer.from([0xff, 0xd8]);
  const EOI = Buffer.from([0xff, 0xd9]);
  return { tables: Buffer.concat([SOI, ...tables, EOI]), stream: Buffer.concat([SOI, ...kept, jpeg.subarray(i)]) };
}

async function encodeJpeg(raw: Buffer, width: number, height: number, quality: number): Promise<AbbreviatedJpeg> {
  const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality, optimiseCoding: false, chromaSubsampling: '4:2:0' })
    .toBuffer();
  return abbreviateJpeg(jpeg);
}

// ---------------------------------------------------------------------------
// Writing

/** Write each chunk's encoded JPEG in order, keeping a few encodes in flight behind the renderer. */
async function writeJpegChunks(
  image: TiffImageWriter,
  jobs: Iterable<() => Promise<AbbreviatedJpeg>>,
  progress: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const window: Promise<AbbreviatedJpeg>[] = [];
  const next = async () => {
    const encoded = await window.shift()!;
    image.setJpegTables(encoded.tables);
    await image.write(encoded.stream);
    progress();
  };
  try {
    for (const job of jobs) {
      signal?.throwIfAborted();
      const pending = job();
      pending.catch(() => undefined); // awaited in order below; never unhandled meanwhile
      window.push(pending);
      if (window.length >= IN_FLIGHT) await next();
    }
    while (window.length > 0) await next();
  } finally {
    window.length = 0;
  }
  image.end();
}

function jpegImage(base: Omit<TiffImageOptions, 'compression' | 'photometric'>): TiffImageOptions {
  return { ...base, compression: Compression.JPEG, photometric: Photometric.YCbCr, ycbcrSubsampling: [2, 2] };
}

/** Write `<name>.svs`, `<name>.xml` and `<name>.truth.json` into `out`; see the module comment. */
export async function makeSlide(options: MakeSlideOptions): Promise<MakeSlideResult> {
  const s = settings(options);
  const { width: W, height: H, tileSize: T, quality } = s;
  try {
    await mkdir(s.out, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SlideOptionsError('out', `cannot be used as a folder: ${s.out} (${code ?? (error as Error).message})`);
  }
  if (!(await stat(s.out)).isDirectory()) throw new SlideOptionsError('out', `is not a folder: ${s.out}`);

  const final = {
    svs: path.join(s.out, `${s.name}.svs`),
    xml: path.join(s.out, `${s.name}.xml`),
    truth: path.join(s.out, `${s.name}.truth.json`),
  };
  const temp = (file: string) => path.join(s.out, `.${path.basename(file)}.${process.pid}.partial`);
  const temps = { svs: temp(final.svs), xml: temp(final.xml), truth: temp(final.truth) };

  const layout = generateLayout(W, H, s.seed);
  const renderer = new TissueRenderer(layout);
  const id = identity(s.seed);
  const kv = keyValues(s, id);
  const levels = levelSizes(W, H, s.levels);
  const longer = Math.max(W, H);
  const thumbLonger = Math.min(THUMBNAIL_SIZE, longer);
  const thumbnail = {
    width: Math.max(1, Math.round((W * thumbLonger) / longer)),
    height: Math.max(1, Math.round((H * thumbLonger) / longer)),
  };
  const label = renderLabel(id.labelText);
  const pixelsPerCm = (downsample: number) => 10_000 / (MPP * downsample);

  const images: { options: TiffImageOptions; write: (image: TiffImageWriter) => Promise<void> }[] = [];
  let done = 0;
  const progress = () => options.onProgress?.(++done, total);

  let background: Promise<AbbreviatedJpeg> | undefined;
  const tiledLevel = (k: number, level: LevelInfo) => {
    const across = Math.ceil(level.width / T);
    const down = Math.ceil(level.height / T);
    const scaleX = W / level.width;
    const scaleY = H / level.height;
    const description =
      k === 0
        ? `${LIBRARY} \r\n${W}x${H} [0,0 ${W}x${H}] (${T}x${T}) JPEG/RGB Q=${quality}${kv}`
        : `${LIBRARY} \r\n${W}x${H} -> ${level.width}x${level.height} - ${kv}`;
    images.push({
      options: jpegImage({
        width: level.width,
        height: level.height,
        tile: { width: T, height: T },
        description,
        pixelsPerCm: { x: pixelsPerCm(scaleX), y: pixelsPerCm(scaleY) },
      }),
      write: (image) =>
        writeJpegChunks(
          image,
          (function* () {
            for (let row = 0; row < down; row++) {
              for (let col = 0; col < across; col++) {
                yield () => {
                  const region = { x: col * T, y: row * T, width: T, height: T, scaleX, scaleY };
                  if (renderer.regionKind(region) === 'background') {
                    background ??= (() => {
                      const raw = Buffer.alloc(T * T * 3);
                      renderer.render(region, raw);
                      return encodeJpeg(raw, T, T, quality);
                    })();
                    return background;
                  }
                  // sharp reads its input while encoding, so each tile gets its own buffer.
                  const raw = Buffer.allocUnsafe(T * T * 3);
                  renderer.render(region, raw);
                  return encodeJpeg(raw, T, T, quality);
                };
              }
            }
          })(),
          progress,
          options.signal,
        ),
    });
  };

  levels.forEach((level, k) => {
    tiledLevel(k, level);
    if (k === 0) {
      const strips = Math.ceil(thumbnail.height / STRIP_ROWS);
      images.push({
        options: jpegImage({
          ...thumbnail,
          rowsPerStrip: STRIP_ROWS,
          description: `${LIBRARY} \n${W}x${H} -> ${thumbnail.width}x${thumbnail.height} - ${kv}`,
        }),
        write: (image) =>
          writeJpegChunks(
            image,
            (function* () {
              for (let strip = 0; strip < strips; strip++) {
                yield () => {
                  const rows = Math.min(STRIP_ROWS, thumbnail.height - strip * STRIP_ROWS);
                  const raw = Buffer.alloc(thumbnail.width * rows * 3);
                  const region = { x: 0, y: strip * STRIP_ROWS, width: thumbnail.width, height: rows, scaleX: W / thumbnail.width, scaleY: H / thumbnail.height };
                  renderer.render(region, raw);
                  return encodeJpeg(raw, thumbnail.width, rows, quality);
                };
              }
            })(),
            progress,
            options.signal,
          ),
      });
    }
  });

  const labelRows = STRIP_ROWS;
  images.push({
    options: {
      width: label.width,
      height: label.height,
      rowsPerStrip: labelRows,
      compression: Compression.LZW,
      photometric: Photometric.RGB,
      predictor: 2,
      newSubfileType: 1,
      description: `${LIBRARY} \nlabel ${label.width}x${label.height}`,
    },
    write: async (image) => {
      const stride = label.width * 3;
      for (let y = 0; y < label.height; y += labelRows) {
        options.signal?.throwIfAborted();
        const rows = Buffer.from(label.data.subarray(y * stride, Math.min(label.height, y + labelRows) * stride));
        await image.write(lzwEncode(horizontalDifference(rows, label.width)));
        progress();
      }
      image.end();
    },
  });

  images.push({
    options: jpegImage({
      ...MACRO_SIZE,
      rowsPerStrip: STRIP_ROWS,
      newSubfileType: 9,
      description: `${LIBRARY} \nmacro ${MACRO_SIZE.width}x${MACRO_SIZE.height}`,
    }),
    write: (image) => {
      const macro = renderMacro(renderer, label);
      const stride = macro.width * 3;
      return writeJpegChunks(
        image,
        (function* () {
          for (let y = 0; y < macro.height; y += STRIP_ROWS) {
            const rows = Math.min(STRIP_ROWS, macro.height - y);
            yield () => encodeJpeg(Buffer.from(macro.data.subarray(y * stride, (y + rows) * stride)), macro.width, rows, quality);
          }
        })(),
        progress,
        options.signal,
      );
    },
  });

  const total = images.reduce((sum, i) => sum + chunkCount(i.options), 0);

  let writer: TiffWriter | undefined;
  const renamed: string[] = [];
  try {
    writer = await TiffWriter.create(temps.svs, { bigtiff: s.bigtiff });
    for (const { options: imageOptions, write } of images) await write(writer.beginImage(imageOptions));
    await writer.close();

    const tissueArea = layout.tissue.reduce((sum, ring) => sum + ringArea(ring), 0);
    const wholeTumour = layout.tumours.reduce((sum, t) => sum + ringArea(t.outer), 0);
    const holes = layout.tumours.reduce((sum, t) => sum + t.holes.reduce((h, ring) => h + ringArea(ring), 0), 0);
    const truth: SlideTruth = {
      generator: 'slidebank make-slide',
      version: 1,
      seed: s.seed,
      width: W,
      height: H,
      mpp: MPP,
      objectivePower: OBJECTIVE_POWER,
      tileSize: T,
      quality,
      tiff: writer.format ?? 'classic',
      levels,
      thumbnail,
      label: { width: label.width, height: label.height, text: id.labelText },
      macro: { ...MACRO_SIZE },
      identifying: id.fields,
      colours: renderer.meanColours(),
      tissue: layout.tissue,
      tumours: layout.tumours,
      areas: { tissue: tissueArea, wholeTumour, holes, viableTumour: wholeTumour - holes },
    };
    await writeFile(temps.xml, aperioXml(layout.tumours, MPP));
    await writeFile(temps.truth, `${JSON.stringify(truth, null, 2)}\n`);
    options.signal?.throwIfAborted();
    // The SVS last: a slide file present means its XML and truth are too.
    for (const kind of ['xml', 'truth', 'svs'] as const) {
      await rename(temps[kind], final[kind]);
      renamed.push(final[kind]);
    }
  } catch (error) {
    await writer?.abort();
    await Promise.all([...Object.values(temps), ...renamed].map((file) => rm(file, { force: true })));
    throw error;
  }
  return { ...final, levels };
}
