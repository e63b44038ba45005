import { createRequire } from 'node:module';
import { WsiError } from '../errors.js';
import type { RgbImage } from './pixels.js';

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete(): void;
}
interface OpenJpegModule {
  J2KDecoder: new () => J2KDecoder;
}

const require = createRequire(import.meta.url);
let codec: Promise<OpenJpegModule> | undefined;

/** OpenJPEG compiled to WebAssembly, loaded on first use; its console chatter is silenced. */
function loadCodec(): Promise<OpenJpegModule> {
  const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as (options: object) => Promise<OpenJpegModule>;
  return (codec ??= factory({ print: () => {}, printErr: () => {} }));
}

/**
 * Decode a JPEG 2000 tile (a raw J2K codestream: Aperio's, or a DICOM
 * frame's). `ycbcr` is true for compression 33003, whose components are YCbCr
 * and need converting to RGB. A greyscale codestream comes back as grey RGB.
 */
export async function decodeJpeg2000(codestream: Buffer, ycbcr: boolean): Promise<RgbImage> {
  const { J2KDecoder } = await loadCodec();
  const decoder = new J2KDecoder();
  try {
    decoder.getEncodedBuffer(codestream.length).set(codestream);
    decoder.decode();
    const info = decoder.getFrameInfo();
    if ((info.componentCount !== 3 && info.componentCount !== 1) || info.bitsPerSample !== 8) {
      throw new Error(`${info.componentCount} components of ${info.bitsPerSample} bits, expected 3 (or 1) of 8`);
    }
    const decoded = decoder.getDecodedBuffer();
    if (info.componentCount === 1) return { width: info.width, height: info.height, data: greyToRgb(decoded) };
    const data = Buffer.from(decoded);
    if (ycbcr) ycbcrToRgb(data);
    return { width: info.width, height: info.height, data };
  } catch (error) {
    if (error instanceof WsiError) throw error;
    throw new WsiError('decode_failed', `JPEG 2000 tile cannot be decoded (${(error as Error).message ?? String(error)})`, { cause: error });
  } finally {
    decoder.delete();
  }
}

/** One grey sample per pixel, repeated into R, G and B. */
function greyToRgb(grey: Uint8Array): Buffer {
  const data = Buffer.allocUnsafe(grey.length * 3);
  for (let i = 0, j = 0; i < grey.length; i++, j += 3) data[j] = data[j + 1] = data[j + 2] = grey[i]!;
  return data;
}

/** ITU-R BT.601 full-range YCbCr to RGB, in place. */
export function ycbcrToRgb(data: Buffer): void {
  for (let i = 0; i < data.length; i += 3) {
    const y = data[i]!;
    const cb = data[i + 1]! - 128;
    const cr = data[i + 2]! - 128;
    data[i] = clamp(y + 1.402 * cr);
    data[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    data[i + 2] = clamp(y + 1.772 * cb);
  }
}

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
