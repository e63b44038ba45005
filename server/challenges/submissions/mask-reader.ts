/**
 * Reading label masks band by band, so that a mask of any size is read in a
 * memory of one band: PNG (grey or palette, 8 bits or fewer per pixel, the
 * sample or palette index being the label; not interlaced) through a streaming
 * inflate and PNG's row filters, and TIFF (8-bit, one sample, tiled or in
 * strips, uncompressed, Deflate, LZW or PackBits) through the slide engine's
 * TIFF directory reader, one row of tiles or one strip at a time.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { readDirectories, type TiffDirectory } from '../../wsi/tiff/directory.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import { Compression, Photometric, Tag } from '../../wsi/tiff/tags.js';

const inflate = promisify(zlib.inflate);

/** Why a file cannot be read as a mask: `unreadable_image` (damaged, or not an image) or `wrong_pixel_format`. */
export class MaskError extends Error {
  constructor(
    readonly code: 'unreadable_image' | 'wrong_pixel_format',
    message: string,
  ) {
    super(message);
    this.name = 'MaskError';
  }
}

/** Rows firstRow … firstRow + rows − 1 of the mask, one byte per pixel. */
export interface MaskBand {
  firstRow: number;
  rows: number;
  /** rows × width bytes; valid until the next band is asked for. */
  data: Uint8Array;
}

export interface MaskReader {
  format: 'png' | 'tiff';
  width: number;
  height: number;
  /** Every row once, top to bottom, in bands. */
  bands(): AsyncGenerator<MaskBand>;
  close(): Promise<void>;
}

/** Pixels per band for PNG (whole rows, at least one). */
const PNG_BAND_PIXELS = 4 * 2 ** 20;
/** The largest strip or tile decoded at once. */
const MAX_CHUNK_BYTES = 256 * 2 ** 20;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Open a PNG or TIFF mask (told apart by their first bytes); a MaskError when it is neither or not 8-bit single-channel. */
export async function openMask(file: string, name = 'The mask'): Promise<MaskReader> {
  const handle = await open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(33);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    head = head.subarray(0, bytesRead);
  } catch (error) {
    await handle.close();
    throw error;
  }
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return openPng(handle, head, name);
  await handle.close();
  const order = head.toString('latin1', 0, 2);
  if (order === 'II' || order === 'MM') return openTiff(file, name);
  throw new MaskError('unreadable_image', `${name} is neither a PNG nor a TIFF image.`);
}

// ---------------------------------------------------------------- PNG

const PNG_COLOUR_TYPES: Record<number, string> = { 0: 'grey', 2: 'RGB', 3: 'palette', 4: 'grey with alpha', 6: 'RGBA' };

async function openPng(handle: FileHandle, head: Buffer, name: string): Promise<MaskReader> {
  try {
    if (head.length < 33 || head.toString('latin1', 12, 16) !== 'IHDR' || head.readUInt32BE(8) !== 13) {
      throw new MaskError('unreadable_image', `${name} is not a valid PNG: its first chunk is not a header.`);
    }
    const width = head.readUInt32BE(16);
    const height = head.readUInt32BE(20);
    const depth = head[24]!;
    const colourType = head[25]!;
    const interlace = head[28]!;
    if (width === 0 || height === 0) throw new MaskError('unreadable_image', `${name} is not a valid PNG: it declares a size of ${width}×${height}.`);
    if ((colourType !== 0 && colourType !== 3) || ![1, 2, 4, 8].includes(depth)) {
      const kind = PNG_COLOUR_TYPES[colourType] ?? `colour type ${colourType}`;
      throw new MaskError('wrong_pixel_format', `${name} is a PNG of ${depth}-bit ${kind} pixels; masks must be grey or palette images of 8 bits or fewer per pixel.`);
    }
    if (interlace !== 0) throw new MaskError('wrong_pixel_format', `${name} is an interlaced PNG; save it without interlacing.`);
  } catch (error) {
    await handle.close();
    throw error;
  }
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  const depth = head[24]!;
  return {
    format: 'png',
    width,
    height,
    bands: () => pngBands(handle, width, height, depth, name),
    close: () => handle.close(),
  };
}

