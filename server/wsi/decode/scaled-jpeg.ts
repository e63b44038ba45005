import { loadAddon } from '../native-addon.js';

/**
 * libjpeg-turbo's scaled decoding, through the project's small native addon
 * (native/scaled-jpeg): JPEG tiles decoded at 1/2, 1/4 or 1/8 of their size
 * (the inverse DCT computes only the pixels kept), laid out `across` per row
 * and encoded as one JPEG, in one call on libuv's thread pool. For a Deep Zoom
 * tile that is exactly a block of stored tiles twice as fine, this costs about
 * a tenth of decoding the block in full and resizing it with sharp, most of
 * whose cost for a tile this small is per-pipeline overhead.
 */
export interface ScaledJpegCodec {
  /** `tiles` are complete JPEGs of `tileWidth`×`tileHeight`, row by row; rejects on any decoder warning. */
  mosaic(tiles: Buffer[], across: number, tileWidth: number, tileHeight: number, denominator: 2 | 4 | 8, quality: number): Promise<Buffer>;
  /** The same mosaic at 1/`denominator` (1, 2, 4 or 8) as RGB pixels, cropped to `width`×`height`; rejects on any decoder warning. */
  decode(tiles: Buffer[], across: number, tileWidth: number, tileHeight: number, denominator: 1 | 2 | 4 | 8, width: number, height: number): Promise<Buffer>;
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
