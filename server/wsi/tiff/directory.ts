import { corrupt, WsiError } from '../errors.js';
import type { RandomAccessFile } from './file.js';
import { Tag, TYPE_SIZE } from './tags.js';

/** A tag's values: text for ASCII, raw bytes for BYTE/UNDEFINED, numbers otherwise. */
export type TagValue = string | Buffer | number[];

/** One image file directory, with the fields the slide reader needs already checked. */
export interface TiffDirectory {
  /** Position in the IFD chain (the "page" in libtiff and sharp). */
  index: number;
  offset: number;
  width: number;
  height: number;
  tiled: boolean;
  /** Tile size, or for strips the full width and RowsPerStrip. */
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  planarConfig: number;
  predictor: number;
  newSubfileType: number;
  description: string;
  jpegTables?: Buffer;
  /** Tile offsets and byte counts (or strips), row-major. */
  offsets: Float64Array;
  byteCounts: Float64Array;
  /** Every tag as read, for properties and de-identification. */
  tags: Map<number, TagValue>;
  /** Each tag's field type as stored (TIFF 6.0 §2), so that a rewriter can keep it. */
  tagTypes: Map<number, number>;
}

export interface TiffHeader {
  littleEndian: boolean;
  bigTiff: boolean;
  firstIfd: number;
  /**
   * Hamamatsu NDPI's 64-bit extension of classic TIFF (see `readDirectories`):
   * 8-byte offsets to directories, 32-bit offsets everywhere else.
   */
  ndpi?: boolean;
}

/** An out-of-line value's offset as stored and where it was read from. */
interface ValueOffset {
  stored: number;
  at: number;
}

/** The tag every NDPI directory carries (Hamamatsu's file format flag). */
export const NDPI_FORMAT_TAG = 65420;

const MAX_DIRECTORIES = 1024;
const MAX_ENTRIES = 4096;
/** No real slide needs more; a larger value means a damaged or hostile file. */
const MAX_DIMENSION = 2 ** 24;
const MAX_TILE_SIDE = 1 << 16;
const MAX_TAG_BYTES = 256 * 1024 * 1024;

export async function readHeader(file: RandomAccessFile): Promise<TiffHeader> {
  if (file.size < 8) throw new WsiError('unsupported_format', `${file.path}: too short to be a TIFF (${file.size} bytes)`);
  const head = await file.read(0, Math.min(16, file.size), 'the TIFF header');
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM') throw new WsiError('unsupported_format', `${file.path}: not a TIFF file (no II/MM byte order mark)`);
  const le = order === 'II';
  const version = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
  if (version === 42) return { littleEndian: le, bigTiff: false, firstIfd: le ? head.readUInt32LE(4) : head.readUInt32BE(4) };
  if (version === 43) {
    if (head.length < 16) throw corrupt(`${file.path}: truncated BigTIFF header`);
    const byteSize = le ? head.readUInt16LE(4) : head.readUInt16BE(4);
    if (byteSize !== 8) throw corrupt(`${file.path}: BigTIFF header declares offset size ${byteSize}, not 8`);
    return { littleEndian: le, bigTiff: true, firstIfd: toSafe(le ? head.readBigUInt64LE(8) : head.readBigUInt64BE(8), file.path) };
  }
  throw new WsiError('unsupported_format', `${file.path}: not a TIFF file (version ${version}, expected 42 or 43)`);
}

/**
 * Hamamatsu NDPI files are classic TIFF that outgrow 4 GiB: the header's and
 * each directory's offset to the next directory are 8 bytes, every other
 * offset keeps 4. As OpenSlide does, a classic TIFF is taken for NDPI when
 * the header's 8 bytes at offset 4, read as one offset, lead to a directory
 * holding tag 65420; the high bits of its 32-bit offsets are then restored by
 * OpenSlide's rule (`ndpiOffset`).
 */
async function detectNdpi(file: RandomAccessFile, header: TiffHeader): Promise<TiffHeader> {
  if (header.bigTiff || file.size < 12) return header;
  const head = await file.read(4, 8, 'the TIFF header');
  const big = header.littleEndian ? head.readBigUInt64LE(0) : head.readBigUInt64BE(0);
  if (big < 8n || big >= BigInt(file.size)) return header;
  const trial = Number(big);
  const ndpi = { ...header, firstIfd: trial, ndpi: true };
  try {
    const { tags } = await readIfd(file, ndpi, trial, 0);
    return tags.has(NDPI_FORMAT_TAG) ? ndpi : header;
  } catch {
    return header;
  }
}

/**
 * An NDPI offset's lost high bits, as OpenSlide restores them: the largest
 * that keep it below the offset of the directory that names it (Hamamatsu
 * writes an image's data before its directory).
 */
export function ndpiOffset(directoryOffset: number, low: number): number {
  const high = Math.floor(directoryOffset / 2 ** 32) * 2 ** 32;
  const offset = high + (low % 2 ** 32);
  return offset >= directoryOffset && offset >= 2 ** 32 ? offset - 2 ** 32 : offset;
}