/** Feed the IDAT payloads of the PNG to `sink`, in file order, until IEND. */
async function feedIdat(handle: FileHandle, sink: zlib.Inflate, name: string): Promise<void> {
  const { size } = await handle.stat();
  let position = 8;
  const header = Buffer.alloc(8);
  let seenData = false;
  for (;;) {
    if (position + 8 > size) throw new MaskError('unreadable_image', `${name} is a truncated PNG: it ends before its last chunk.`);
    await handle.read(header, 0, 8, position);
    const length = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    position += 8;
    if (position + length + 4 > size) throw new MaskError('unreadable_image', `${name} is a truncated PNG: its ${type} chunk runs past the end of the file.`);
    if (type === 'IDAT') {
      seenData = true;
      for (let done = 0; done < length; ) {
        const piece = Buffer.allocUnsafe(Math.min(2 ** 20, length - done));
        await handle.read(piece, 0, piece.length, position + done);
        done += piece.length;
        // The reader stops early (all rows read, or an error): stop feeding.
        if (sink.destroyed) return;
        if (!sink.write(piece)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              sink.off('drain', done);
              sink.off('close', done);
              resolve();
            };
            sink.on('drain', done);
            sink.on('close', done);
          });
        }
      }
    } else if (type === 'IEND') break;
    position += length + 4; // data and CRC
  }
  if (!seenData) throw new MaskError('unreadable_image', `${name} is a PNG without image data.`);
  if (!sink.destroyed) sink.end();
}

async function* pngBands(handle: FileHandle, width: number, height: number, depth: number, name: string): AsyncGenerator<MaskBand> {
  const sink = zlib.createInflate({ chunkSize: 2 ** 20 });
  const feeding = feedIdat(handle, sink, name).catch((error: unknown) => {
    sink.destroy(error as Error);
  });
  const bandRows = Math.max(1, Math.min(height, Math.floor(PNG_BAND_PIXELS / width)));
  const band = new Uint8Array(bandRows * width);
  const rowBytes = Math.ceil((width * depth) / 8);
  let bandFirst = 0;
  let inBand = 0;
  // The previous row as stored (filters work on bytes): a band row at 8 bits, else one of two packed lines.
  let previous = new Uint8Array(rowBytes);
  let packed = depth === 8 ? previous : new Uint8Array(rowBytes);
  const row = new Uint8Array(rowBytes + 1);
  let filled = 0;
  let y = 0;
  try {
    for await (const chunk of sink as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length && y < height) {
        const take = Math.min(rowBytes + 1 - filled, chunk.length - at);
        row.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled < rowBytes + 1) break;
        filled = 0;
        const out = band.subarray(inBand * width, (inBand + 1) * width);
        if (depth === 8) {
          unfilter(row, previous, out, y, name);
          previous = out;
        } else {
          unfilter(row, previous, packed, y, name);
          unpack(packed, out, depth);
          [previous, packed] = [packed, previous];
        }
        y++;
        if (++inBand === bandRows || y === height) {
          yield { firstRow: bandFirst, rows: inBand, data: band.subarray(0, inBand * width) };
          // The last row of the band is the previous row of the next: keep it apart from the reused buffer.
          if (depth === 8) previous = Uint8Array.from(previous);
          bandFirst = y;
          inBand = 0;
        }
      }
      if (y === height) break;
    }
  } catch (error) {
    if (error instanceof MaskError) throw error;
    throw new MaskError('unreadable_image', `${name} is a damaged PNG: its image data cannot be inflated (${(error as Error).message}).`);
  } finally {
    sink.destroy();
    await feeding;
  }
  if (y < height) throw new MaskError('unreadable_image', `${name} is a truncated PNG: its image data ends at row ${y} of ${height}.`);
}

/** Samples of `depth` bits (1, 2 or 4), most significant first, one byte each. */
function unpack(packed: Uint8Array, out: Uint8Array, depth: number): void {
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let x = 0; x < out.length; x++) {
    const shift = 8 - depth * ((x % perByte) + 1);
    out[x] = (packed[Math.floor(x / perByte)]! >> shift) & mask;
  }
}

/** Undo PNG filter `row[0]`; filters work on whole bytes, one byte per pixel at 8 bits or fewer (PNG specification, section 9). */
function unfilter(row: Uint8Array, previous: Uint8Array, out: Uint8Array, y: number, name: string): void {
  const width = out.length;
  switch (row[0]) {
    case 0:
      out.set(row.subarray(1));
      return;
    case 1: {
      let left = 0;
      for (let i = 0; i < width; i++) left = out[i] = (row[i + 1]! + left) & 255;
      return;
    }
    case 2:
      for (let i = 0; i < width; i++) out[i] = (row[i + 1]! + previous[i]!) & 255;
      return;
    case 3: {
      let left = 0;
      for (let i = 0; i < width; i++) left = out[i] = (row[i + 1]! + ((left + previous[i]!) >> 1)) & 255;
      return;
    }
    case 4: {
      let left = 0;
      let upLeft = 0;
      for (let i = 0; i < width; i++) {
        const up = previous[i]!;
        const p = left + up - upLeft;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - upLeft);
        const predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
        left = out[i] = (row[i + 1]! + predictor) & 255;
        upLeft = up;
      }
      return;
    }
    default:
      throw new MaskError('unreadable_image', `${name} is a damaged PNG: row ${y} has the unknown filter type ${row[0]}.`);
  }
}

