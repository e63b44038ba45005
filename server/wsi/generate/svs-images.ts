/**
 * The images of a synthetic SVS in Aperio's order, each as its TIFF options
 * and a function that writes its chunks: level 0, the thumbnail, the lower
 * levels, the label and the macro (see make-slide.ts for the layout and why
 * the descriptions are written as they are).
 */
import type { Identity } from './identity.js';
import { encodeJpeg, type AbbreviatedJpeg } from './jpeg-tables.js';
import { MACRO_SIZE, renderMacro, type Canvas } from './label.js';
import { MPP, OBJECTIVE_POWER, type LevelInfo, type SlideSettings } from './slide-settings.js';
import { mulberry32, type Region, type TissueRenderer } from './tissue.js';
import { Compression, Photometric, horizontalDifference, lzwEncode, type TiffImageOptions, type TiffImageWriter } from '../tiff/writer.js';

const LIBRARY = 'Aperio Image Library v12.0.15';
const STRIP_ROWS = 16;
/** JPEG encodes kept in flight while the next tiles are rendered. */
const IN_FLIGHT = 8;

/** What the images are drawn from. */
export interface SlideContent {
  settings: SlideSettings;
  renderer: TissueRenderer;
  identity: Identity;
  levels: LevelInfo[];
  thumbnail: { width: number; height: number };
  label: Canvas;
}

/** Told of each chunk written; the signal stops the writing. */
export interface WriteContext {
  chunkWritten: () => void;
  signal?: AbortSignal | undefined;
}

export interface SvsImage {
  options: TiffImageOptions;
  write: (image: TiffImageWriter, context: WriteContext) => Promise<void>;
}

/** Every image of the file, in the order they are written. */
export function svsImages(content: SlideContent): SvsImage[] {
  const kv = keyValues(content.settings, content.identity);
  // Background tiles are all alike: the first one encoded serves them all, at every level.
  const background: BackgroundTile = {};
  return [
    ...content.levels.flatMap((level, k) => {
      const tiled = tiledLevelImage(content, k, level, kv, background);
      return k === 0 ? [tiled, thumbnailImage(content, kv)] : [tiled];
    }),
    labelImage(content.label),
    macroImage(content),
  ];
}