/** Walk the IFD chain: every directory, in file order, with loops and runaway chains refused. */
export async function readDirectories(file: RandomAccessFile): Promise<TiffDirectory[]> {
  const header = await detectNdpi(file, await readHeader(file));
  const directories: TiffDirectory[] = [];
  const seen = new Set<number>();
  let offset = header.firstIfd;
  let first: Map<number, ValueOffset> | undefined;
  while (offset !== 0) {
    if (seen.has(offset)) throw corrupt(`${file.path}: the directory chain loops back to offset ${offset}`);
    if (directories.length >= MAX_DIRECTORIES) throw corrupt(`${file.path}: more than ${MAX_DIRECTORIES} directories`);
    seen.add(offset);
    const { tags, types, next, valueOffsets } = await readIfd(file, header, offset, directories.length, first);
    first ??= valueOffsets;
    directories.push(toDirectory(file.path, directories.length, offset, tags, types));
    offset = next;
  }
  if (directories.length === 0) throw corrupt(`${file.path}: the TIFF has no image directories`);
  return directories;
}

async function readIfd(
  file: RandomAccessFile,
  { littleEndian: le, bigTiff, ndpi = false }: TiffHeader,
  offset: number,
  index: number,
  /** NDPI: the first directory's out-of-line values by tag; a value stored at the same (32-bit) offset is the same value, as OpenSlide reads it. */
  first?: Map<number, ValueOffset>,
): Promise<{ tags: Map<number, TagValue>; types: Map<number, number>; next: number; valueOffsets: Map<number, ValueOffset> }> {
  const where = `directory ${index} at offset ${offset}`;
  const countSize = bigTiff ? 8 : 2;
  const entrySize = bigTiff ? 20 : 12;
  const head = await file.read(offset, countSize, where);
  const count = bigTiff ? toSafe(le ? head.readBigUInt64LE(0) : head.readBigUInt64BE(0), file.path) : le ? head.readUInt16LE(0) : head.readUInt16BE(0);
  if (count === 0 || count > MAX_ENTRIES) throw corrupt(`${file.path}: ${where} declares ${count} entries`);
  const body = await file.read(offset + countSize, count * entrySize + (bigTiff || ndpi ? 8 : 4), where);

  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => toSafe(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o), file.path);

  const tags = new Map<number, TagValue>();
  const types = new Map<number, number>();
  const valueOffsets = new Map<number, ValueOffset>();
  /** Where an out-of-line value lies: NDPI's 32-bit offsets get their high bits back (OpenSlide's rule). */
  const valueAt = (tag: number, stored: number): number => {
    if (!ndpi) return stored;
    const inFirst = first?.get(tag);
    const at = inFirst?.stored === stored ? inFirst.at : ndpiOffset(offset, stored);
    valueOffsets.set(tag, { stored, at });
    return at;
  };
  for (let i = 0; i < count; i++) {
    const e = i * entrySize;
    const tag = u16(body, e);
    const type = u16(body, e + 2);
    const n = bigTiff ? u64(body, e + 4) : u32(body, e + 4);
    const size = TYPE_SIZE[type];
    if (size === undefined) continue; // unknown field types are skipped, as TIFF 6.0 asks readers to
    const bytes = n * size;
    if (bytes > MAX_TAG_BYTES) throw corrupt(`${file.path}: tag ${tag} in ${where} claims ${bytes} bytes`);
    const inline = bigTiff ? 8 : 4;
    const valueField = e + (bigTiff ? 12 : 8);
    let data: Buffer;
    if (bytes <= inline) {
      data = body.subarray(valueField, valueField + bytes);
    } else {
      data = await file.read(valueAt(tag, bigTiff ? u64(body, valueField) : u32(body, valueField)), bytes, `tag ${tag} of ${where}`);
    }
    let values = decodeValues(data, type, n, le, file.path);
    if (ndpi && tag === Tag.StripOffsets && Array.isArray(values)) values = values.map((v) => ndpiOffset(offset, v));
    tags.set(tag, values);
    types.set(tag, type);
  }
  const next = bigTiff || ndpi ? u64(body, count * entrySize) : u32(body, count * entrySize);
  return { tags, types, next, valueOffsets };
}

