import type { RgbImage } from '../decode/pixels.js';
import type { TiffDirectory } from '../tiff/directory.js';
import type { RandomAccessFile } from '../tiff/file.js';

export interface LevelLayout {
  directory: TiffDirectory;
  width: number;
  height: number;
  /** Level-0 size over this level's size, averaged over both axes (OpenSlide's definition). */
  downsample: number;
  /**
   * Where the level's tiles come from when they are not the directory's own
   * tiles: NDPI levels are one JPEG strip, whose restart intervals the
   * driver hands out in blocks as complete JPEG tiles (`directory` then
   * describes those tiles).
   */
  source?: LevelSource;
}

export interface LevelSource {
  /** Tile (col, row) as a complete JPEG. */
  readTile(file: RandomAccessFile, col: number, row: number): Promise<Buffer>;
  /**
   * Set where the driver decodes the level's tiles itself (NDPI levels that
   * are a stored level decoded at 1/2, 1/4 or 1/8 of its size), to RGB tiles
   * of the directory's tile size.
   */
  decodeTiles?(tiles: Buffer[]): Promise<RgbImage[]>;
}

export type AssociatedName = 'thumbnail' | 'label' | 'macro';

export interface SlideLayout {
  vendor: string;
  levels: LevelLayout[];
  associated: Map<AssociatedName, TiffDirectory>;
  properties: Record<string, string>;
  /** An associated image as an encoded image sharp reads, where the driver reads them itself (NDPI). */
  readAssociated?(file: RandomAccessFile, directory: TiffDirectory): Promise<Buffer>;
  /** Closes what the driver opened besides the slide's file (a DICOM series' other instances). */
  close?(): Promise<void>;
}

/**
 * A slide format driver: `detect` says why it declines a file (undefined when
 * it accepts), `layout` classifies the directories. Drivers are tried from the
 * most specific to the most generic.
 */
export interface SlideFormat {
  name: string;
  detect(directories: TiffDirectory[]): string | undefined;
  layout(directories: TiffDirectory[]): SlideLayout;
  /**
   * The layout a slide is read with, where it needs more than the
   * directories (NDPI reads each level's JPEG header); `layout` otherwise.
   */
  open?(file: RandomAccessFile, directories: TiffDirectory[]): Promise<SlideLayout>;
}

/**
 * A format that is not TIFF (DICOM): it recognises a path, a file or a
 * folder, by itself, and opens the slide from it. Its levels and associated
 * images are described as TIFF directories would be (their tile grids), and
 * their tiles come through `LevelSource`.
 */
export interface PathSlideFormat {
  name: string;
  /** Whether the path is this format's: cheap (a folder, or a few bytes of a file); false lets the TIFF formats try. */
  claims(path: string): Promise<boolean>;
  /** The slide's layout and the file `Slide` reads through (the driver's `readTile` may read others). */
  open(path: string): Promise<{ file: RandomAccessFile; layout: SlideLayout }>;
}

/** Tiled directories as pyramid levels, largest first, with their downsamples. */
export function levelsFrom(directories: TiffDirectory[]): LevelLayout[] {
  const tiled = directories.filter((d) => d.tiled).sort((a, b) => b.width - a.width || b.height - a.height);
  const base = tiled[0];
  if (!base) return [];
  return tiled.map((directory) => ({
    directory,
    width: directory.width,
    height: directory.height,
    downsample: (base.width / directory.width + base.height / directory.height) / 2,
  }));
}

/** OpenSlide's standard per-level properties, so tools built for it find what they expect. */
export function levelProperties(levels: LevelLayout[]): Record<string, string> {
  const out: Record<string, string> = { 'openslide.level-count': String(levels.length) };
  levels.forEach((level, i) => {
    out[`openslide.level[${i}].width`] = String(level.width);
    out[`openslide.level[${i}].height`] = String(level.height);
    out[`openslide.level[${i}].downsample`] = String(level.downsample);
    out[`openslide.level[${i}].tile-width`] = String(level.directory.tileWidth);
    out[`openslide.level[${i}].tile-height`] = String(level.directory.tileHeight);
  });
  return out;
}
