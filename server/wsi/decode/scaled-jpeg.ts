import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../../package-info.js';

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
}

const ADDON = path.join(packageRoot, 'native', 'scaled-jpeg', 'build', 'Release', 'scaled_jpeg.node');

let loaded: { codec?: ScaledJpegCodec; reason?: string } | undefined;

/** The codec, or undefined when the addon was not built or libturbojpeg is missing (see `scaledJpegUnavailable`). */
export function scaledJpegCodec(): ScaledJpegCodec | undefined {
  return load().codec;
}

/** Why the codec is not available, or undefined when it is. */
export function scaledJpegUnavailable(): string | undefined {
  return load().reason;
}

function load(): { codec?: ScaledJpegCodec; reason?: string } {
  if (!loaded) {
    try {
      loaded = { codec: createRequire(import.meta.url)(ADDON) as ScaledJpegCodec };
    } catch (error) {
      loaded = { reason: `${ADDON} cannot be loaded (${(error as Error).message.split('\n')[0]}); build it with npm run build:native` };
    }
  }
  return loaded;
}
