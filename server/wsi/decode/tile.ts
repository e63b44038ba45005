import { WsiError } from '../errors.js';
import type { TiffDirectory } from '../tiff/directory.js';
import { Compression, Photometric } from '../tiff/tags.js';
import { assembleJpeg, decodeJpeg } from './jpeg.js';
import { decodeJpeg2000 } from './jpeg2000.js';
import type { RgbImage } from './pixels.js';
import { decodeWithLibtiff } from './tiff-strip.js';

/** Compressions handed to libtiff inside sharp. */
const LIBTIFF_COMPRESSIONS = new Set<number>([
  Compression.None,
  Compression.LZW,
  Compression.Deflate,
  Compression.AdobeDeflate,
  Compression.PackBits,
  Compression.Zstd,
  Compression.WebP,
]);

/** Why a directory's pixels cannot be decoded, or undefined when they can. */
export function undecodableReason(dir: TiffDirectory): string | undefined {
  const supported =
    dir.compression === Compression.JPEG ||
    dir.compression === Compression.AperioJP2kRGB ||
    dir.compression === Compression.AperioJP2kYCbCr ||
    LIBTIFF_COMPRESSIONS.has(dir.compression);
  if (!supported) return `unsupported compression ${dir.compression}`;
  if (dir.bitsPerSample !== 8) return `unsupported ${dir.bitsPerSample}-bit samples`;
  if (dir.planarConfig !== 1) return 'unsupported separate colour planes';
  if (dir.samplesPerPixel !== 3 && dir.samplesPerPixel !== 4) return `unsupported ${dir.samplesPerPixel} samples per pixel`;
  return undefined;
}

/** The JPEG a browser can show for a stored JPEG tile, without decoding it. */
export function storedJpeg(dir: TiffDirectory, data: Buffer): Buffer {
  return assembleJpeg(data, dir.jpegTables, dir.photometric === Photometric.RGB);
}

/** Decode one stored tile (or strip) of `dir` to RGB; tiles keep their full stored size. */
export async function decodeTile(dir: TiffDirectory, data: Buffer): Promise<RgbImage> {
  const reason = undecodableReason(dir);
  if (reason) throw new WsiError('unsupported_compression', reason);
  switch (dir.compression) {
    case Compression.JPEG:
      return decodeJpeg(storedJpeg(dir, data));
    case Compression.AperioJP2kRGB:
    case Compression.AperioJP2kYCbCr:
      return decodeJpeg2000(data, dir.compression === Compression.AperioJP2kYCbCr);
    default:
      return decodeWithLibtiff(data, {
        width: dir.tileWidth,
        height: dir.tileHeight,
        compression: dir.compression,
        photometric: dir.photometric,
        samplesPerPixel: dir.samplesPerPixel,
        predictor: dir.predictor,
      });
  }
}
