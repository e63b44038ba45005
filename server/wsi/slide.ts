import { stat } from 'node:fs/promises';
import type { LimitFunction } from 'p-limit';
import sharp, { type Sharp } from 'sharp';
import { blank, paint, type RgbImage } from './decode/pixels.js';
import { tileBlock } from './decode/libtiff.js';
import { MAX_MOSAIC_TILES, scaledJpegCodec, type ScaledJpegCodec } from './decode/scaled-jpeg.js';
import { decodeTiles, explainFailure, isJpeg2000, storedJpeg, undecodableReason } from './decode/tile.js';
import { outOfRange, tooLarge, WsiError } from './errors.js';
import type { AssociatedName, LevelLayout, SlideLayout } from './formats/format.js';
import { detectFormat, pathFormatFor } from './formats/registry.js';
import { readDirectories, type TiffDirectory } from './tiff/directory.js';
import { RandomAccessFile } from './tiff/file.js';
import { Compression } from './tiff/tags.js';
import { DecodedTileCache } from './tile-cache.js';

/** The smallest level is kept decoded whole up to this size (about 12 MB of RGB). */
const OVERVIEW_WARM_PIXELS = 4096 * 1024;

/** Source pixels one render may decode unless the caller says otherwise (8192 × 8192: about a fifth of a second of one core). */
export const DEFAULT_MAX_RENDER_SOURCE_PIXELS = 64 * 1024 * 1024;

/** Stored tiles read between two looks at a render's AbortSignal. */
const TILES_PER_READ = 64;
/** Stored tiles longer than this on a side are decoded once into the decoded-tile cache (see throughDecodedCache). */
const LONG_TILE_SIDE = 512;

export interface SlideLevel {
  width: number;
  height: number;
  downsample: number;
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  /** Stored tiles are JPEG: the passthrough path can send them as they are. */
  jpeg: boolean;
}

/** A block of stored tiles (`across`×`down` from (col, row)) at 1/`denominator`, and the rectangle of it wanted, in those reduced pixels. */
export interface CroppedBlock {
  col: number;
  row: number;
  across: number;
  down: number;
  denominator: 1 | 2 | 4 | 8;
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface OpenSlideOptions {
  /** Shared decoded-tile cache; a small private one when absent. */
  tileCache?: DecodedTileCache;
  /**
   * Bounds how many decode-and-encode jobs run at once; the rest wait in
   * order. They run on libuv's thread pool, which file reads share.
   */
  renderLimit?: LimitFunction;
  /**
   * The most pixels of a stored level one render (a Deep Zoom tile, an IIIF
   * image, a region) may decode; a larger one fails with `too_large` before
   * anything is read. Default DEFAULT_MAX_RENDER_SOURCE_PIXELS.
   */
  maxRenderSourcePixels?: number;
}

/**
 * An open whole-slide image: its pyramid, properties and associated images,
 * and reads of stored tiles and regions at any level. The first read error is
 * sticky, as in OpenSlide: once a slide has proven damaged, every later read
 * fails at once with the same error rather than returning partial pixels.
 */
export class Slide {
  readonly levels: readonly SlideLevel[];
  /** The most source pixels one render decodes (see OpenSlideOptions). */
  readonly maxRenderSourcePixels: number;
  private stickyError: WsiError | undefined;

  private constructor(
    readonly path: string,
    private readonly file: RandomAccessFile,
    private readonly layout: SlideLayout,
    private readonly cacheKey: string,
    private readonly tileCache: DecodedTileCache,
    private readonly renderLimit: LimitFunction | undefined,
    maxRenderSourcePixels: number,
  ) {
    this.levels = layout.levels.map((l) => describeLevel(l));
    this.maxRenderSourcePixels = maxRenderSourcePixels;
  }

