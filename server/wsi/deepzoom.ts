import type { Sharp } from 'sharp';
import { MAX_MOSAIC_TILES } from './decode/scaled-jpeg.js';
import { outOfRange } from './errors.js';
import type { CroppedBlock, Slide, SlideLevel } from './slide.js';

export type TileFormat = 'jpeg' | 'png' | 'webp';

export interface DeepZoomGrid {
  tileSize: number;
  overlap: number;
}

/** OpenSlide's DeepZoomGenerator defaults, for viewers and tools that expect them. */
export const OPENSLIDE_GRID: DeepZoomGrid = { tileSize: 254, overlap: 1 };

export interface TileRequest {
  level: number;
  col: number;
  row: number;
}

/** One Deep Zoom level: its size in pixels and its tiles per row and column. */
export interface DeepZoomLevel {
  width: number;
  height: number;
  cols: number;
  rows: number;
}

/**
 * The Deep Zoom pyramid of an image of `width` × `height` on `grid`, without
 * a slide behind it (overlays such as heat maps share it with their slide):
 * level N is full resolution, each level below halves it rounding up, level 0
 * is 1×1.
 */
export function deepZoomGeometry(width: number, height: number, grid: DeepZoomGrid): { width: number; height: number; grid: DeepZoomGrid; levels: DeepZoomLevel[] } {
  const sizes: { width: number; height: number }[] = [];
  let w = width;
  let h = height;
  sizes.push({ width: w, height: h });
  while (w > 1 || h > 1) {
    w = Math.ceil(w / 2);
    h = Math.ceil(h / 2);
    sizes.push({ width: w, height: h });
  }
  sizes.reverse();
  const levels = sizes.map((size) => ({ ...size, cols: Math.ceil(size.width / grid.tileSize), rows: Math.ceil(size.height / grid.tileSize) }));
  return { width, height, grid, levels };
}

/**
 * The rectangle a tile covers in its Deep Zoom level's pixels: tile (col, row)
 * starts `overlap` pixels before col·tileSize (none on the first column or
 * row) and carries `overlap` pixels past its end (none on the last).
 */
export function deepZoomTileRect(levels: readonly DeepZoomLevel[], grid: DeepZoomGrid, { level, col, row }: TileRequest): { x: number; y: number; width: number; height: number } {
  const dz = levels[level];
  if (!dz) throw outOfRange(`no Deep Zoom level ${level}; levels are 0–${levels.length - 1}`);
  if (col < 0 || row < 0 || col >= dz.cols || row >= dz.rows) {
    throw outOfRange(`no tile ${col}_${row} at Deep Zoom level ${level}; it has ${dz.cols}×${dz.rows} tiles`);
  }
  const { tileSize: t, overlap: o } = grid;
  const tlX = col > 0 ? o : 0;
  const tlY = row > 0 ? o : 0;
  const brX = col < dz.cols - 1 ? o : 0;
  const brY = row < dz.rows - 1 ? o : 0;
  return { x: t * col - tlX, y: t * row - tlY, width: Math.min(t, dz.width - t * col) + tlX + brX, height: Math.min(t, dz.height - t * row) + tlY + brY };
}

