/**
 * A streaming writer of tiled or stripped, 8-bit RGB TIFF and BigTIFF files.
 *
 * Image data is appended to the file as it is produced (tile by tile, strip by
 * strip, in order); only the offsets and byte counts are kept. The IFDs go at
 * the end, and the header is written last into 16 bytes reserved at offset 0:
 * classic TIFF when every offset fits in 32 bits, BigTIFF otherwise (or when
 * asked). Little-endian throughout. The tags are those of TIFF 6.0 plus
 * BigTIFF's LONG8; the JPEG ones follow TIFF Technical Note 2 (JPEGTables and
 * abbreviated streams per tile/strip).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { FieldType as Type, MAX_CLASSIC_OFFSET, asciiValue, rationalValue, serializeIfds, tiffHeader, type IfdEntry } from './ifd-writer.js';
import { Compression, Photometric, Tag } from './tags.js';

export { Compression, Photometric };


/** Header bytes reserved at offset 0: enough for a BigTIFF header. */
const HEADER_SIZE = 16;

export interface TiffImageOptions {
  width: number;
  height: number;
  /** Tiled layout; tiles must be multiples of 16 (TIFF 6.0 §15). Without it the image is stripped. */
  tile?: { width: number; height: number };
  /** Stripped layout: rows per strip (default: the whole image in one strip). */
  rowsPerStrip?: number;
  compression: number;
  photometric: number;
  /** 3 (RGB or YCbCr, the default) or 1 (grey, e.g. a mask). */
  samplesPerPixel?: 1 | 3;
  newSubfileType?: number;
  description?: string;
  /** JPEG tables (SOI, DQT/DHT, EOI), shared by every tile or strip; may also be set while writing. */
  jpegTables?: Buffer;
  ycbcrSubsampling?: [number, number];
  /** 2 = horizontal differencing (for LZW). */
  predictor?: number;
  /** Pixels per centimetre, stored as ResolutionUnit 3 with X/YResolution. */
  pixelsPerCm?: { x: number; y: number };
}

export interface TiffWriterOptions {
  /** Always write BigTIFF, even when classic TIFF would do. */
  bigtiff?: boolean;
  /** Bytes gathered before each write to disk (default 4 MiB). */
  bufferSize?: number;
  /** The largest offset classic TIFF may hold; lower it only to test the switch to BigTIFF. */
  classicLimit?: number;
}

interface ImageRecord {
  options: TiffImageOptions;
  chunkCount: number;
  offsets: number[];
  byteCounts: number[];
  jpegTables: Buffer | undefined;
}

/** The number of tiles or strips an image is stored in. */
export function chunkCount(options: Pick<TiffImageOptions, 'width' | 'height' | 'tile' | 'rowsPerStrip'>): number {
  if (options.tile) {
    return Math.ceil(options.width / options.tile.width) * Math.ceil(options.height / options.tile.height);
  }
  return Math.ceil(options.height / (options.rowsPerStrip ?? options.height));
}

/** One image (IFD) being written: its tiles or strips in order, then `end()`. */
export class TiffImageWriter {
  constructor(
    private readonly writer: TiffWriter,
    private readonly record: ImageRecord,
  ) {}

  get chunkCount(): number {
    return this.record.chunkCount;
  }

  get chunksWritten(): number {
    return this.record.offsets.length;
  }

  /** Set (or check) the JPEG tables: every chunk of an IFD must share one set. */
  setJpegTables(tables: Buffer): void {
    if (this.record.jpegTables === undefined) this.record.jpegTables = Buffer.from(tables);
    else if (!this.record.jpegTables.equals(tables)) {
      throw new Error('every tile or strip of a TIFF image must share the same JPEG tables');
    }
  }

  /** Append the next tile (row-major) or strip. */
  async write(data: Buffer): Promise<void> {
    if (this.record.offsets.length >= this.record.chunkCount) {
      throw new Error(`image already has all of its ${this.record.chunkCount} tiles or strips`);
    }
    const offset = await this.writer.append(data);
    this.record.offsets.push(offset);
    this.record.byteCounts.push(data.length);
  }

  /** Declare the image complete; the next image may begin. */
  end(): void {
    if (this.record.offsets.length !== this.record.chunkCount) {
      throw new Error(`image ended after ${this.record.offsets.length} of ${this.record.chunkCount} tiles or strips`);
    }
    if (this.record.options.compression === Compression.JPEG && this.record.jpegTables === undefined) {
      throw new Error('a JPEG image needs its JPEGTables before it ends');
    }
    this.writer.endImage(this);
  }
}

export class TiffWriter {
  private position = HEADER_SIZE;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingStart = HEADER_SIZE;
  private readonly images: ImageRecord[] = [];
  private current: TiffImageWriter | undefined;
  private closed = false;
  private kind: 'classic' | 'bigtiff' | undefined;