  static async open(path: string, options: OpenSlideOptions = {}): Promise<Slide> {
    // A format that is not TIFF (a DICOM file or folder) claims its path first.
    const byPath = await pathFormatFor(path);
    const opened = byPath ? await byPath.open(path) : undefined;
    const file = opened?.file ?? (await RandomAccessFile.open(path));
    try {
      const layout = opened?.layout ?? (await tiffLayout(path, file));
      if (layout.levels.length === 0) throw new WsiError('unsupported_format', `${path}: no tiled pyramid levels`);
      for (const [i, level] of layout.levels.entries()) {
        const reason = undecodableReason(level.directory);
        if (reason) {
          throw new WsiError(reason.startsWith('unsupported compression') ? 'unsupported_compression' : 'unsupported_format', `${path}: level ${i}: ${reason}`);
        }
      }
      const info = await stat(path);
      const cacheKey = `${path}:${info.size}:${info.mtimeMs}`;
      const maxRenderSourcePixels = options.maxRenderSourcePixels ?? DEFAULT_MAX_RENDER_SOURCE_PIXELS;
      return new Slide(path, file, layout, cacheKey, options.tileCache ?? new DecodedTileCache(32 * 1024 * 1024), options.renderLimit, maxRenderSourcePixels);
    } catch (error) {
      await opened?.layout.close?.();
      await file.close();
      throw error;
    }
  }

  get vendor(): string {
    return this.layout.vendor;
  }

  get width(): number {
    return this.levels[0]!.width;
  }

  get height(): number {
    return this.levels[0]!.height;
  }

  get properties(): Readonly<Record<string, string>> {
    return this.layout.properties;
  }

  /** Microns per pixel at level 0, when the slide records it. */
  get mpp(): { x: number; y: number } | undefined {
    const x = Number(this.properties['openslide.mpp-x']);
    const y = Number(this.properties['openslide.mpp-y']);
    return x > 0 && y > 0 ? { x, y } : undefined;
  }

  get objectivePower(): number | undefined {
    const power = Number(this.properties['openslide.objective-power']);
    return power > 0 ? power : undefined;
  }

  get associatedImages(): AssociatedName[] {
    return [...this.layout.associated.keys()].sort();
  }

  associatedSize(name: AssociatedName): { width: number; height: number } | undefined {
    const dir = this.layout.associated.get(name);
    return dir ? { width: dir.width, height: dir.height } : undefined;
  }

  /** The level OpenSlide would pick: the largest downsample not above the one asked for. */
  bestLevelForDownsample(downsample: number): number {
    let best = 0;
    this.levels.forEach((level, i) => {
      if (level.downsample <= downsample) best = i;
    });
    return best;
  }

  /** The stored bytes of one tile, as a complete JPEG a browser can show (JPEG levels only). */
  async readStoredJpeg(level: number, col: number, row: number): Promise<Buffer> {
    const dir = this.directory(level);
    if (dir.compression !== Compression.JPEG || this.decodesItself(level)) throw new WsiError('unsupported_compression', `level ${level} is not stored as JPEG`);
    return this.guard(async () => storedJpeg(dir, await this.readRaw(dir, level, col, row)));
  }

  /**
   * A block of whole stored JPEG tiles (`across`×`down` from (col, row)),
   * decoded at 1/`denominator` of their size by libjpeg-turbo and encoded as
   * one JPEG. Undefined when the native codec is not built or refuses the
   * tiles (even a decoder warning): the caller takes the general path, whose
   * decoder is the one that judges a damaged tile.
   */
  async readScaledJpeg(
    level: number,
    { col, row, across, down, denominator }: { col: number; row: number; across: number; down: number; denominator: 2 | 4 | 8 },
    quality: number,
  ): Promise<Buffer | undefined> {
    if (this.stickyError) return undefined;
    return this.withJpegBlock(level, blockPositions(col, row, across, down), (codec, jpegs, dir) =>
      this.limited(() => codec.mosaic(jpegs, across, dir.tileWidth, dir.tileHeight, denominator, quality)),
    );
  }

