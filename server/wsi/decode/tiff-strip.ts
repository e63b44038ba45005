import sharp from 'sharp';
import { WsiError } from '../errors.js';
import type { RgbImage } from './pixels.js';

export interface StripFormat {
  width: number;
  height: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  predictor: number;
}

/**
 * Decode one tile of a compression that libtiff handles (none, LZW, Deflate,
 * PackBits, …) by wrapping it in a one-strip TIFF in memory and letting sharp
 * read that: libvips exposes no raw-tile decoder, but it reads such a TIFF.
 */
export async function decodeWithLibtiff(data: Buffer, format: StripFormat): Promise<RgbImage> {
  try {
    const { data: pixels, info } = await sharp(wrapAsTiff(data, format), { failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: pixels };
  } catch (error) {
    throw new WsiError('decode_failed', `tile (compression ${format.compression}) cannot be decoded (${(error as Error).message.split('\n')[0]})`, {
      cause: error,
    });
  }
}

function wrapAsTiff(data: Buffer, f: StripFormat): Buffer {
  const entries: [tag: number, type: number, values: number[]][] = [
    [256, 4, [f.width]],
    [257, 4, [f.height]],
    [258, 3, new Array<number>(f.samplesPerPixel).fill(8)],
    [259, 3, [f.compression]],
    [262, 3, [f.photometric]],
    [273, 4, [0]], // patched below
    [277, 3, [f.samplesPerPixel]],
    [278, 4, [f.height]],
    [279, 4, [data.length]],
    [284, 3, [1]],
    [317, 3, [f.predictor]],
  ];
  if (f.samplesPerPixel === 4) entries.push([338, 3, [2]]);

  const ifdSize = 2 + entries.length * 12 + 4;
  const extraOffset = 8 + ifdSize;
  const extras: Buffer[] = [];
  let extraLength = 0;
  const header = Buffer.alloc(8);
  header.write('II', 0, 'latin1');
  header.writeUInt16LE(42, 2);
  header.writeUInt32LE(8, 4);
  const ifd = Buffer.alloc(ifdSize);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, values], i) => {
    const at = 2 + i * 12;
    const size = type === 3 ? 2 : 4;
    ifd.writeUInt16LE(tag, at);
    ifd.writeUInt16LE(type, at + 2);
    ifd.writeUInt32LE(values.length, at + 4);
    const bytes = Buffer.alloc(values.length * size);
    values.forEach((v, j) => (size === 2 ? bytes.writeUInt16LE(v, j * 2) : bytes.writeUInt32LE(v, j * 4)));
    if (bytes.length <= 4) bytes.copy(ifd, at + 8);
    else {
      ifd.writeUInt32LE(extraOffset + extraLength, at + 8);
      extras.push(bytes);
      extraLength += bytes.length;
    }
  });
  const dataOffset = extraOffset + extraLength;
  const stripEntry = entries.findIndex(([tag]) => tag === 273);
  ifd.writeUInt32LE(dataOffset, 2 + stripEntry * 12 + 8);
  return Buffer.concat([header, ifd, ...extras, data]);
}