// ---------------------------------------------------------------- TIFF

const TIFF_COMPRESSIONS: Record<number, string> = {
  [Compression.None]: 'none',
  [Compression.LZW]: 'LZW',
  [Compression.Deflate]: 'Deflate',
  [Compression.AdobeDeflate]: 'Deflate',
  [Compression.PackBits]: 'PackBits',
};

async function openTiff(file: string, name: string): Promise<MaskReader> {
  let tiff: RandomAccessFile;
  let dir: TiffDirectory;
  try {
    tiff = await RandomAccessFile.open(file);
  } catch (error) {
    throw new MaskError('unreadable_image', `${name} cannot be opened (${(error as Error).message}).`);
  }
  try {
    dir = (await readDirectories(tiff))[0]!;
  } catch (error) {
    await tiff.close();
    const reason = (error as Error).message.replace(`${file}: `, '');
    throw new MaskError('unreadable_image', `${name} is not a readable TIFF (${reason}).`);
  }
  const sampleFormat = dir.tags.get(Tag.SampleFormat);
  const signed = Array.isArray(sampleFormat) && sampleFormat[0] !== undefined && sampleFormat[0] !== 1;
  let wrong: string | undefined;
  if (dir.samplesPerPixel !== 1 || dir.bitsPerSample !== 8 || signed) {
    wrong = `${name} is a TIFF of ${dir.samplesPerPixel} sample${dir.samplesPerPixel === 1 ? '' : 's'} of ${dir.bitsPerSample} bits${signed ? ' (not unsigned integers)' : ''} per pixel; masks must be 8-bit single-channel (grey) images.`;
  } else if (dir.photometric !== Photometric.MinIsBlack) {
    wrong = `${name} is a TIFF whose photometric interpretation is ${dir.photometric}, not 1 (grey, 0 is black); masks store their labels as grey values.`;
  } else if (!(dir.compression in TIFF_COMPRESSIONS)) {
    wrong = `${name} is a TIFF compressed with scheme ${dir.compression}; masks must be uncompressed or losslessly compressed with Deflate, LZW or PackBits.`;
  } else if (dir.predictor !== 1 && dir.predictor !== 2) {
    wrong = `${name} is a TIFF with predictor ${dir.predictor}; only none (1) and horizontal differencing (2) are read.`;
  } else if (dir.tileWidth * dir.tileHeight > MAX_CHUNK_BYTES) {
    wrong = `${name} is a TIFF with ${dir.tiled ? 'tiles' : 'strips'} of ${dir.tileWidth}×${dir.tileHeight} pixels, over the ${MAX_CHUNK_BYTES / 2 ** 20} MiB read at once; write it tiled, or with fewer rows per strip.`;
  }
  if (wrong) {
    await tiff.close();
    throw new MaskError('wrong_pixel_format', wrong);
  }
  return {
    format: 'tiff',
    width: dir.width,
    height: dir.height,
    bands: () => tiffBands(tiff, dir, name),
    close: () => tiff.close(),
  };
}

async function* tiffBands(tiff: RandomAccessFile, dir: TiffDirectory, name: string): AsyncGenerator<MaskBand> {
  const { width, height, tileWidth, tileHeight, tilesAcross, tilesDown } = dir;
  const band = new Uint8Array(width * tileHeight);
  for (let down = 0; down < tilesDown; down++) {
    const firstRow = down * tileHeight;
    const rows = Math.min(tileHeight, height - firstRow);
    const chunks = await Promise.all(
      Array.from({ length: tilesAcross }, async (_, across) => {
        const index = down * tilesAcross + across;
        // A strip holds only the rows left; a tile is always whole.
        const expected = tileWidth * (dir.tiled ? tileHeight : rows);
        const chunk = await readChunk(tiff, dir, index, expected, name);
        if (dir.predictor === 2) undoHorizontalDifferencing(chunk, tileWidth);
        return chunk;
      }),
    );
    chunks.forEach((chunk, across) => {
      const x0 = across * tileWidth;
      const w = Math.min(tileWidth, width - x0);
      for (let y = 0; y < rows; y++) band.set(chunk.subarray(y * tileWidth, y * tileWidth + w), y * width + x0);
    });
    yield { firstRow, rows, data: band.subarray(0, rows * width) };
  }
}

