import { createRequire } from 'node:module';
import sharp from 'sharp';
import { WsiError } from '../../errors.js';
import { assembleJpeg } from '../../decode/jpeg.js';
import { decodeJpeg2000, ycbcrToRgb } from '../../decode/jpeg2000.js';
import { blank, type RgbImage } from '../../decode/pixels.js';
import type { DicomInstance } from './instance.js';
import { describeSyntax, transferSyntax, type FrameCoding } from './syntax.js';

/** How an image's frames are coded: what decoding a frame to RGB needs to know. */
export interface PixelFormat {
  coding: FrameCoding;
  syntax: string;
  /** A frame's size. */
  width: number;
  height: number;
  samples: number;
  photometric: string;
  planar: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
}

export function pixelFormat(instance: DicomInstance): PixelFormat {
  return {
    coding: transferSyntax(instance.header.transferSyntax)?.coding ?? 'native',
    syntax: instance.header.transferSyntax,
    width: instance.tileWidth,
    height: instance.tileHeight,
    samples: instance.samplesPerPixel,
    photometric: instance.photometric,
    planar: instance.planarConfiguration,
    bitsAllocated: instance.bitsAllocated,
    bitsStored: instance.bitsStored,
    signed: instance.pixelRepresentation === 1,
  };
}

const GREY = new Set(['MONOCHROME1', 'MONOCHROME2']);
const COLOUR: Record<FrameCoding, Set<string>> = {
  native: new Set(['RGB', 'YBR_FULL']),
  jpeg: new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422']),
  jpeg2000: new Set(['RGB', 'YBR_FULL', 'YBR_ICT', 'YBR_RCT']),
  'jpeg-ls': new Set(['RGB', 'YBR_FULL']),
};

/** Why frames of this format cannot be decoded (the refusal's reason), or undefined when they can. */
export function unsupportedReason(format: PixelFormat): string | undefined {
  if (!transferSyntax(format.syntax)) return `transfer syntax ${describeSyntax(format.syntax)} is not supported`;
  const grey = GREY.has(format.photometric);
  if (!grey && !COLOUR[format.coding].has(format.photometric)) {
    return `photometric interpretation ${format.photometric || '(none)'} is not supported with ${describeSyntax(format.syntax)}`;
  }
  if (format.samples !== (grey ? 1 : 3)) return `${format.samples} samples per pixel with ${format.photometric}`;
  if (format.signed) return 'signed pixel values are not supported';
  const bits = format.coding === 'native' ? format.bitsAllocated : format.bitsStored;
  if (bits !== 8 && !(grey && format.coding === 'native' && bits === 16)) return `${bits}-bit samples are not supported with ${describeSyntax(format.syntax)}`;
  return undefined;
}

/**
 * Decode one frame to RGB of the frame's size. Greyscale becomes grey RGB
 * (MONOCHROME1 inverted; 16-bit samples scaled from Bits Stored to 8 bits),
 * YBR_FULL is converted with BT.601 full range, and JPEG frames of an RGB
 * image get an Adobe marker saying their components are not YCbCr. An empty
 * buffer is a tile a TILED_SPARSE image does not store: white.
 */
export async function decodeFrame(frame: Buffer, format: PixelFormat): Promise<RgbImage> {
  if (frame.length === 0) return blank(format.width, format.height);
  let image: RgbImage;
  try {
    if (format.coding === 'native') image = decodeNative(frame, format);
    else if (format.coding === 'jpeg') image = await decodeJpegFrame(frame, format);
    else if (format.coding === 'jpeg2000') image = await decodeJpeg2000(frame, format.photometric === 'YBR_FULL');
    else image = await decodeJpegLs(frame, format);
  } catch (error) {
    if (error instanceof WsiError) throw error;
    // The WebAssembly codecs throw numbers and strings as well as errors.
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new WsiError('decode_failed', `${describeSyntax(format.syntax)} frame cannot be decoded (${reason})`, { cause: error });
  }
  if (image.width !== format.width || image.height !== format.height) {
    throw new WsiError('decode_failed', `a frame decodes to ${image.width}×${image.height}, not the ${format.width}×${format.height} the instance declares`);
  }
  if (format.photometric === 'MONOCHROME1') for (let i = 0; i < image.data.length; i++) image.data[i] = 255 - image.data[i]!;
  return image;
}