  private constructor(
    private readonly handle: FileHandle,
    private readonly options: TiffWriterOptions,
  ) {}

  /** Create (or truncate) `file` and reserve its header. */
  static async create(file: string, options: TiffWriterOptions = {}): Promise<TiffWriter> {
    const handle = await open(file, 'w');
    const writer = new TiffWriter(handle, options);
    writer.pending.push(Buffer.alloc(HEADER_SIZE));
    writer.pendingBytes = HEADER_SIZE;
    writer.pendingStart = 0;
    return writer;
  }

  /** Bytes written or queued so far. */
  get size(): number {
    return this.position;
  }

  /** After close(): which flavour was written. */
  get format(): 'classic' | 'bigtiff' | undefined {
    return this.kind;
  }

  beginImage(options: TiffImageOptions): TiffImageWriter {
    if (this.closed) throw new Error('the TIFF writer is closed');
    if (this.current) throw new Error('end the previous image before beginning another');
    validateImage(options);
    const record: ImageRecord = {
      options,
      chunkCount: chunkCount(options),
      offsets: [],
      byteCounts: [],
      jpegTables: options.jpegTables,
    };
    this.images.push(record);
    this.current = new TiffImageWriter(this, record);
    return this.current;
  }

  /** @internal used by TiffImageWriter */
  endImage(image: TiffImageWriter): void {
    if (this.current !== image) throw new Error('this image is not the one being written');
    this.current = undefined;
  }

  /** @internal Append bytes at the end of the file; returns their offset. Data is word-aligned. */
  async append(data: Buffer): Promise<number> {
    if (this.closed) throw new Error('the TIFF writer is closed');
    if (this.position % 2 === 1) this.queue(Buffer.alloc(1));
    const offset = this.position;
    this.queue(data);
    if (this.pendingBytes >= (this.options.bufferSize ?? 4 * 1024 * 1024)) await this.flush();
    return offset;
  }

  private queue(data: Buffer): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.position += data.length;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    const start = this.pendingStart;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingStart = this.position;
    // writev may write less than asked; finish the rest with plain writes.
    const { bytesWritten: written } = await this.handle.writev(chunks, start);
    if (written < total) {
      const rest = Buffer.concat(chunks).subarray(written);
      let done = 0;
      while (done < rest.length) {
        const { bytesWritten } = await this.handle.write(rest, done, rest.length - done, start + written + done);
        done += bytesWritten;
      }
    }
  }

  /** Write every IFD and the header, and close the file. */
  async close(): Promise<void> {
    if (this.closed) throw new Error('the TIFF writer is closed');
    if (this.current) throw new Error('the last image was not ended');
    if (this.images.length === 0) throw new Error('a TIFF file needs at least one image');
    if (this.position % 2 === 1) this.queue(Buffer.alloc(1));
    const ifdStart = this.position;
    const limit = this.options.classicLimit ?? MAX_CLASSIC_OFFSET;
    let big = this.options.bigtiff === true;
    let ifds = serializeIfds(this.images.map((image) => entries(image, big)), ifdStart, big);
    if (!big && ifdStart + ifds.length > limit) {
      big = true;
      ifds = serializeIfds(this.images.map((image) => entries(image, big)), ifdStart, big);
    }
    this.queue(ifds);
    await this.flush();
    const head = tiffHeader(big, ifdStart);
    await this.handle.write(head, 0, head.length, 0);
    this.kind = big ? 'bigtiff' : 'classic';
    this.closed = true;
    await this.handle.close();
  }

  /** Close the file without finishing it (the caller removes it). */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    await this.handle.close();
  }
}

function validateImage(options: TiffImageOptions): void {
  const whole = (n: number) => Number.isInteger(n) && n > 0;
  if (!whole(options.width) || !whole(options.height)) throw new Error(`bad image size ${options.width}x${options.height}`);
  if (options.tile) {
    const { width, height } = options.tile;
    if (!whole(width) || !whole(height) || width % 16 !== 0 || height % 16 !== 0) {
      throw new Error(`TIFF tiles must be positive multiples of 16, got ${width}x${height}`);
    }
  } else if (options.rowsPerStrip !== undefined && !whole(options.rowsPerStrip)) {
    throw new Error(`bad rows per strip ${options.rowsPerStrip}`);
  }
}

