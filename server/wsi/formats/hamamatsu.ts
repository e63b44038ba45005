import sharp from 'sharp';
import type { RgbImage } from '../decode/pixels.js';
import { scaledJpegCodec } from '../decode/scaled-jpeg.js';
import { corrupt, WsiError } from '../errors.js';
import { NDPI_FORMAT_TAG, type TagValue, type TiffDirectory } from '../tiff/directory.js';
import type { RandomAccessFile } from '../tiff/file.js';
import { Compression, Photometric } from '../tiff/tags.js';
import { levelProperties, type AssociatedName, type LevelLayout, type LevelSource, type SlideFormat, type SlideLayout } from './format.js';
import { assembleIntervals, JPEG_MAX_SIDE, readStripHeader, RestartIntervals, type JpegStripHeader } from './ndpi-jpeg.js';
import { mppFromResolution, tiffProperties } from './tiff-properties.js';

/** Hamamatsu's private tags (OpenSlide's names where it has them). */
export const NdpiTag = {
  FormatFlag: NDPI_FORMAT_TAG,
  SourceLens: 65421,
  XOffset: 65422,
  YOffset: 65423,
  FocalPlane: 65424,
  McuStarts: 65426,
  Reference: 65427,
  McuStartsHighBytes: 65432,
  ScannerSerial: 65442,
  PropertyMap: 65449,
} as const;

/** Tiles handed out are blocks of restart intervals about this wide (or one interval, where wider)… */
const TILE_SIDE = 256;
/**
 * …and of about this many pixels: a Deep Zoom tile decodes the blocks it
 * touches whole, and low blocks waste fewer rows at its top and bottom.
 */
const BLOCK_PIXELS = TILE_SIDE * 64;

/**
 * Hamamatsu NDPI: TIFF whose first directory carries tag 65420, with the
 * 64-bit offset extension handled by the directory reader. Every directory
 * is one JPEG strip. Tag 65421 (source lens) tells them apart as OpenSlide
 * does: a positive objective is a pyramid level (only focal plane 0), -1 the
 * macro image; others (the -2 slide map) are ignored.
 *
 * Levels are read restart interval by restart interval (`ndpi-jpeg.ts`), and,
 * like OpenSlide, each stored level also yields levels at 1/2, 1/4 and 1/8 of
 * its size, decoded by libjpeg's scaled inverse DCT, where a stored level does
 * not already have that width: a slide with stored levels 1, 1/2, 1/4 and 1/8
 * has levels down to 1/64.
 */
export const hamamatsu: SlideFormat = {
  name: 'hamamatsu',

  detect(directories) {
    return directories[0]!.tags.has(NDPI_FORMAT_TAG) ? undefined : `the first directory has no NDPI tag ${NDPI_FORMAT_TAG}`;
  },

  /** The stored levels as they are (one strip each) and the macro: the file's structure, without reading the strips. */
  layout(directories) {
    const { stored, macro } = classify(directories, '');
    const base = stored[0]?.directory ?? directories[0]!;
    const levels: LevelLayout[] = stored.map(({ directory }) => ({
      directory,
      width: directory.width,
      height: directory.height,
      downsample: (base.width / directory.width + base.height / directory.height) / 2,
    }));
    const associated = new Map<AssociatedName, TiffDirectory>(macro ? [['macro', macro]] : []);
    return { vendor: 'hamamatsu', levels, associated, properties: { ...ndpiProperties(directories[0]!), ...levelProperties(levels) } };
  },

  async open(file, directories) {
    const { strips, macro } = await openStoredStrips(file, directories);

    // OpenSlide's levels: each stored level, and each at 1/2, 1/4 and 1/8 where the restart interval divides evenly,
    // keyed by width so that a stored level (or a later, smaller source) wins over an earlier one of the same width.
    const byWidth = new Map<number, { strip: StoredStrip; denominator: 1 | 2 | 4 | 8 }>();
    for (const strip of strips) {
      byWidth.set(strip.directory.width, { strip, denominator: 1 });
      for (const denominator of [2, 4, 8] as const) {
        if (strip.intervalWidth % denominator || strip.intervalHeight % denominator) continue;
        byWidth.set(Math.floor(strip.directory.width / denominator), { strip, denominator });
      }
    }
    const chosen = [...byWidth.entries()].sort((a, b) => b[0] - a[0]).map(([, level]) => level);
    const top = chosen[0]!.strip.directory;
    const levels = chosen.map(({ strip, denominator }) => levelOf(strip, denominator, top));
    const properties: Record<string, string> = { ...ndpiProperties(directories[0]!), ...levelProperties(levels) };
    chosen.forEach(({ strip, denominator }, i) => {
      // The tile size OpenSlide reports: one restart interval (or the whole strip), not the blocks handed out here.
      properties[`openslide.level[${i}].tile-width`] = String(strip.intervalWidth / denominator);
      properties[`openslide.level[${i}].tile-height`] = String(strip.intervalHeight / denominator);
      properties[`openslide.level[${i}].downsample`] = openslideDouble(levels[i]!.downsample);
    });
    return {
      vendor: 'hamamatsu',
      levels,
      associated: new Map<AssociatedName, TiffDirectory>(macro ? [['macro', macro]] : []),
      properties,
      readAssociated: (f, directory) => f.read(directory.offsets[0]!, directory.byteCounts[0]!, `${f.path}: the macro image`),
    } satisfies SlideLayout;
  },
};