function decodeNative(frame: Buffer, f: PixelFormat): RgbImage {
  const pixels = f.width * f.height;
  const data = Buffer.allocUnsafe(pixels * 3);
  if (f.samples === 1) {
    if (f.bitsAllocated === 16) {
      const max = 2 ** Math.min(16, f.bitsStored) - 1;
      for (let i = 0; i < pixels; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = Math.round(((frame.readUInt16LE(i * 2) & max) * 255) / max);
    } else {
      for (let i = 0; i < pixels; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = frame[i]!;
    }
  } else if (f.planar === 1) {
    for (let i = 0; i < pixels; i++) {
      data[i * 3] = frame[i]!;
      data[i * 3 + 1] = frame[pixels + i]!;
      data[i * 3 + 2] = frame[2 * pixels + i]!;
    }
  } else {
    frame.copy(data, 0, 0, pixels * 3);
  }
  if (f.photometric === 'YBR_FULL') ycbcrToRgb(data);
  return { width: f.width, height: f.height, data };
}

async function decodeJpegFrame(frame: Buffer, f: PixelFormat): Promise<RgbImage> {
  const jpeg = assembleJpeg(frame, undefined, f.photometric === 'RGB');
  const { data, info } = await sharp(jpeg, { failOn: 'error' }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${info.channels} channels after decoding`);
  return { width: info.width, height: info.height, data };
}

interface JpegLsDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number };
  getInterleaveMode(): number;
  delete(): void;
}

const require = createRequire(import.meta.url);
let charls: Promise<{ JpegLSDecoder: new () => JpegLsDecoder }> | undefined;

/** CharLS compiled to WebAssembly (@cornerstonejs/codec-charls), loaded on first use; its console chatter is silenced. */
function loadCharls() {
  const factory = require('@cornerstonejs/codec-charls/decodewasmjs') as (options: object) => Promise<{ JpegLSDecoder: new () => JpegLsDecoder }>;
  return (charls ??= factory({ print: () => {}, printErr: () => {} }));
}

async function decodeJpegLs(frame: Buffer, f: PixelFormat): Promise<RgbImage> {
  const { JpegLSDecoder } = await loadCharls();
  const decoder = new JpegLSDecoder();
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    decoder.decode();
    const info = decoder.getFrameInfo();
    if (info.bitsPerSample !== 8 || (info.componentCount !== 1 && info.componentCount !== 3)) {
      throw new Error(`${info.componentCount} components of ${info.bitsPerSample} bits, expected 3 (or 1) of 8`);
    }
    const decoded = decoder.getDecodedBuffer();
    const pixels = info.width * info.height;
    const data = Buffer.allocUnsafe(pixels * 3);
    if (info.componentCount === 1) {
      for (let i = 0; i < pixels; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = decoded[i]!;
    } else {
      // Interleave modes (ISO 14495-1): 0 one plane after another, 1 line by line, 2 sample by sample.
      const mode = decoder.getInterleaveMode();
      for (let y = 0; y < info.height; y++) {
        for (let x = 0; x < info.width; x++) {
          const i = y * info.width + x;
          for (let c = 0; c < 3; c++) {
            data[i * 3 + c] = decoded[mode === 0 ? c * pixels + i : mode === 1 ? (y * 3 + c) * info.width + x : i * 3 + c]!;
          }
        }
      }
      if (f.photometric === 'YBR_FULL') ycbcrToRgb(data);
    }
    return { width: info.width, height: info.height, data };
  } finally {
    decoder.delete();
  }
}