/** `|key = value|…` as in an Aperio ImageDescription (identifying and safe keys). */
function keyValues(s: SlideSettings, id: Identity): string {
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

interface BackgroundTile {
  encoded?: Promise<AbbreviatedJpeg>;
}

function pixelsPerCm(downsample: number): number {
  return 10_000 / (MPP * downsample);
}

/** A pyramid level: tiled JPEG, rendered tile by tile. */
function tiledLevelImage(content: SlideContent, k: number, level: LevelInfo, kv: string, background: BackgroundTile): SvsImage {
  const { width: W, height: H, tileSize: T, quality } = content.settings;
  const scaleX = W / level.width;
  const scaleY = H / level.height;
  const description =
    k === 0
      ? `${LIBRARY} \r\n${W}x${H} [0,0 ${W}x${H}] (${T}x${T}) JPEG/RGB Q=${quality}${kv}`
      : `${LIBRARY} \r\n${W}x${H} -> ${level.width}x${level.height} - ${kv}`;
  const encodeTile = (row: number, col: number) => {
    const region = { x: col * T, y: row * T, width: T, height: T, scaleX, scaleY };
    if (content.renderer.regionKind(region) === 'background') {
      background.encoded ??= renderAndEncode(content, region, Buffer.alloc(T * T * 3));
      return background.encoded;
    }
    // sharp reads its input while encoding, so each tile gets its own buffer.
    return renderAndEncode(content, region, Buffer.allocUnsafe(T * T * 3));
  };
  const across = Math.ceil(level.width / T);
  const down = Math.ceil(level.height / T);
  function* tiles() {
    for (let row = 0; row < down; row++) {
      for (let col = 0; col < across; col++) yield () => encodeTile(row, col);
    }
  }
  return {
    options: jpegImage({
      width: level.width,
      height: level.height,
      tile: { width: T, height: T },
      description,
      pixelsPerCm: { x: pixelsPerCm(scaleX), y: pixelsPerCm(scaleY) },
    }),
    write: (image, context) => writeJpegChunks(image, tiles(), context),
  };
}

function renderAndEncode(content: SlideContent, region: Region, raw: Buffer): Promise<AbbreviatedJpeg> {
  content.renderer.render(region, raw);
  return encodeJpeg(raw, region.width, region.height, content.settings.quality);
}

/** The thumbnail: stripped JPEG of the whole slide. */
function thumbnailImage(content: SlideContent, kv: string): SvsImage {
  const { width: W, height: H } = content.settings;
  const { thumbnail } = content;
  const scaleX = W / thumbnail.width;
  const scaleY = H / thumbnail.height;
  function* strips() {
    for (let y = 0; y < thumbnail.height; y += STRIP_ROWS) {
      const rows = Math.min(STRIP_ROWS, thumbnail.height - y);
      yield () => renderAndEncode(content, { x: 0, y, width: thumbnail.width, height: rows, scaleX, scaleY }, Buffer.alloc(thumbnail.width * rows * 3));
    }
  }
  return {
    options: jpegImage({
      ...thumbnail,
      rowsPerStrip: STRIP_ROWS,
      description: `${LIBRARY} \n${W}x${H} -> ${thumbnail.width}x${thumbnail.height} - ${kv}`,
    }),
    write: (image, context) => writeJpegChunks(image, strips(), context),
  };
}

/** The label: stripped LZW with a horizontal predictor, as Aperio stores it. */
function labelImage(label: Canvas): SvsImage {
  return {
    options: {
      width: label.width,
      height: label.height,
      rowsPerStrip: STRIP_ROWS,
      compression: Compression.LZW,
      photometric: Photometric.RGB,
      predictor: 2,
      newSubfileType: 1,
      description: `${LIBRARY} \nlabel ${label.width}x${label.height}`,
    },
    write: async (image, context) => {
      const stride = label.width * 3;
      for (let y = 0; y < label.height; y += STRIP_ROWS) {
        context.signal?.throwIfAborted();
        const rows = Buffer.from(label.data.subarray(y * stride, Math.min(label.height, y + STRIP_ROWS) * stride));
        await image.write(lzwEncode(horizontalDifference(rows, label.width)));
        context.chunkWritten();
      }
      image.end();
    },
  };
}

/** The macro: a photograph of the whole glass, label included, as stripped JPEG. */
function macroImage(content: SlideContent): SvsImage {
  const { quality } = content.settings;
  return {
    options: jpegImage({
      ...MACRO_SIZE,
      rowsPerStrip: STRIP_ROWS,
      newSubfileType: 9,
      description: `${LIBRARY} \nmacro ${MACRO_SIZE.width}x${MACRO_SIZE.height}`,
    }),
    write: (image, context) => {
      const macro = renderMacro(content.renderer, content.label);
      const stride = macro.width * 3;
      function* strips() {
        for (let y = 0; y < macro.height; y += STRIP_ROWS) {
          const rows = Math.min(STRIP_ROWS, macro.height - y);
          yield () => encodeJpeg(Buffer.from(macro.data.subarray(y * stride, (y + rows) * stride)), macro.width, rows, quality);
        }
      }
      return writeJpegChunks(image, strips(), context);
    },
  };
}

function jpegImage(base: Omit<TiffImageOptions, 'compression' | 'photometric'>): TiffImageOptions {
  return { ...base, compression: Compression.JPEG, photometric: Photometric.YCbCr, ycbcrSubsampling: [2, 2] };
}

/** Write each chunk's encoded JPEG in order, keeping a few encodes in flight behind the renderer. */
async function writeJpegChunks(image: TiffImageWriter, jobs: Iterable<() => Promise<AbbreviatedJpeg>>, context: WriteContext): Promise<void> {
  const window: Promise<AbbreviatedJpeg>[] = [];
  const next = async () => {
    const encoded = await window.shift()!;
    image.setJpegTables(encoded.tables);
    await image.write(encoded.stream);
    context.chunkWritten();
  };
  try {
    for (const job of jobs) {
      context.signal?.throwIfAborted();
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