function decodeValues(data: Buffer, type: number, n: number, le: boolean, path: string): TagValue {
  switch (type) {
    case 2: {
      const end = data.indexOf(0);
      return data.toString('latin1', 0, end === -1 ? data.length : end);
    }
    case 1:
    case 7:
      return Buffer.from(data);
    case 6:
      return Array.from(new Int8Array(data.buffer, data.byteOffset, n));
  }
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    switch (type) {
      case 3: out[i] = le ? data.readUInt16LE(i * 2) : data.readUInt16BE(i * 2); break;
      case 8: out[i] = le ? data.readInt16LE(i * 2) : data.readInt16BE(i * 2); break;
      case 4: case 13: out[i] = le ? data.readUInt32LE(i * 4) : data.readUInt32BE(i * 4); break;
      case 9: out[i] = le ? data.readInt32LE(i * 4) : data.readInt32BE(i * 4); break;
      case 11: out[i] = le ? data.readFloatLE(i * 4) : data.readFloatBE(i * 4); break;
      case 12: out[i] = le ? data.readDoubleLE(i * 8) : data.readDoubleBE(i * 8); break;
      case 5: {
        const num = le ? data.readUInt32LE(i * 8) : data.readUInt32BE(i * 8);
        const den = le ? data.readUInt32LE(i * 8 + 4) : data.readUInt32BE(i * 8 + 4);
        out[i] = den === 0 ? 0 : num / den;
        break;
      }
      case 10: {
        const num = le ? data.readInt32LE(i * 8) : data.readInt32BE(i * 8);
        const den = le ? data.readInt32LE(i * 8 + 4) : data.readInt32BE(i * 8 + 4);
        out[i] = den === 0 ? 0 : num / den;
        break;
      }
      case 16: case 18: out[i] = toSafe(le ? data.readBigUInt64LE(i * 8) : data.readBigUInt64BE(i * 8), path); break;
      case 17: out[i] = Number(le ? data.readBigInt64LE(i * 8) : data.readBigInt64BE(i * 8)); break;
    }
  }
  return out;
}

function toDirectory(path: string, index: number, offset: number, tags: Map<number, TagValue>, tagTypes: Map<number, number>): TiffDirectory {
  const where = `${path}: directory ${index}`;
  const num = (tag: number, fallback?: number): number => {
    const value = tags.get(tag);
    const first = Array.isArray(value) ? value[0] : Buffer.isBuffer(value) ? value[0] : undefined;
    if (first !== undefined) return first;
    if (fallback !== undefined) return fallback;
    throw corrupt(`${where} lacks required tag ${tag}`);
  };
  const width = num(Tag.ImageWidth);
  const height = num(Tag.ImageLength);
  if (width < 1 || height < 1 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw corrupt(`${where} has absurd dimensions ${width}×${height}`);
  }
  const tiled = tags.has(Tag.TileWidth) || tags.has(Tag.TileOffsets);
  const tileWidth = tiled ? num(Tag.TileWidth) : width;
  const tileHeight = tiled ? num(Tag.TileLength) : Math.min(num(Tag.RowsPerStrip, height), height);
  // A strip is as wide as its image (NDPI levels pass JPEG's 65,535 pixels), so only tiles have a side limit of their own.
  const maxSide = tiled ? MAX_TILE_SIDE : MAX_DIMENSION;
  if (tileWidth < 1 || tileHeight < 1 || tileWidth > maxSide || tileHeight > maxSide) {
    throw corrupt(`${where} has absurd ${tiled ? 'tile' : 'strip'} size ${tileWidth}×${tileHeight}`);
  }
  const tilesAcross = Math.ceil(width / tileWidth);
  const tilesDown = Math.ceil(height / tileHeight);
  const planarConfig = num(Tag.PlanarConfig, 1);
  const samplesPerPixel = num(Tag.SamplesPerPixel, 1);
  const expected = tilesAcross * tilesDown * (planarConfig === 2 ? samplesPerPixel : 1);

  const offsets = numbers(tags.get(tiled ? Tag.TileOffsets : Tag.StripOffsets));
  const byteCounts = numbers(tags.get(tiled ? Tag.TileByteCounts : Tag.StripByteCounts));
  if (offsets.length !== expected || byteCounts.length !== expected) {
    throw corrupt(
      `${where} has ${offsets.length} ${tiled ? 'tile' : 'strip'} offsets and ${byteCounts.length} byte counts for ${expected} ${tiled ? 'tiles' : 'strips'}`,
    );
  }
  const description = tags.get(Tag.ImageDescription);
  const tables = tags.get(Tag.JPEGTables);
  return {
    index,
    offset,
    width,
    height,
    tiled,
    tileWidth,
    tileHeight,
    tilesAcross,
    tilesDown,
    compression: num(Tag.Compression, 1),
    photometric: num(Tag.Photometric, 2),
    samplesPerPixel,
    bitsPerSample: num(Tag.BitsPerSample, 1),
    planarConfig,
    predictor: num(Tag.Predictor, 1),
    newSubfileType: num(Tag.NewSubfileType, 0),
    description: typeof description === 'string' ? description : '',
    ...(Buffer.isBuffer(tables) ? { jpegTables: tables } : {}),
    offsets: Float64Array.from(offsets),
    byteCounts: Float64Array.from(byteCounts),
    tags,
    tagTypes,
  };
}

function numbers(value: TagValue | undefined): number[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  if (Buffer.isBuffer(value)) return Array.from(value);
  return [];
}

function toSafe(value: bigint, path: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${path}: an offset (${value}) is beyond any real file`);
  return Number(value);
}