  /**
   * The rectangle (`left`, `top`, `width`, `height`) of a block of whole
   * stored JPEG tiles (`across`×`down` from (col, row)) decoded at
   * 1/`denominator` of their size, as one JPEG made by libjpeg-turbo. A level
   * of long tiles (see throughDecodedCache) gives the rectangle from the
   * decoded-tile cache, at full size only, and its decoding fails as the
   * general path's would. Undefined where `readScaledJpeg` is, and for a
   * long-tile level at reduced size.
   */
  async readCroppedJpeg(level: number, block: CroppedBlock, quality: number): Promise<Buffer | undefined> {
    if (this.stickyError) return undefined;
    const { col, row, across, down, denominator, left, top, width, height } = block;
    if (this.throughDecodedCache(level)) {
      const codec = scaledJpegCodec();
      if (!codec || denominator !== 1 || this.decodesItself(level)) return undefined;
      const { tileWidth, tileHeight } = this.levels[level]!;
      const pixels = await this.composeFromTiles(level, col * tileWidth + left, row * tileHeight + top, width, height);
      return this.limited(() => codec.encode(pixels.data, width, height, quality));
    }
    return this.withJpegBlock(level, blockPositions(col, row, across, down), (codec, jpegs, dir) =>
      this.limited(() => codec.crop(jpegs, across, dir.tileWidth, dir.tileHeight, denominator, left, top, width, height, quality)),
    );
  }

  /** One stored tile, decoded, at its full stored size (edge tiles include the padding beyond the image). */
  async readTile(level: number, col: number, row: number): Promise<RgbImage> {
    const [tile] = await this.readTiles(level, [[col, row]]);
    return tile!;
  }

  /** Several stored tiles of one level, decoded; those not cached are decoded in one batch. */
  readTiles(level: number, positions: [col: number, row: number][]): Promise<RgbImage[]> {
    const dir = this.directory(level);
    for (const [col, row] of positions) this.checkTile(dir, level, col, row);
    const keys = positions.map(([col, row]) => `${this.cacheKey}:${level}:${col}:${row}`);
    return this.guard(() =>
      this.tileCache.getMany(keys, async (missing) => {
        const data = await Promise.all(missing.map((i) => this.readRaw(dir, level, ...positions[i]!)));
        const own = this.layout.levels[level]?.source?.decodeTiles;
        if (own) return own(data);
        return decodeTiles(dir, data, missing.map((i) => `tile (${positions[i]![0]}, ${positions[i]![1]}) at level ${level}`));
      }),
    );
  }

  /**
   * RGB pixels of the rectangle (x, y, width, height) in the coordinates of
   * `level`. Only the stored tiles that intersect it are decoded; what lies
   * outside the image is white.
   */
  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage> {
    const info = this.levels[level];
    if (!info) throw outOfRange(`no level ${level}; the slide has ${this.levels.length}`);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > 64 * 1024 * 1024) {
      throw outOfRange(`region ${width}×${height} is empty or too large`);
    }
    const inside = clip(info, x, y, width, height);
    if (!inside) return blank(width, height);
    if (this.throughDecodedCache(level)) return this.composeFromTiles(level, x, y, width, height);
    const data = await this.renderRegion(level, inside.x, inside.y, inside.width, inside.height, (image) => image.raw().toBuffer());
    const pixels = { width: inside.width, height: inside.height, data };
    if (inside.width === width && inside.height === height) return pixels;
    const out = blank(width, height);
    paint(out, pixels, inside.x - x, inside.y - y);
    return out;
  }