/**
 * The stored levels' strips (largest first, each with its JPEG header and
 * restart intervals) and the macro's directory: what the slide is read from,
 * and what ingest re-tiles without decoding.
 */
export async function openStoredStrips(file: RandomAccessFile, directories: TiffDirectory[]): Promise<{ strips: StoredStrip[]; macro: TiffDirectory | undefined }> {
  const { stored, macro } = classify(directories, file.path);
  if (stored.length === 0) throw new WsiError('unsupported_format', `${file.path}: an NDPI file without pyramid levels`);
  const strips: StoredStrip[] = [];
  for (const [k, { directory }] of stored.entries()) strips.push(await openStrip(file, directory, `level ${k}`));
  return { strips, macro };
}

interface Classified {
  stored: { directory: TiffDirectory }[];
  macro: TiffDirectory | undefined;
}

/** Levels (positive source lens, focal plane 0, each narrower than the one before) and the macro (source lens -1). */
function classify(directories: TiffDirectory[], path: string): Classified {
  const stored: Classified['stored'] = [];
  let macro: TiffDirectory | undefined;
  for (const directory of directories) {
    const where = `${path}: directory ${directory.index}`;
    const lens = first(directory.tags.get(NdpiTag.SourceLens));
    if (lens === undefined) throw corrupt(`${where} has no source lens (NDPI tag ${NdpiTag.SourceLens})`);
    if (directory.tiled || directory.tilesDown !== 1 || directory.tilesAcross !== 1) {
      throw corrupt(`${where} is not one strip, as every NDPI image is`);
    }
    if (lens > 0) {
      if ((first(directory.tags.get(NdpiTag.FocalPlane)) ?? 0) !== 0) continue;
      const previous = stored.at(-1)?.directory;
      if (previous && directory.width >= previous.width) {
        throw corrupt(`${where} (${directory.width} pixels wide) is not smaller than the level before it (${previous.width}): an unexpected NDPI layout`);
      }
      stored.push({ directory });
    } else if (lens === -1) {
      macro ??= directory;
    }
  }
  return { stored, macro };
}

/** A stored level's strip, with its JPEG header and restart intervals. */
export interface StoredStrip {
  directory: TiffDirectory;
  header: JpegStripHeader;
  /** OpenSlide's tile: one restart interval, or the whole level where there are none. */
  intervalWidth: number;
  intervalHeight: number;
  /** Restart intervals per row and rows of them. */
  across: number;
  down: number;
  intervals: RestartIntervals | undefined;
  /** The tiles handed out: `blockAcross`×`blockDown` intervals. */
  blockAcross: number;
  blockDown: number;
}