async function readChunk(tiff: RandomAccessFile, dir: TiffDirectory, index: number, expected: number, name: string): Promise<Uint8Array> {
  const what = `${dir.tiled ? 'tile' : 'strip'} ${index + 1}`;
  const offset = dir.offsets[index]!;
  const count = dir.byteCounts[index]!;
  if (count === 0) return new Uint8Array(expected); // sparse: all background, as libtiff reads it
  let stored: Buffer;
  try {
    stored = await tiff.read(offset, count, what);
  } catch {
    throw new MaskError('unreadable_image', `${name} is a damaged TIFF: its ${what} lies past the end of the file.`);
  }
  let data: Uint8Array;
  try {
    switch (dir.compression) {
      case Compression.None:
        data = stored;
        break;
      case Compression.Deflate:
      case Compression.AdobeDeflate:
        data = await inflate(stored, { maxOutputLength: Math.max(expected, 1) });
        break;
      case Compression.LZW:
        data = lzwDecode(stored, expected);
        break;
      default:
        data = packBitsDecode(stored, expected);
    }
  } catch (error) {
    throw new MaskError('unreadable_image', `${name} is a damaged TIFF: its ${what} cannot be decompressed (${(error as Error).message}).`);
  }
  if (data.length < expected) {
    const whole = new Uint8Array(expected);
    whole.set(data);
    return whole;
  }
  return data.length === expected ? data : data.subarray(0, expected);
}

function undoHorizontalDifferencing(data: Uint8Array, width: number): void {
  for (let start = 0; start + width <= data.length; start += width) {
    for (let i = start + 1; i < start + width; i++) data[i] = (data[i]! + data[i - 1]!) & 255;
  }
}

/** TIFF LZW (most significant bit first, code width growing one code early), at most `expected` bytes. */
export function lzwDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  const first = new Uint8Array(4096);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = i;
    length[i] = 1;
    first[i] = i;
  }
  let written = 0;
  let next = 258;
  let bits = 9;
  let old = -1;
  let position = 0;
  const totalBits = input.length * 8;
  const emit = (code: number) => {
    const end = written + length[code]!;
    for (let c = code, p = end - 1; c !== -1; c = prefix[c]!, p--) if (p < expected) out[p] = suffix[c]!;
    written = end;
  };
  const add = (previous: number, byte: number) => {
    if (next >= 4096) throw new Error('LZW table overflow');
    prefix[next] = previous;
    suffix[next] = byte;
    length[next] = length[previous]! + 1;
    first[next] = first[previous]!;
    next++;
    if (next === 511) bits = 10;
    else if (next === 1023) bits = 11;
    else if (next === 2047) bits = 12;
  };
  while (position + bits <= totalBits && written < expected) {
    const byte = position >> 3;
    const window = ((input[byte]! << 16) | ((input[byte + 1] ?? 0) << 8) | (input[byte + 2] ?? 0)) >>> 0;
    const code = (window >>> (24 - (position & 7) - bits)) & ((1 << bits) - 1);
    position += bits;
    if (code === 257) break;
    if (code === 256) {
      next = 258;
      bits = 9;
      old = -1;
      continue;
    }
    if (old === -1) {
      if (code > 255) throw new Error(`LZW code ${code} before any table entry`);
      emit(code);
    } else if (code < next) {
      emit(code);
      add(old, first[code]!);
    } else if (code === next) {
      add(old, first[old]!);
      emit(code);
    } else throw new Error(`LZW code ${code} beyond the table (${next})`);
    old = code;
  }
  return out.subarray(0, Math.min(written, expected));
}

/** PackBits (TIFF 6.0 section 9), at most `expected` bytes. */
export function packBitsDecode(input: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let o = 0;
  for (let i = 0; i < input.length && o < expected; ) {
    const n = (input[i++]! << 24) >> 24;
    if (n >= 0) {
      const count = Math.min(n + 1, expected - o, input.length - i);
      out.set(input.subarray(i, i + count), o);
      i += n + 1;
      o += count;
    } else if (n !== -128) {
      const count = Math.min(1 - n, expected - o);
      out.fill(input[i++] ?? 0, o, o + count);
      o += count;
    }
  }
  return out.subarray(0, o);
}