/** The `.dzi` XML of an image of `width` × `height` on `grid`. */
export function deepZoomDescriptor(width: number, height: number, grid: DeepZoomGrid, format: TileFormat): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="${format}" Overlap="${grid.overlap}" TileSize="${grid.tileSize}">`,
    `<Size Height="${height}" Width="${width}"/>`,
    '</Image>',
    '',
  ].join('\n');
}

/** Where a Deep Zoom tile's pixels come from in the slide. */
export interface TileSource {
  slideLevel: number;
  /** Rectangle to read, in the slide level's pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Size of the Deep Zoom tile. */
  outWidth: number;
  outHeight: number;
  /** Set when the tile is exactly one stored JPEG tile: its (col, row) at `slideLevel`. */
  stored?: { col: number; row: number };
  /**
   * Set when the tile is exactly a block of whole stored JPEG tiles at 2, 4
   * or 8 times its resolution: the block's first tile, its size in tiles,
   * and the factor.
   */
  scaled?: { col: number; row: number; across: number; down: number; denominator: 2 | 4 | 8 };
  /**
   * Set when the tile is a rectangle of stored JPEG tiles at 1, 2, 4 or 8
   * times its resolution that needs no other resizing (the 254/1 grid's
   * tiles, most of them): the stored tiles it touches, the factor, and where
   * the tile lies in that block decoded at the reduced size.
   */
  cropped?: CroppedBlock;
}

/**
 * How a tile was made: the stored JPEG tile as it is, a block of stored tiles
 * decoded at reduced size, a rectangle of stored tiles decoded and cut by
 * libjpeg-turbo, or decoded and resized through sharp.
 */
export type TileMaking = 'stored' | 'scaled' | 'cropped' | 'rendered';

export interface DeepZoomOptions {
  /**
   * Decode blocks of stored JPEG tiles at reduced size with libjpeg-turbo
   * (see decode/scaled-jpeg.ts) where the addon is built; otherwise, and for
   * every other tile, decode in full and resize with Lanczos. Default true.
   */
  scaledDecode?: boolean;
  /**
   * Serve a Deep Zoom level from a stored level within a pixel of its size,
   * as it is, even when that level's downsample is a hair above the level's
   * own. Scanners round level sizes down (60000 px at 64× is 937, a
   * downsample of 64.03), and OpenSlide's rule then draws that Deep Zoom
   * level from the next finer level at a quarter size. Default false:
   * OpenSlide's choice, level by level.
   */
  sameSizeLevels?: boolean;
}

/**
 * Deep Zoom geometry for a slide (the DZI conventions: level N is full
 * resolution, each level below halves it rounding up, level 0 is 1×1; tiles of
 * `tileSize` with `overlap` pixels shared with each neighbour) and the
 * mapping of each tile to the stored level that serves it.
 */
export class DeepZoom {
  readonly levels: readonly (DeepZoomLevel & { slideLevel: number })[];

  private readonly scaledDecode: boolean;
  private readonly sameSizeLevels: boolean;

  constructor(
    private readonly slide: Slide,
    readonly grid: DeepZoomGrid,
    { scaledDecode = true, sameSizeLevels = false }: DeepZoomOptions = {},
  ) {
    this.scaledDecode = scaledDecode;
    this.sameSizeLevels = sameSizeLevels;
    const geometry = deepZoomGeometry(slide.width, slide.height, grid);
    const top = geometry.levels.length - 1;
    this.levels = geometry.levels.map((level, index) => {
      const sameSize = sameSizeLevels ? slide.levels.findIndex((stored) => isSameSize(stored, level)) : -1;
      return { ...level, slideLevel: sameSize >= 0 ? sameSize : slide.bestLevelForDownsample(2 ** (top - index)) };
    });
  }

  /**
   * The grid that lets most tiles pass through undecoded: the slide's own
   * square tile size and no overlap, when every level is JPEG-tiled alike.
   */
  static nativeGrid(slide: Slide): DeepZoomGrid | undefined {
    const [first] = slide.levels;
    if (!first || first.tileWidth !== first.tileHeight) return undefined;
    const uniform = slide.levels.every((l) => l.jpeg && l.tileWidth === first.tileWidth && l.tileHeight === first.tileHeight);
    return uniform ? { tileSize: first.tileWidth, overlap: 0 } : undefined;
  }

  descriptor(format: TileFormat): string {
    return deepZoomDescriptor(this.slide.width, this.slide.height, this.grid, format);
  }

  /** The slide rectangle behind a tile, following OpenSlide's DeepZoomGenerator arithmetic. */
  source({ level, col, row }: TileRequest): TileSource {
    const dz = this.levels[level]!;
    const rect = deepZoomTileRect(this.levels, this.grid, { level, col, row });
    const { tileSize: t, overlap: o } = this.grid;
    const top = this.levels.length - 1;
    const slideLevel = this.slide.levels[dz.slideLevel]!;
    // Deep Zoom pixels → slide-level pixels; one to one on a level of the same size (its missing last pixel is stretched over).
    const scale = this.sameSizeLevels && isSameSize(slideLevel, dz) ? 1 : 2 ** (top - level) / slideLevel.downsample;

    const tlX = col > 0 ? o : 0;
    const tlY = row > 0 ? o : 0;
    const outWidth = rect.width;
    const outHeight = rect.height;
    const lx = scale * (t * col - tlX);
    const ly = scale * (t * row - tlY);
    // OpenSlide rounds the level-0 position down, then reads from there.
    const x = Math.round(Math.floor(lx * slideLevel.downsample) / slideLevel.downsample);
    const y = Math.round(Math.floor(ly * slideLevel.downsample) / slideLevel.downsample);
    const width = Math.max(1, Math.min(Math.ceil(scale * outWidth), slideLevel.width - Math.ceil(lx)));
    const height = Math.max(1, Math.min(Math.ceil(scale * outHeight), slideLevel.height - Math.ceil(ly)));

    const source: TileSource = { slideLevel: dz.slideLevel, x, y, width, height, outWidth, outHeight };
    const native = isSameSize(slideLevel, dz);
    const interior = (col + 1) * t <= slideLevel.width && (row + 1) * t <= slideLevel.height;
    if (
      slideLevel.jpeg &&
      o === 0 &&
      native &&
      interior &&
      t === slideLevel.tileWidth &&
      t === slideLevel.tileHeight &&
      outWidth === t &&
      outHeight === t
    ) {
      source.stored = { col, row };
    }
    const factor = Math.round(scale);
    const { tileWidth: tw, tileHeight: th } = slideLevel;
    if (
      slideLevel.jpeg &&
      o === 0 &&
      (factor === 2 || factor === 4 || factor === 8) &&
      scale === factor &&
      outWidth === t &&
      outHeight === t &&
      width === factor * t &&
      height === factor * t &&
      x % tw === 0 &&
      y % th === 0 &&
      width % tw === 0 &&
      height % th === 0 &&
      tw % factor === 0 &&
      th % factor === 0 &&
      x + width <= slideLevel.width &&
      y + height <= slideLevel.height &&
      (width / tw) * (height / th) <= MAX_MOSAIC_TILES
    ) {
      source.scaled = { col: x / tw, row: y / th, across: width / tw, down: height / th, denominator: factor };
    }
    if (!source.stored && !source.scaled && slideLevel.jpeg) source.cropped = croppedBlock(slideLevel, source, factor);
    return source;
  }

  /**
   * Render one tile. A stored JPEG tile that is exactly the Deep Zoom tile is
   * sent as it is (passthrough); a JPEG tile that is exactly a block of stored
   * JPEG tiles 2, 4 or 8 times finer is decoded at that reduced size by
   * libjpeg-turbo, when it can, and one that is a rectangle of such a block
   * (or of stored tiles at its own resolution) is decoded, cut and encoded
   * there too; everything else is decoded from the stored tiles that
   * intersect it, resized with Lanczos, and encoded.
   */
  async tile(request: TileRequest, format: TileFormat, quality: number): Promise<{ body: Buffer; made: TileMaking }> {
    const source = this.source(request);
    if (source.stored && format === 'jpeg') {
      return { body: await this.slide.readStoredJpeg(source.slideLevel, source.stored.col, source.stored.row), made: 'stored' };
    }
    if (source.scaled && format === 'jpeg' && this.scaledDecode) {
      // Undefined when the addon is missing or the decoder objected: the general path below then decides.
      const body = await this.slide.readScaledJpeg(source.slideLevel, source.scaled, quality);
      if (body) return { body, made: 'scaled' };
    }
    if (source.cropped && format === 'jpeg' && this.scaledDecode) {
      const body = await this.slide.readCroppedJpeg(source.slideLevel, source.cropped, quality);
      if (body) return { body, made: 'cropped' };
    }
    const body = await this.slide.renderRegion(source.slideLevel, source.x, source.y, source.width, source.height, (image) => {
      const sized =
        source.width === source.outWidth && source.height === source.outHeight
          ? image
          : image.resize(source.outWidth, source.outHeight, { fit: 'fill', kernel: 'lanczos3' });
      return encode(sized, format, quality);
    });
    return { body, made: 'rendered' };
  }
}

/**
 * The block of stored tiles that holds a tile's source rectangle pixel for
 * pixel once decoded at 1/`factor`: the rectangle is `factor` times the tile
 * on both axes, starts on a multiple of `factor`, and lies inside the level.
 * Undefined otherwise, and for blocks larger than one decode call takes.
 */
function croppedBlock(level: SlideLevel, source: TileSource, factor: number): CroppedBlock | undefined {
  const { x, y, width, height, outWidth, outHeight } = source;
  const { tileWidth: tw, tileHeight: th } = level;
  if (factor !== 1 && factor !== 2 && factor !== 4 && factor !== 8) return undefined;
  if (width !== factor * outWidth || height !== factor * outHeight || x % factor !== 0 || y % factor !== 0) return undefined;
  if (tw % factor !== 0 || th % factor !== 0 || x < 0 || y < 0 || x + width > level.width || y + height > level.height) return undefined;
  const col = Math.floor(x / tw);
  const row = Math.floor(y / th);
  const across = Math.floor((x + width - 1) / tw) - col + 1;
  const down = Math.floor((y + height - 1) / th) - row + 1;
  if (across * down > MAX_MOSAIC_TILES) return undefined;
  return { col, row, across, down, denominator: factor, left: (x - col * tw) / factor, top: (y - row * th) / factor, width: outWidth, height: outHeight };
}

/** Sizes that differ only by the rounding of a halving. */
function isSameSize(a: { width: number; height: number }, b: { width: number; height: number }): boolean {
  return Math.abs(a.width - b.width) <= 1 && Math.abs(a.height - b.height) <= 1;
}

export function encode(image: Sharp, format: TileFormat, quality: number): Promise<Buffer> {
  if (format === 'png') return image.png({ compressionLevel: 6 }).toBuffer();
  if (format === 'webp') return image.webp({ quality }).toBuffer();
  // Two-pass Huffman optimisation saves ~5% of the bytes for ~10% more CPU: on an intranet, CPU is dearer.
  return image.jpeg({ quality, optimiseCoding: false }).toBuffer();
}
