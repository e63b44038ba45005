import sharp from 'sharp';
import { WsiError } from '../errors.js';
import type { TiffDirectory } from '../tiff/directory.js';
import { Compression, Photometric } from '../tiff/tags.js';
import { assembleJpeg } from './jpeg.js';
import { decodeJpeg2000 } from './jpeg2000.js';
import { decodeFailed, decodeWithLibtiff } from './libtiff.js';
import type { RgbImage } from './pixels.js';

/** Compressions that libtiff inside sharp decodes. */
const LIBTIFF_COMPRESSIONS = new Set<number>([
  Compression.None,
  Compression.LZW,
  Compression.JPEG,
  Compression.Deflate,
  Compression.AdobeDeflate,
  Compression.PackBits,
  Compression.Zstd,
  Compression.WebP,
]);

export const isJpeg2000 = (dir: TiffDirectory) =>
  dir.compression === Compression.AperioJP2kRGB || dir.compression === Compression.AperioJP2kYCbCr;

/** Why a directory's pixels cannot be decoded, or undefined when they can. */
export function undecodableReason(dir: TiffDirectory): string | undefined {
  if (!LIBTIFF_COMPRESSIONS.has(dir.compression) && !isJpeg2000(dir)) return `unsupported compression ${dir.compression}`;
  if (dir.bitsPerSample !== 8) return `unsupported ${dir.bitsPerSample}-bit samples`;
  if (dir.planarConfig !== 1) return 'unsupported separate colour planes';
  if (dir.samplesPerPixel !== 3 && dir.samplesPerPixel !== 4) return `unsupported ${dir.samplesPerPixel} samples per pixel`;
  return undefined;
}

/** The JPEG a browser can show for a stored JPEG tile, without decoding it. */
export function storedJpeg(dir: TiffDirectory, data: Buffer): Buffer {
  return assembleJpeg(data, dir.jpegTables, dir.photometric === Photometric.RGB);
}

/** Decode stored tiles of `dir` to RGB, each at its full stored size (edge tiles include their padding). */
export async function decodeTiles(dir: TiffDirectory, tiles: Buffer[], names = tiles.map((_, i) => `tile ${i + 1} of ${tiles.length}`)): Promise<RgbImage[]> {
  const reason = undecodableReason(dir);
  if (reason) throw new WsiError('unsupported_compression', reason);
  if (isJpeg2000(dir)) return Promise.all(tiles.map((t) => decodeJpeg2000(t, dir.compression === Compression.AperioJP2kYCbCr)));
  if (dir.compression === Compression.JPEG) {
    // libjpeg reports a broken tile more precisely than a TIFF wrapper around it would.
    for (const tile of tiles) if (tile[0] !== 0xff || tile[1] !== 0xd8) throw new WsiError('decode_failed', 'JPEG tile data does not start with a JPEG marker');
  }
  try {
    return await decodeWithLibtiff(dir, tiles);
  } catch (error) {
    throw await explainFailure(dir, tiles, names, error);
  }
}

/**
 * After a batch of tiles failed to decode, find which tile is broken and why.
 * libtiff's messages reach libvips through a shared error buffer that
 * concurrent pipelines can overwrite, so JPEG tiles are decoded once more one
 * by one with libjpeg, whose message names the fault ("Bogus marker length").
 */
export async function explainFailure(dir: TiffDirectory, tiles: Buffer[], names: string[], original: unknown): Promise<WsiError> {
  if (dir.compression === Compression.JPEG) {
    for (const [i, tile] of tiles.entries()) {
      try {
        await sharp(storedJpeg(dir, tile), { failOn: 'error' }).raw().toBuffer();
      } catch (error) {
        const reason = error instanceof WsiError ? error.message : (error as Error).message.split('\n')[0];
        return new WsiError('decode_failed', `${names[i]} cannot be decoded (${reason})`, { cause: error });
      }
    }
  }
  return decodeFailed(original);
}
