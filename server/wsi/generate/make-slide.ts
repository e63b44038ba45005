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
import { aperioXml } from './aperio-xml.js';
import { identity, type Identity } from './identity.js';
import { encodeJpeg, type AbbreviatedJpeg } from './jpeg-tables.js';
import { MACRO_SIZE, renderLabel, renderMacro } from './label.js';
import { Compression, Photometric, TiffWriter, chunkCount, horizontalDifference, lzwEncode, type TiffImageOptions, type TiffImageWriter } from '../tiff/writer.js';
import { TissueRenderer, generateLayout, mulberry32, ringArea, type ClassName, type Point, type Rgb, type TumourRegion } from './tissue.js';

export const MPP = 0.499;
export const OBJECTIVE_POWER = 20;
const LIBRARY = 'Aperio Image Library v12.0.15';
const THUMBNAIL_SIZE = 1024;
const STRIP_ROWS = 16;
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