async function openStrip(file: RandomAccessFile, directory: TiffDirectory, where: string): Promise<StoredStrip> {
  const what = `${file.path}: ${where}`;
  const { width, height } = directory;
  if (directory.compression !== Compression.JPEG) {
    throw new WsiError('unsupported_compression', `${what}: unsupported compression ${directory.compression} (NDPI levels are JPEG)`);
  }
  const offset = directory.offsets[0]!;
  const length = directory.byteCounts[0]!;
  if (offset + length > file.size) {
    throw corrupt(`${what}: its JPEG strip (bytes ${offset}–${offset + length}) lies past the end of the ${file.size}-byte file; the file is truncated or damaged`);
  }
  const header = await readStripHeader(file, offset, length, where);
  if (header.components !== 3) throw new WsiError('unsupported_format', `${what}: a JPEG of ${header.components} components, not 3`);
  if (width <= JPEG_MAX_SIDE && height <= JPEG_MAX_SIDE && (header.width !== width || header.height !== height)) {
    throw corrupt(`${what}: the JPEG is ${header.width}×${header.height}, the TIFF directory says ${width}×${height}`);
  }
  const R = header.restartInterval;
  if (R === 0) {
    if (width > JPEG_MAX_SIDE || height > JPEG_MAX_SIDE) {
      throw new WsiError(
        'unsupported_format',
        `${what}: a ${width}×${height} JPEG strip without restart markers; past ${JPEG_MAX_SIDE} pixels a JPEG can only be read a restart interval at a time, so this level cannot be decoded`,
      );
    }
    return { directory, header, intervalWidth: width, intervalHeight: height, across: 1, down: 1, intervals: undefined, blockAcross: 1, blockDown: 1 };
  }
  const mcusPerRow = Math.ceil(width / header.mcuWidth);
  if (R > mcusPerRow) throw corrupt(`${what}: a restart interval of ${R} MCUs is longer than a row of ${mcusPerRow}`);
  if (mcusPerRow % R !== 0) throw corrupt(`${what}: restart intervals of ${R} MCUs do not divide a row of ${mcusPerRow} MCUs`);
  const intervalWidth = R * header.mcuWidth;
  const intervalHeight = header.mcuHeight;
  if (intervalWidth > JPEG_MAX_SIDE) {
    throw new WsiError('unsupported_format', `${what}: restart intervals ${intervalWidth} pixels wide, more than a JPEG decoder takes (${JPEG_MAX_SIDE})`);
  }
  const across = mcusPerRow / R;
  const down = Math.ceil(height / intervalHeight);
  const recorded = mcuStarts(directory, across * down);
  const intervals = new RestartIntervals(file, offset, length, header.bytes.length, across * down, where, recorded);
  // libtiff wants tile sides that are multiples of 16: an even count of 8-pixel intervals (the blocks may reach past the edges).
  const even = (count: number, side: number) => (count * side) % 16 === 0 ? count : count + 1;
  let blockAcross = even(Math.max(1, Math.min(across, Math.floor(TILE_SIDE / intervalWidth))), intervalWidth);
  // Two intervals wider than a JPEG frame holds: one a block, decoded by libjpeg-turbo directly rather than libvips' TIFF reader.
  if (blockAcross * intervalWidth > JPEG_MAX_SIDE) blockAcross = 1;
  const blockDown = even(Math.max(1, Math.min(down, Math.round(BLOCK_PIXELS / (blockAcross * intervalWidth * intervalHeight)))), intervalHeight);
  return { directory, header, intervalWidth, intervalHeight, across, down, intervals, blockAcross, blockDown };
}

/** McuStarts (with the high bits of tag 65432 where present), or undefined when absent or not one per interval (they are then found by scanning). */
function mcuStarts(directory: TiffDirectory, count: number): number[] | undefined {
  const low = directory.tags.get(NdpiTag.McuStarts);
  if (!Array.isArray(low) || low.length !== count) return undefined;
  const high = directory.tags.get(NdpiTag.McuStartsHighBytes);
  if (!Array.isArray(high) || high.length !== count) return low;
  return low.map((value, i) => value + high[i]! * 2 ** 32);
}

