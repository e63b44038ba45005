import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { blank, paint, type RgbImage } from './decode/pixels.js';
import { decodeTile, storedJpeg, undecodableReason } from './decode/tile.js';
import { outOfRange, WsiError } from './errors.js';
import type { AssociatedName, LevelLayout, SlideLayout } from './formats/format.js';
import { detectFormat } from './formats/registry.js';
import { readDirectories, type TiffDirectory } from './tiff/directory.js';
import { RandomAccessFile } from './tiff/file.js';
import { Compression } from './tiff/tags.js';
import { DecodedTileCache } from './tile-cache.js';

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

export interface OpenSlideOptions {
  /** Shared decoded-tile cache; a small private one when absent. */
  tileCache?: DecodedTileCache;
}

/**
 * An open whole-slide image: its pyramid, properties and associated images,
 * and reads of stored tiles and regions at any level. The first read error is
 * sticky, as in OpenSlide: once a slide has proven damaged, every later read
 * fails at once with the same error rather than returning partial pixels.
 */
export class Slide {
  readonly levels: readonly SlideLevel[];
  private stickyError: WsiError | undefined;

  private constructor(
    readonly path: string,
    private readonly file: RandomAccessFile,
    private readonly layout: SlideLayout,
    private readonly cacheKey: string,
    private readonly tileCache: DecodedTileCache,
  ) {
    this.levels = layout.levels.map((l) => describeLevel(l));
  }

  static async open(path: string, options: OpenSlideOptions = {}): Promise<Slide> {
    const file = await RandomAccessFile.open(path);
    try {
      const directories = await readDirectories(file);
      const { format, declined } = detectFormat(directories);
      if (!format) {
        throw new WsiError('unsupported_format', `${path}: not a supported slide (${declined.map((d) => `${d.format}: ${d.reason}`).join('; ')})`);
      }
      const layout = format.layout(directories);
      if (layout.levels.length === 0) throw new WsiError('unsupported_format', `${path}: no tiled pyramid levels`);
      for (const [i, level] of layout.levels.entries()) {
        const reason = undecodableReason(level.directory);
        if (reason) {
          throw new WsiError(reason.startsWith('unsupported compression') ? 'unsupported_compression' : 'unsupported_format', `${path}: level ${i}: ${reason}`);
        }
      }
      const info = await stat(path);
      const cacheKey = `${path}:${info.size}:${info.mtimeMs}`;
      return new Slide(path, file, layout, cacheKey, options.tileCache ?? new DecodedTileCache(32 * 1024 * 1024));
    } catch (error) {
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
    if (dir.compression !== Compression.JPEG) throw new WsiError('unsupported_compression', `level ${level} is not stored as JPEG`);
    return this.guard(async () => storedJpeg(dir, await this.readRaw(dir, level, col, row)));
  }

  /** One stored tile, decoded, at its full stored size (edge tiles include the padding beyond the image). */
  readTile(level: number, col: number, row: number): Promise<RgbImage> {
    const dir = this.directory(level);
    return this.guard(() =>
      this.tileCache.get(`${this.cacheKey}:${level}:${col}:${row}`, async () => decodeTile(dir, await this.readRaw(dir, level, col, row))),
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
    const out = blank(width, height);
    const { tileWidth: tw, tileHeight: th } = info;
    const col0 = Math.max(0, Math.floor(x / tw));
    const row0 = Math.max(0, Math.floor(y / th));
    const col1 = Math.min(info.tilesAcross - 1, Math.floor((x + width - 1) / tw));
    const row1 = Math.min(info.tilesDown - 1, Math.floor((y + height - 1) / th));
    const jobs: Promise<void>[] = [];
    for (let row = row0; row <= row1; row++) {
      for (let col = col0; col <= col1; col++) {
        jobs.push(
          this.readTile(level, col, row).then((tile) => {
            // Clip the tile to the image: stored edge tiles carry padding.
            const validW = Math.min(tw, info.width - col * tw);
            const validH = Math.min(th, info.height - row * th);
            paint(out, tile, col * tw - x, row * th - y, validW, validH);
          }),
        );
      }
    }
    await Promise.all(jobs);
    return out;
  }

  /** An associated image (thumbnail, label, macro) as RGB pixels. */
  async readAssociated(name: AssociatedName): Promise<RgbImage> {
    const dir = this.layout.associated.get(name);
    if (!dir) throw new WsiError('out_of_range', `${this.path}: no ${name} image`);
    return this.guard(async () => {
      try {
        const { data, info } = await sharp(this.path, { page: dir.index, failOn: 'error', limitInputPixels: false })
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

  close(): Promise<void> {
    return this.file.close();
  }

  private directory(level: number): TiffDirectory {
    const layout = this.layout.levels[level];
    if (!layout) throw outOfRange(`no level ${level}; the slide has ${this.levels.length}`);
    return layout.directory;
  }

  private async readRaw(dir: TiffDirectory, level: number, col: number, row: number): Promise<Buffer> {
    if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= dir.tilesAcross || row >= dir.tilesDown) {
      throw outOfRange(`no tile (${col}, ${row}) at level ${level}; it has ${dir.tilesAcross}×${dir.tilesDown}`);
    }
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
    jpeg: d.compression === Compression.JPEG,
  };
}
