import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../package-info.js';
import { loadAddon } from '../native-addon.js';

/**
 * libjpeg-turbo's scaled decoding, through the project's small native addon
 * (native/scaled-jpeg): JPEG tiles decoded at 1/2, 1/4 or 1/8 of their size
 * (the inverse DCT computes only the pixels kept) or in full, laid out
 * `across` per row, cut and encoded as one JPEG, in one call on libuv's thread
 * pool. For a Deep Zoom tile that is exactly a block of stored tiles twice as
 * fine, this costs about a tenth of decoding the block in full and resizing it
 * with sharp, most of whose cost for a tile this small is per-pipeline
 * overhead.
 */
export interface ScaledJpegCodec {
  /** `tiles` are complete JPEGs of `tileWidth`×`tileHeight`, row by row; rejects on any decoder warning. */
  mosaic(tiles: Buffer[], across: number, tileWidth: number, tileHeight: number, denominator: 2 | 4 | 8, quality: number): Promise<Buffer>;
  /** The rectangle (`left`, `top`, `width`, `height`) of the mosaic at 1/`denominator` (1, 2, 4 or 8), as one JPEG; rejects on any decoder warning. */
  crop(
    tiles: Buffer[],
    across: number,
    tileWidth: number,
    tileHeight: number,
    denominator: 1 | 2 | 4 | 8,
    left: number,
    top: number,
    width: number,
    height: number,
    quality: number,
  ): Promise<Buffer>;
  /** `width`×`height` RGB pixels as one JPEG. */
  encode(pixels: Buffer, width: number, height: number, quality: number): Promise<Buffer>;
  /** The same mosaic at 1/`denominator` (1, 2, 4 or 8) as RGB pixels, cropped to `width`×`height`; rejects on any decoder warning. */
  decode(tiles: Buffer[], across: number, tileWidth: number, tileHeight: number, denominator: 1 | 2 | 4 | 8, width: number, height: number): Promise<Buffer>;
}

/** Which tile path the engine takes for blocks of stored JPEG tiles, for the start-up log and the health details. */
export interface ScaledJpegStatus {
  /** libjpeg-turbo's scaled decoding is in use. */
  active: boolean;
  /** The libturbojpeg the addon loaded (from this process's memory map, on Linux), when active. */
  library?: string;
  /** Where that library comes from: the system's package, or the one the npm package ships beside the addon. */
  source?: 'system' | 'npm';
  /** Why it is not active: the addon's load error, or the setting. */
  reason?: string;
}

/** The most tiles one call takes. */
export const MAX_MOSAIC_TILES = 256;

/** The codec, or undefined when the addon was not built or libturbojpeg is missing (see `scaledJpegUnavailable`). */
export function scaledJpegCodec(): ScaledJpegCodec | undefined {
  return loadAddon<ScaledJpegCodec>('scaled-jpeg', 'scaled_jpeg.node').addon;
}

/** Why the codec is not available, or undefined when it is. */
export function scaledJpegUnavailable(): string | undefined {
  return loadAddon<ScaledJpegCodec>('scaled-jpeg', 'scaled_jpeg.node').reason;
}

/** The scaled path's state; `enabled` is the `tiles.scaledDecode` setting. */
export function scaledJpegStatus(enabled = true): ScaledJpegStatus {
  if (!enabled) return { active: false, reason: 'tiles.scaledDecode is false' };
  const reason = scaledJpegUnavailable();
  if (reason) return { active: false, reason };
  const library = loadedTurbojpeg();
  if (!library) return { active: true };
  // build.mjs copies the npm package's library beside the addon; the system's lives in the system's library folders.
  return { active: true, library, source: library.startsWith(path.join(packageRoot, 'native', 'scaled-jpeg', 'build') + path.sep) ? 'npm' : 'system' };
}

/** The path of the libturbojpeg mapped into this process, read from /proc/self/maps (Linux; undefined elsewhere). */
function loadedTurbojpeg(): string | undefined {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return undefined;
  }
  return /\s(\/\S*\/libturbojpeg\.so[^\s/]*)$/m.exec(maps)?.[1];
}