/** A level of the slide: a stored strip at 1/`denominator` of its size. */
function levelOf(strip: StoredStrip, denominator: 1 | 2 | 4 | 8, top: TiffDirectory): LevelLayout {
  const d = strip.directory;
  const width = Math.floor(d.width / denominator);
  const height = Math.floor(d.height / denominator);
  const tileWidth = (strip.blockAcross * strip.intervalWidth) / denominator;
  const tileHeight = (strip.blockDown * strip.intervalHeight) / denominator;
  const directory: TiffDirectory = {
    index: d.index,
    offset: d.offset,
    width,
    height,
    tiled: true,
    tileWidth,
    tileHeight,
    tilesAcross: Math.ceil(strip.across / strip.blockAcross),
    tilesDown: Math.ceil(strip.down / strip.blockDown),
    compression: Compression.JPEG,
    photometric: Photometric.YCbCr,
    samplesPerPixel: 3,
    bitsPerSample: 8,
    planarConfig: 1,
    predictor: 1,
    newSubfileType: 0,
    description: '',
    offsets: new Float64Array(0),
    byteCounts: new Float64Array(0),
    tags: new Map<number, TagValue>([[530, strip.header.subsampling]]),
    tagTypes: new Map(),
  };
  const source: LevelSource = { readTile: (file, col, row) => readBlock(strip, file, col, row) };
  if (denominator !== 1 || !libtiffTakes(tileWidth, tileHeight)) {
    const scale = denominator;
    source.decodeTiles = (tiles) => decodeScaled(tiles, tileWidth * scale, tileHeight * scale, scale);
  }
  return { directory, width, height, downsample: (top.width / width + top.height / height) / 2, source };
}

/** Whether libvips' TIFF reader takes tiles of this size (TIFF's multiples of 16, and its own limit of 8192), so that the general path can decode them. */
function libtiffTakes(width: number, height: number): boolean {
  return width % 16 === 0 && height % 16 === 0 && width <= 8192 && height <= 8192;
}

/** Tile (col, row) of a stored strip: its block of restart intervals as one JPEG (intervals past the edges repeat the last). */
export async function readBlock(strip: StoredStrip, file: RandomAccessFile, col: number, row: number): Promise<Buffer> {
  const { header, intervals, blockAcross: a, blockDown: b, across: q, down: r } = strip;
  if (!intervals) {
    const whole = await file.read(strip.directory.offsets[0]!, strip.directory.byteCounts[0]!, `level strip of directory ${strip.directory.index}`);
    return assembleIntervals({ ...header, bytes: whole.subarray(0, header.bytes.length) }, [[whole.subarray(header.bytes.length, whole.length - 2)]], strip.intervalWidth, strip.intervalHeight);
  }
  const firstCol = col * a;
  const lastCol = Math.min(firstCol + a, q) - 1;
  const firstRow = row * b;
  const lastRow = Math.min(firstRow + b, r) - 1;
  let rows: Buffer[][];
  if (firstCol === 0 && lastCol === q - 1) {
    // Whole rows of intervals follow each other in the file: one read.
    const all = await intervals.read(firstRow * q, lastRow * q + q - 1);
    rows = Array.from({ length: lastRow - firstRow + 1 }, (_, y) => all.slice(y * q, (y + 1) * q));
  } else {
    rows = await Promise.all(Array.from({ length: lastRow - firstRow + 1 }, (_, y) => intervals.read((firstRow + y) * q + firstCol, (firstRow + y) * q + lastCol)));
  }
  for (const pieces of rows) while (pieces.length < a) pieces.push(pieces.at(-1)!);
  while (rows.length < b) rows.push(rows.at(-1)!);
  return assembleIntervals(header, rows, a * strip.intervalWidth, b * strip.intervalHeight);
}

/**
 * Tiles decoded at 1/`denominator` by libjpeg-turbo's scaled inverse DCT, as
 * OpenSlide decodes these levels; without the native addon, decoded in full
 * and reduced with Lanczos (close, not identical). Also tiles libvips' TIFF
 * reader does not take (`denominator` 1).
 */