  /**
   * Hand `finish` a sharp pipeline that holds the rectangle (x, y, width,
   * height) of `level`, clipped to the image, for it to resize and encode.
   * For JPEG and the other libtiff codecs the stored tiles are decoded,
   * cropped, resized and encoded in that one call; JPEG 2000 tiles come
   * through the decoded-tile cache.
   *
   * A rectangle of more than `maxRenderSourcePixels` fails with `too_large`
   * before anything is read. When `signal` fires, the render stops at the
   * next batch of stored tiles, or before decoding when it is still waiting
   * its turn, with `aborted`.
   */
  async renderRegion<T>(
    level: number,
    x: number,
    y: number,
    width: number,
    height: number,
    finish: (image: Sharp) => Promise<T>,
    { viaOverview = true, queued = true, signal }: { viaOverview?: boolean; queued?: boolean; signal?: AbortSignal } = {},
  ): Promise<T> {
    const info = this.levels[level];
    if (!info) throw outOfRange(`no level ${level}; the slide has ${this.levels.length}`);
    const inside = clip(info, x, y, width, height);
    if (!inside) throw outOfRange(`region ${width}×${height} at (${x}, ${y}) lies outside level ${level}`);
    if (inside.width * inside.height > this.maxRenderSourcePixels) {
      throw tooLarge(`it needs ${inside.width}×${inside.height} pixels of level ${level}, more than the ${this.maxRenderSourcePixels} one render may decode`);
    }
    stopIfAborted(signal);
    const dir = this.directory(level);
    if (viaOverview && this.keepsOverview(level)) {
      // The smallest level serves every overview level of the Deep Zoom pyramid: kept whole.
      // Its renders are small and the first a viewer asks for, so they skip the queue.
      const overview = await this.overview();
      const raw = sharp(overview.data, { raw: { width: overview.width, height: overview.height, channels: 3 } });
      return finish(raw.extract({ left: inside.x, top: inside.y, width: inside.width, height: inside.height }));
    }
    if (this.throughDecodedCache(level)) {
      // JPEG 2000 tiles are dear to decode, NDPI's reduced levels are decoded by their driver, and long tiles hold
      // far more than one render shows: through the decoded-tile cache, where the neighbouring renders find them.
      const pixels = await this.composeFromTiles(level, inside.x, inside.y, inside.width, inside.height);
      return this.limited(() => {
        stopIfAborted(signal);
        return finish(sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: 3 } }));
      });
    }
    const positions = tilesCovering(info, inside);
    const [col0, row0] = positions[0]!;
    const across = positions.filter(([, row]) => row === row0).length;
    return this.guard(async () => {
      const tiles: Buffer[] = [];
      for (let i = 0; i < positions.length; i += TILES_PER_READ) {
        tiles.push(...(await Promise.all(positions.slice(i, i + TILES_PER_READ).map(([col, row]) => this.readRaw(dir, level, col, row)))));
        stopIfAborted(signal);
      }
      const reason = undecodableReason(dir);
      if (reason) throw new WsiError('unsupported_compression', reason);
      try {
        const image = tileBlock(dir, tiles, across).extract({
          left: inside.x - col0 * info.tileWidth,
          top: inside.y - row0 * info.tileHeight,
          width: inside.width,
          height: inside.height,
        });
        const started = () => {
          stopIfAborted(signal);
          return finish(image);
        };
        return await (queued ? this.limited(started) : started());
      } catch (error) {
        if (error instanceof WsiError && error.code === 'aborted') throw error;
        throw await explainFailure(dir, tiles, positions.map(([col, row]) => `tile (${col}, ${row}) at level ${level}`), error);
      }
    });
  }

  /** An associated image (thumbnail, label, macro) as RGB pixels. */
  async readAssociated(name: AssociatedName): Promise<RgbImage> {
    const dir = this.layout.associated.get(name);
    if (!dir) throw new WsiError('out_of_range', `${this.path}: no ${name} image`);
    return this.guard(async () => {
      const input = this.layout.readAssociated ? await this.layout.readAssociated(this.file, dir) : this.path;
      try {
        const { data, info } = await sharp(input, { page: typeof input === 'string' ? dir.index : 0, failOn: 'error', limitInputPixels: false })
          .removeAlpha()
          .toColourspace('srgb')
          .raw()
          .toBuffer({ resolveWithObject: true });
        return { width: info.width, height: info.height, data };
      } catch (error) {
        throw new WsiError('decode_failed', `${this.path}: the ${name} image cannot be decoded (${(error as Error).message.split('\n')[0]})`, { cause: error });
      }
    });
  }

  async close(): Promise<void> {
    await this.layout.close?.();
    return this.file.close();
  }

  /** Decode the smallest level into the decoded-tile cache, when it is small enough to keep. */
  async warmOverview(): Promise<void> {
    if (this.keepsOverview(this.levels.length - 1)) await this.overview();
  }

  /** Whether `level` is the smallest level and small enough to keep decoded as a whole. */
  private keepsOverview(level: number): boolean {
    const info = this.levels[level]!;
    return level === this.levels.length - 1 && info.width * info.height <= OVERVIEW_WARM_PIXELS;
  }

  /** The smallest level, decoded whole, in the decoded-tile cache (which bounds it with everything else). */
  private async overview(): Promise<RgbImage> {
    const level = this.levels.length - 1;
    const { width, height } = this.levels[level]!;
    const [image] = await this.tileCache.getMany([`${this.cacheKey}:overview`], async () => {
      if (this.decodesItself(level)) return [await this.composeFromTiles(level, 0, 0, width, height)];
      const data =
        (await this.decodeWholeJpegLevel(level)) ??
        (await this.renderRegion(level, 0, 0, width, height, (whole) => whole.raw().toBuffer(), { viaOverview: false, queued: false }));
      return [{ width, height, data }];
    });
    return image!;
  }

  /**
   * A JPEG level's pixels through libjpeg-turbo directly, a few times faster
   * than a sharp pipeline for a level this small; undefined when the codec is
   * not built or the decoder objects, and the caller's general path decides.
   */
  private decodeWholeJpegLevel(level: number): Promise<Buffer | undefined> {
    const info = this.levels[level]!;
    const positions = tilesCovering(info, { x: 0, y: 0, width: info.width, height: info.height });
    return this.withJpegBlock(level, positions, (codec, jpegs, dir) => codec.decode(jpegs, dir.tilesAcross, dir.tileWidth, dir.tileHeight, 1, info.width, info.height));
  }

  /**
   * Hand the stored JPEG tiles at `positions` (whole rows of a block), as
   * complete JPEGs, to libjpeg-turbo through `work`. Undefined when the codec
   * is not built, the level is not JPEG, the block is too large for one call,
   * or the decoder objects: the caller's general path then decides. Read
   * errors are thrown as usual.
   */
  private async withJpegBlock(
    level: number,
    positions: [number, number][],
    work: (codec: ScaledJpegCodec, jpegs: Buffer[], dir: TiffDirectory) => Promise<Buffer>,
  ): Promise<Buffer | undefined> {
    const codec = scaledJpegCodec();
    const dir = this.directory(level);
    if (!codec || dir.compression !== Compression.JPEG || this.decodesItself(level) || positions.length > MAX_MOSAIC_TILES) return undefined;
    const raw = await this.guard(() => Promise.all(positions.map(([col, row]) => this.readRaw(dir, level, col, row))));
    try {
      return await work(codec, raw.map((tile) => storedJpeg(dir, tile)), dir);
    } catch {
      return undefined;
    }
  }

  /** The rectangle painted from decoded stored tiles (kept in the decoded-tile cache); white outside the image. */
  private async composeFromTiles(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage> {
    const info = this.levels[level]!;
    const out = blank(width, height);
    const inside = clip(info, x, y, width, height);
    if (!inside) return out;
    const { tileWidth: tw, tileHeight: th } = info;
    const positions = tilesCovering(info, inside);
    const tiles = await this.readTiles(level, positions);
    positions.forEach(([col, row], i) => {
      // Clip each tile to the image: stored edge tiles carry padding.
      paint(out, tiles[i]!, col * tw - x, row * th - y, Math.min(tw, info.width - col * tw), Math.min(th, info.height - row * th));
    });
    return out;
  }

  /**
   * Levels rendered from the decoded-tile cache rather than by decoding their
   * stored tiles for each render: those that decode themselves, and those whose
   * tiles are longer than LONG_TILE_SIDE on a side — a slide published from an
   * NDPI whose restart intervals span the whole row has tiles of 3968×64, and
   * a Deep Zoom tile would otherwise decode five of them, sixteen times the
   * pixels it shows, where its neighbours need the same five.
   */
  private throughDecodedCache(level: number): boolean {
    const { tileWidth, tileHeight } = this.levels[level]!;
    return this.decodesItself(level) || Math.max(tileWidth, tileHeight) > LONG_TILE_SIDE;
  }

  /** JPEG 2000 levels, and levels whose format driver decodes their tiles (NDPI's reduced levels). */
  private decodesItself(level: number): boolean {
    return isJpeg2000(this.directory(level)) || this.layout.levels[level]?.source?.decodeTiles !== undefined;
  }

  private limited<T>(work: () => Promise<T>): Promise<T> {
    return this.renderLimit ? this.renderLimit(work) : work();
  }

  private directory(level: number): TiffDirectory {
    const layout = this.layout.levels[level];
    if (!layout) throw outOfRange(`no level ${level}; the slide has ${this.levels.length}`);
    return layout.directory;
  }

  private checkTile(dir: TiffDirectory, level: number, col: number, row: number): void {
    if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= dir.tilesAcross || row >= dir.tilesDown) {
      throw outOfRange(`no tile (${col}, ${row}) at level ${level}; it has ${dir.tilesAcross}×${dir.tilesDown}`);
    }
  }

  private async readRaw(dir: TiffDirectory, level: number, col: number, row: number): Promise<Buffer> {
    this.checkTile(dir, level, col, row);
    const source = this.layout.levels[level]?.source;
    if (source) return source.readTile(this.file, col, row);
    const index = row * dir.tilesAcross + col;
    const length = dir.byteCounts[index]!;
    if (length === 0) throw new WsiError('decode_failed', `${this.path}: tile (${col}, ${row}) at level ${level} has no data`);
    return this.file.read(dir.offsets[index]!, length, `tile (${col}, ${row}) at level ${level}`);
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    if (this.stickyError) throw this.stickyError;
    try {
      return await work();
    } catch (error) {
      if (error instanceof WsiError && (error.code === 'corrupt' || error.code === 'decode_failed')) {
        this.stickyError ??= new WsiError(error.code, error.message.startsWith(this.path) ? error.message : `${this.path}: ${error.message}`, { cause: error });
        throw this.stickyError;
      }
      throw error;
    }
  }
}

