import sharp, { type Sharp } from 'sharp';
import { WsiError } from '../errors.js';
import type { TiffDirectory } from '../tiff/directory.js';
import { Tag } from '../tiff/tags.js';
import type { RgbImage } from './pixels.js';

// libvips' operation cache only costs memory here: no pipeline is ever repeated.
sharp.cache(false);

/**
 * Decode several stored tiles of one directory in a single sharp call (they
 * come back one by one, for the decoded-tile cache): the
 * tiles' bytes, unchanged, become a one-row tiled TIFF in memory with the
 * directory's coding tags (compression, photometric, JPEGTables, subsampling,
 * predictor), which libtiff inside libvips decodes as it decodes the slide
 * itself. One call for many tiles matters: the per-call cost of sharp is
 * larger than the cost of decoding a 240×240 JPEG.
 */
export async function decodeWithLibtiff(dir: TiffDirectory, tiles: Buffer[]): Promise<RgbImage[]> {
  const { tileWidth: tw, tileHeight: th } = dir;
  let data: Buffer;
  try {
    data = await tileBlock(dir, tiles, tiles.length).raw().toBuffer();
  } catch (error) {
    throw decodeFailed(error);
  }
  const rowBytes = tw * 3;
  const stride = rowBytes * tiles.length;
  return tiles.map((_, i) => {
    const tile = Buffer.allocUnsafe(rowBytes * th);
    for (let y = 0; y < th; y++) data.copy(tile, y * rowBytes, y * stride + i * rowBytes, y * stride + (i + 1) * rowBytes);
    return { width: tw, height: th, data: tile };
  });
}

/**
 * A sharp pipeline over a block of stored tiles, `across` tiles wide, given
 * row by row: the caller extracts, resizes and encodes in the same call.
 */
export function tileBlock(dir: TiffDirectory, tiles: Buffer[], across: number): Sharp {
  return sharp(wrapAsTiff(dir, tiles, across), { failOn: 'error', limitInputPixels: false }).removeAlpha().toColourspace('srgb');
}

export function decodeFailed(error: unknown): WsiError {
  if (error instanceof WsiError) return error;
  return new WsiError('decode_failed', `tile data cannot be decoded (${(error as Error).message.split('\n')[0]})`, { cause: error });
}

type Entry = [tag: number, type: 3 | 4 | 7, values: number[] | Buffer];

function wrapAsTiff(dir: TiffDirectory, tiles: Buffer[], across: number): Buffer {
  const entries: Entry[] = [
    [Tag.ImageWidth, 4, [dir.tileWidth * across]],
    [Tag.ImageLength, 4, [dir.tileHeight * Math.ceil(tiles.length / across)]],
    [Tag.BitsPerSample, 3, new Array<number>(dir.samplesPerPixel).fill(8)],
    [Tag.Compression, 3, [dir.compression]],
    [Tag.Photometric, 3, [dir.photometric]],
    [Tag.SamplesPerPixel, 3, [dir.samplesPerPixel]],
    [Tag.PlanarConfig, 3, [1]],
    [Tag.Predictor, 3, [dir.predictor]],
    [Tag.TileWidth, 4, [dir.tileWidth]],
    [Tag.TileLength, 4, [dir.tileHeight]],
    [Tag.TileOffsets, 4, new Array<number>(tiles.length).fill(0)],
    [Tag.TileByteCounts, 4, tiles.map((t) => t.length)],
  ];
  if (dir.samplesPerPixel === 4) entries.push([Tag.ExtraSamples, 3, [2]]);
  if (dir.jpegTables) entries.push([Tag.JPEGTables, 7, dir.jpegTables]);
  const subsampling = dir.tags.get(Tag.YCbCrSubSampling);
  if (Array.isArray(subsampling)) entries.push([Tag.YCbCrSubSampling, 3, subsampling]);
  entries.sort((a, b) => a[0] - b[0]);

  const ifdSize = 2 + entries.length * 12 + 4;
  const ifd = Buffer.alloc(ifdSize);
  const outOfLine: Buffer[] = [];
  let cursor = 8 + ifdSize;
  let tileOffsetsValues: Buffer | undefined;
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, values], i) => {
    const at = 2 + i * 12;
    const bytes = Buffer.isBuffer(values) ? values : encode(values, type);
    ifd.writeUInt16LE(tag, at);
    ifd.writeUInt16LE(type, at + 2);
    ifd.writeUInt32LE(Buffer.isBuffer(values) ? values.length : values.length, at + 4);
    if (bytes.length <= 4) {
      bytes.copy(ifd, at + 8);
      if (tag === Tag.TileOffsets) tileOffsetsValues = ifd.subarray(at + 8, at + 12);
    } else {
      ifd.writeUInt32LE(cursor, at + 8);
      outOfLine.push(bytes);
      cursor += bytes.length + (bytes.length % 2); // word alignment
      if (bytes.length % 2) outOfLine.push(Buffer.alloc(1));
      if (tag === Tag.TileOffsets) tileOffsetsValues = bytes;
    }
  });
  tiles.forEach((tile, i) => {
    tileOffsetsValues!.writeUInt32LE(cursor, i * 4);
    cursor += tile.length;
  });
  const header = Buffer.from([0x49, 0x49, 42, 0, 8, 0, 0, 0]);
  return Buffer.concat([header, ifd, ...outOfLine, ...tiles]);
}

function encode(values: number[], type: 3 | 4 | 7): Buffer {
  const size = type === 3 ? 2 : type === 4 ? 4 : 1;
  const bytes = Buffer.alloc(values.length * size);
  values.forEach((v, j) => (size === 2 ? bytes.writeUInt16LE(v, j * 2) : size === 4 ? bytes.writeUInt32LE(v, j * 4) : bytes.writeUInt8(v, j)));
  return bytes;
}