async function decodeScaled(tiles: Buffer[], tileWidth: number, tileHeight: number, denominator: 1 | 2 | 4 | 8): Promise<RgbImage[]> {
  const codec = scaledJpegCodec();
  const width = tileWidth / denominator;
  const height = tileHeight / denominator;
  return Promise.all(
    tiles.map(async (jpeg) => {
      if (codec) {
        try {
          return { width, height, data: await codec.decode([jpeg], 1, tileWidth, tileHeight, denominator, width, height) };
        } catch {
          // libjpeg-turbo objected (even a warning): sharp below judges the tile and names the fault.
        }
      }
      try {
        const image = sharp(jpeg, { failOn: 'error', limitInputPixels: false });
        const data = await (denominator === 1 ? image : image.resize(width, height, { fit: 'fill', kernel: 'lanczos3' })).raw().toBuffer();
        return { width, height, data };
      } catch (error) {
        throw new WsiError('decode_failed', `restart intervals cannot be decoded (${(error as Error).message.split('\n')[0]})`, { cause: error });
      }
    }),
  );
}

/** OpenSlide's properties of an NDPI file, from its first directory, and a few more of Hamamatsu's tags under names in the same style. */
function ndpiProperties(base: TiffDirectory): Record<string, string> {
  const out: Record<string, string> = { 'openslide.vendor': 'hamamatsu', ...tiffProperties(base) };
  for (const [tag, name] of [[282, 'XResolution'], [283, 'YResolution']] as const) {
    const value = first(base.tags.get(tag));
    if (value !== undefined) out[`tiff.${name}`] = openslideDouble(value);
  }
  const mpp = mppFromResolution(base);
  if (mpp) {
    out['openslide.mpp-x'] = openslideDouble(mpp.x);
    out['openslide.mpp-y'] = openslideDouble(mpp.y);
  }
  const lens = first(base.tags.get(NdpiTag.SourceLens));
  if (lens !== undefined) {
    out['hamamatsu.SourceLens'] = openslideDouble(lens);
    out['openslide.objective-power'] = openslideDouble(lens);
  }
  const number = (tag: number, name: string) => {
    const value = first(base.tags.get(tag));
    if (value !== undefined) out[`hamamatsu.${name}`] = String(value);
  };
  const text = (tag: number, name: string) => {
    const value = base.tags.get(tag);
    if (typeof value === 'string') out[`hamamatsu.${name}`] = value;
  };
  number(NdpiTag.XOffset, 'XOffsetFromSlideCentre');
  number(NdpiTag.YOffset, 'YOffsetFromSlideCentre');
  text(NdpiTag.Reference, 'Reference');
  // Not properties of OpenSlide's: the focal plane's offset (nm) and the scanner's serial number.
  number(NdpiTag.FocalPlane, 'ZOffsetFromSlideCentre');
  text(NdpiTag.ScannerSerial, 'ScannerSerialNumber');
  // The property map: `key=value` records separated by CR LF, as OpenSlide splits them.
  const map = base.tags.get(NdpiTag.PropertyMap);
  if (typeof map === 'string') {
    for (const record of map.split('\r\n')) {
      const eq = record.indexOf('=');
      if (eq > 0 && eq < record.length - 1) out[`hamamatsu.${record.slice(0, eq)}`] = record.slice(eq + 1);
    }
  }
  return out;
}

/** A number as OpenSlide prints doubles (GLib's g_ascii_dtostr: C's %.17g). */
export function openslideDouble(value: number): string {
  if (!Number.isFinite(value) || value === 0) return String(value);
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  const trim = (digits: string) => (digits.includes('.') ? digits.replace(/0+$/, '').replace(/\.$/, '') : digits);
  if (exponent < -4 || exponent >= 17) {
    const [mantissa, power] = value.toExponential(16).split('e') as [string, string];
    const sign = power.startsWith('-') ? '-' : '+';
    return `${trim(mantissa)}e${sign}${power.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  return trim(value.toPrecision(17));
}

function first(value: TagValue | undefined): number | undefined {
  return Array.isArray(value) ? value[0] : Buffer.isBuffer(value) ? value[0] : undefined;
}