/** A TIFF slide's layout, from the first format driver that accepts its directories. */
async function tiffLayout(path: string, file: RandomAccessFile): Promise<SlideLayout> {
  const directories = await readDirectories(file);
  const { format, declined } = detectFormat(directories);
  if (!format) {
    throw new WsiError('unsupported_format', `${path}: not a supported slide (${declined.map((d) => `${d.format}: ${d.reason}`).join('; ')})`);
  }
  return format.open ? format.open(file, directories) : format.layout(directories);
}

function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new WsiError('aborted', 'the render was abandoned: its caller has gone');
}

/** The part of a rectangle that lies inside the level, or undefined when none does. */
function clip(level: SlideLevel, x: number, y: number, width: number, height: number) {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(level.width, x + width);
  const y1 = Math.min(level.height, y + height);
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : undefined;
}

/** The positions of a block of `across`×`down` stored tiles from (col, row), row by row. */
function blockPositions(col: number, row: number, across: number, down: number): [number, number][] {
  const positions: [number, number][] = [];
  for (let r = row; r < row + down; r++) for (let c = col; c < col + across; c++) positions.push([c, r]);
  return positions;
}

/** The stored tiles a rectangle inside the level touches, row by row. */
function tilesCovering(level: SlideLevel, r: { x: number; y: number; width: number; height: number }): [number, number][] {
  const col = Math.floor(r.x / level.tileWidth);
  const row = Math.floor(r.y / level.tileHeight);
  return blockPositions(col, row, Math.floor((r.x + r.width - 1) / level.tileWidth) - col + 1, Math.floor((r.y + r.height - 1) / level.tileHeight) - row + 1);
}

function describeLevel(layout: LevelLayout): SlideLevel {
  const d = layout.directory;
  return {
    width: layout.width,
    height: layout.height,
    downsample: layout.downsample,
    tileWidth: d.tileWidth,
    tileHeight: d.tileHeight,
    tilesAcross: d.tilesAcross,
    tilesDown: d.tilesDown,
    jpeg: d.compression === Compression.JPEG && layout.source?.decodeTiles === undefined,
  };
}