function entries(image: ImageRecord, big: boolean): IfdEntry[] {
  const o = image.options;
  const offsetType = big ? Type.LONG8 : Type.LONG;
  const list: IfdEntry[] = [
    { tag: Tag.NewSubfileType, type: Type.LONG, values: [o.newSubfileType ?? 0] },
    { tag: Tag.ImageWidth, type: Type.LONG, values: [o.width] },
    { tag: Tag.ImageLength, type: Type.LONG, values: [o.height] },
    { tag: Tag.BitsPerSample, type: Type.SHORT, values: new Array<number>(o.samplesPerPixel ?? 3).fill(8) },
    { tag: Tag.Compression, type: Type.SHORT, values: [o.compression] },
    { tag: Tag.Photometric, type: Type.SHORT, values: [o.photometric] },
    { tag: Tag.SamplesPerPixel, type: Type.SHORT, values: [o.samplesPerPixel ?? 3] },
    { tag: Tag.PlanarConfig, type: Type.SHORT, values: [1] },
  ];
  if (o.description !== undefined) {
    list.push({ tag: Tag.ImageDescription, type: Type.ASCII, values: asciiValue(o.description) });
  }
  if (o.tile) {
    list.push(
      { tag: Tag.TileWidth, type: Type.LONG, values: [o.tile.width] },
      { tag: Tag.TileLength, type: Type.LONG, values: [o.tile.height] },
      { tag: Tag.TileOffsets, type: offsetType, values: image.offsets },
      { tag: Tag.TileByteCounts, type: offsetType, values: image.byteCounts },
    );
  } else {
    list.push(
      { tag: Tag.RowsPerStrip, type: Type.LONG, values: [o.rowsPerStrip ?? o.height] },
      { tag: Tag.StripOffsets, type: offsetType, values: image.offsets },
      { tag: Tag.StripByteCounts, type: offsetType, values: image.byteCounts },
    );
  }
  if (o.pixelsPerCm) {
    list.push(
      { tag: Tag.XResolution, type: Type.RATIONAL, values: rationalValue(o.pixelsPerCm.x) },
      { tag: Tag.YResolution, type: Type.RATIONAL, values: rationalValue(o.pixelsPerCm.y) },
      { tag: Tag.ResolutionUnit, type: Type.SHORT, values: [3] },
    );
  }
  if (o.predictor !== undefined) list.push({ tag: Tag.Predictor, type: Type.SHORT, values: [o.predictor] });
  if (image.jpegTables) list.push({ tag: Tag.JPEGTables, type: Type.UNDEFINED, values: image.jpegTables });
  if (o.ycbcrSubsampling) list.push({ tag: Tag.YCbCrSubSampling, type: Type.SHORT, values: o.ycbcrSubsampling });
  return list.sort((a, b) => a.tag - b.tag);
}


/**
 * TIFF LZW (compression 5): MSB-first codes of 9 to 12 bits, starting with a
 * Clear code, with the code width growing one code early as libtiff expects
 * (TIFF 6.0 §13), and a Clear code whenever the table fills.
 */
export function lzwEncode(data: Uint8Array): Buffer {
  const CLEAR = 256;
  const EOI = 257;
  const FIRST = 258;
  const LIMIT = 4094; // libtiff: CODE_MAX - 1
  const out: number[] = [];
  let bitBuffer = 0;
  let bitCount = 0;
  let width = 9;
  const put = (code: number) => {
    bitBuffer = (bitBuffer << width) | code;
    bitCount += width;
    while (bitCount >= 8) {
      bitCount -= 8;
      out.push((bitBuffer >>> bitCount) & 0xff);
    }
    bitBuffer &= (1 << bitCount) - 1;
  };
  // table: key = prefix code * 256 + byte -> code
  let table = new Map<number, number>();
  let next = FIRST;
  put(CLEAR);
  if (data.length === 0) {
    put(EOI);
    if (bitCount > 0) out.push((bitBuffer << (8 - bitCount)) & 0xff);
    return Buffer.from(out);
  }
  let prefix = data[0]!;
  const grow = () => {
    next += 1;
    if (next === LIMIT) {
      put(CLEAR);
      table = new Map();
      next = FIRST;
      width = 9;
    } else if (next > (1 << width) - 1) {
      width += 1;
    }
  };
  for (let i = 1; i < data.length; i++) {
    const byte = data[i]!;
    const key = prefix * 256 + byte;
    const found = table.get(key);
    if (found !== undefined) {
      prefix = found;
      continue;
    }
    put(prefix);
    table.set(key, next);
    grow();
    prefix = byte;
  }
  put(prefix);
  // The decoder adds one more entry after the last code; follow its width.
  next += 1;
  if (next === LIMIT) {
    put(CLEAR);
    width = 9;
  } else if (next > (1 << width) - 1) {
    width += 1;
  }
  put(EOI);
  if (bitCount > 0) out.push((bitBuffer << (8 - bitCount)) & 0xff);
  return Buffer.from(out);
}

/** TIFF Predictor 2 for 8-bit RGB, in place: each sample minus the same sample of the pixel to its left. */
export function horizontalDifference(rows: Uint8Array, width: number, samples = 3): Uint8Array {
  const stride = width * samples;
  for (let start = 0; start < rows.length; start += stride) {
    for (let i = start + stride - 1; i >= start + samples; i--) rows[i] = (rows[i]! - rows[i - samples]!) & 0xff;
  }
  return rows;
}
