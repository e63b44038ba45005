/**
 * The JPEG strips of Hamamatsu NDPI levels, read a few restart intervals at a
 * time.
 *
 * An NDPI level is one baseline JPEG with a restart marker after every
 * `restartInterval` MCUs, each interval one MCU tall; tag 65426 (McuStarts)
 * records where each interval's entropy-coded data begins, relative to the
 * strip. After a restart marker the decoder starts afresh (DC predictions
 * reset), so any block of whole intervals, given the strip's header with its
 * own size in the frame header and restart markers renumbered 0–7 in order,
 * is a complete JPEG that decodes to exactly the pixels of that part of the
 * level. That is how a region is read without decoding the rest of the level,
 * and how a level wider than the 65,535 pixels a JPEG frame header can hold
 * is decoded at all.
 */
import { corrupt, WsiError } from '../errors.js';
import type { RandomAccessFile } from '../tiff/file.js';

/** libjpeg's largest image side (JPEG_MAX_DIMENSION); NDPI writes 0 or more into the frame header of wider levels. */
export const JPEG_MAX_SIDE = 65_500;

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DRI = 0xdd;
const RST0 = 0xd0;
/** RST0 to RST7, and EOI, as they are placed between and after intervals. */
const RESTART_MARKERS = Array.from({ length: 8 }, (_, i) => Buffer.from([0xff, RST0 + i]));
const EOI_MARKER = Buffer.from([0xff, EOI]);
/** Bytes read at a time while looking for the header's end or for restart markers. */
const CHUNK = 256 * 1024;
/** The header (tables, frame and scan headers) of a real strip is a few hundred bytes. */
const MAX_HEADER = 1024 * 1024;

export interface JpegStripHeader {
  /** Bytes of the strip up to the end of the SOS segment, where the entropy-coded data begins. */
  bytes: Buffer;
  /** Offset of the frame header (FF C0…) in `bytes`, and its length with the marker. */
  sofAt: number;
  sofLength: number;
  /** The size the frame header claims (0 or larger than libjpeg allows in the widest NDPI levels). */
  width: number;
  height: number;
  components: number;
  mcuWidth: number;
  mcuHeight: number;
  /** MCUs between restart markers; 0 when there are none. */
  restartInterval: number;
  /** TIFF's YCbCrSubSampling for these sampling factors (libtiff checks them). */
  subsampling: [number, number];
}

/** Parse the strip's header: everything before the entropy-coded data. */
export async function readStripHeader(file: RandomAccessFile, stripOffset: number, stripLength: number, what: string): Promise<JpegStripHeader> {
  let length = Math.min(stripLength, 64 * 1024);
  for (;;) {
    const bytes = await file.read(stripOffset, length, what);
    const parsed = parseHeader(bytes, `${file.path}: ${what}`);
    if (parsed) return parsed;
    if (length >= stripLength || length >= MAX_HEADER) throw corrupt(`${file.path}: ${what}: no JPEG scan header (SOS) in the first ${length} bytes`);
    length = Math.min(stripLength, length * 4, MAX_HEADER);
  }
}

/** The header, or undefined when `bytes` end before the SOS segment does. */
function parseHeader(bytes: Buffer, what: string): JpegStripHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) throw corrupt(`${what}: does not start with a JPEG SOI marker`);
  let at = 2;
  let sof: Omit<JpegStripHeader, 'bytes' | 'restartInterval'> | undefined;
  let restartInterval = 0;
  for (;;) {
    if (at + 4 > bytes.length) return undefined;
    if (bytes[at] !== 0xff) throw corrupt(`${what}: expected a JPEG marker at byte ${at} of its header`);
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = bytes.readUInt16BE(at + 2);
    if (length < 2) throw corrupt(`${what}: a JPEG marker segment of length ${length}`);
    const end = at + 2 + length;
    if (end > bytes.length) return undefined;
    if (marker === 0xc0 || marker === 0xc1) {
      const components = bytes[at + 9]!;
      if (length < 8 + 3 * components) throw corrupt(`${what}: a truncated JPEG frame header`);
      let hMax = 1;
      let vMax = 1;
      const factors: [number, number][] = [];
      for (let c = 0; c < components; c++) {
        const sampling = bytes[at + 11 + 3 * c]!;
        factors.push([sampling >> 4, sampling & 15]);
        hMax = Math.max(hMax, sampling >> 4);
        vMax = Math.max(vMax, sampling & 15);
      }
      const chroma = factors[1] ?? [hMax, vMax];
      sof = {
        sofAt: at,
        sofLength: 2 + length,
        height: bytes.readUInt16BE(at + 5),
        width: bytes.readUInt16BE(at + 7),
        components,
        // One component alone is coded block by block, whatever its sampling factors say.
        mcuWidth: components > 1 ? 8 * hMax : 8,
        mcuHeight: components > 1 ? 8 * vMax : 8,
        subsampling: [hMax / Math.max(1, chroma[0]), vMax / Math.max(1, chroma[1])],
      };
    } else if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      throw new WsiError('unsupported_compression', `${what}: not a baseline JPEG (frame marker FF ${marker.toString(16).toUpperCase()})`);
    } else if (marker === DRI) {
      restartInterval = bytes.readUInt16BE(at + 4);
    } else if (marker === SOS) {
      if (!sof) throw corrupt(`${what}: the JPEG scan header comes before any frame header`);
      return { ...sof, bytes: bytes.subarray(0, end), restartInterval };
    } else if (marker === EOI) {
      throw corrupt(`${what}: the JPEG ends before its scan`);
    }
    at = end;
  }
}

/**
 * Where each restart interval of a strip lies in the file. From McuStarts
 * when the file records them (checked when opened, each marker again when
 * read); otherwise found by scanning the entropy-coded data for restart
 * markers, lazily and only as far as a read needs, as OpenSlide does.
 */
export class RestartIntervals {
  /** File offset where each interval's data begins; NaN where not yet known. */
  private readonly starts: Float64Array;
  private known: number;
  private scanning: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: RandomAccessFile,
    private readonly stripOffset: number,
    private readonly stripLength: number,
    headerLength: number,
    readonly count: number,
    private readonly what: string,
    recorded?: readonly number[],
  ) {
    this.starts = new Float64Array(count).fill(NaN);
    this.starts[0] = stripOffset + headerLength;
    this.known = 1;
    if (recorded) {
      if (recorded[0] !== headerLength) {
        throw corrupt(`${file.path}: ${what}: tag 65426 puts the first restart interval at byte ${recorded[0]}, but the JPEG header ends at byte ${headerLength}`);
      }
      for (let i = 1; i < count; i++) {
        const at = recorded[i]!;
        if (!Number.isSafeInteger(at) || at + 2 > stripLength) {
          throw corrupt(`${file.path}: ${what}: tag 65426 puts restart interval ${i} at byte ${at}, past the end of the ${stripLength}-byte JPEG strip; the file is damaged`);
        }
        if (at <= recorded[i - 1]!) throw corrupt(`${file.path}: ${what}: tag 65426 lists restart interval ${i} at byte ${at}, not after interval ${i - 1} (byte ${recorded[i - 1]})`);
        this.starts[i] = stripOffset + at;
      }
      this.known = count;
    }
  }

  /**
   * The entropy-coded bytes of intervals `first` to `last` (consecutive in
   * the file), each without the restart marker or EOI that ends it.
   */
  async read(first: number, last: number): Promise<Buffer[]> {
    await this.find(Math.min(last + 1, this.count - 1));
    const stripEnd = this.stripOffset + this.stripLength;
    const endOf = (i: number) => (i + 1 < this.count ? this.starts[i + 1]! : stripEnd);
    // From the marker before the first interval, so that it is checked too.
    const start = this.starts[first]! - (first > 0 ? 2 : 0);
    const span = await this.file.read(start, endOf(last) - start, `${this.what}: restart intervals ${first}–${last}`);
    const isMarkerAt = (at: number, last: boolean) => {
      const byte = span[at + 1]!;
      return span[at] === 0xff && (last || (byte >= RST0 && byte <= RST0 + 7));
    };
    if (first > 0 && !isMarkerAt(0, false)) throw this.noMarker(first - 1);
    const pieces: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const from = this.starts[i]! - start;
      const to = endOf(i) - start;
      // The last interval ends with EOI, which OpenSlide does not insist on either.
      if (to - from < 2 || !isMarkerAt(to - 2, i + 1 === this.count)) throw this.noMarker(i);
      pieces.push(span.subarray(from, to - 2));
    }
    return pieces;
  }

  private noMarker(interval: number): WsiError {
    const at = (interval + 1 < this.count ? this.starts[interval + 1]! : this.stripOffset + this.stripLength) - this.stripOffset - 2;
    return corrupt(`${this.file.path}: ${this.what}: no restart marker at the end of restart interval ${interval} (byte ${at} of the strip); the file is damaged`);
  }

  /** Make sure the start of interval `index` (and all before it) is known; `count` means the strip's end. */
  private find(index: number): Promise<void> {
    if (index < this.known || index >= this.count) return Promise.resolve();
    this.scanning = this.scanning.then(() => this.scan(index));
    return this.scanning;
  }

  private async scan(target: number): Promise<void> {
    const end = this.stripOffset + this.stripLength;
    let position = this.starts[this.known - 1]!;
    let pendingFf = false;
    while (this.known <= target) {
      if (position >= end) {
        throw corrupt(`${this.file.path}: ${this.what}: the JPEG strip holds ${this.known} restart intervals, fewer than the ${this.count} its size needs; the file is damaged`);
      }
      const length = Math.min(CHUNK, end - position);
      const chunk = await this.file.read(position, length, `${this.what}: looking for restart markers`);
      for (let i = 0; i < chunk.length && this.known <= target; i++) {
        if (pendingFf) {
          pendingFf = false;
          const byte = chunk[i]!;
          if (byte >= RST0 && byte <= RST0 + 7) this.starts[this.known++] = position + i + 1;
          else if (byte === 0xff) pendingFf = true;
          continue;
        }
        if (chunk[i] === 0xff) pendingFf = true;
      }
      position += length;
      if (this.known > target) break;
    }
  }
}

/** A JPEG of intervals laid out `across` per row, from the strip's header with a frame header of `width`×`height`. */
export function assembleIntervals(header: JpegStripHeader, rows: Buffer[][], width: number, height: number): Buffer {
  const sof = Buffer.from(header.bytes.subarray(header.sofAt, header.sofAt + header.sofLength));
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  const parts: Buffer[] = [header.bytes.subarray(0, header.sofAt), sof, header.bytes.subarray(header.sofAt + header.sofLength)];
  let placed = 0;
  for (const row of rows) {
    for (const interval of row) {
      if (placed > 0) parts.push(RESTART_MARKERS[(placed - 1) % 8]!);
      parts.push(interval);
      placed++;
    }
  }
  parts.push(EOI_MARKER);
  return Buffer.concat(parts);
}

/**
 * The strip's header split for tiles in a TIFF (TIFF Technical Note 2): the
 * quantisation and Huffman tables as a JPEGTables value (SOI, DQT/DHT, EOI),
 * and the header without them, for abbreviated tiles. Of the application
 * segments only JFIF (APP0) and Adobe (APP14), which tell a decoder the
 * colour space, are kept; comments and other application data are dropped.
 */
export function withoutTables(header: JpegStripHeader): { tables: Buffer; header: JpegStripHeader } {
  const { bytes } = header;
  const tables: Buffer[] = [];
  const kept: Buffer[] = [bytes.subarray(0, 2)];
  let keptLength = 2;
  let sofAt = -1;
  let at = 2;
  while (at < bytes.length) {
    if (bytes[at + 1] === 0xff) {
      at++; // fill byte
      continue;
    }
    const marker = bytes[at + 1]!;
    const end = at + 2 + bytes.readUInt16BE(at + 2);
    const segment = bytes.subarray(at, end);
    if (marker === 0xdb || marker === 0xc4) tables.push(segment);
    else if (marker === 0xfe || (marker >= 0xe1 && marker <= 0xed) || marker === 0xef) {
      // COM and application data other than JFIF and Adobe: not needed to decode, and free to hold anything.
    } else {
      if (at === header.sofAt) sofAt = keptLength;
      kept.push(segment);
      keptLength += segment.length;
    }
    at = end;
  }
  if (sofAt < 0) throw corrupt('a JPEG header without its frame header');
  return {
    tables: Buffer.concat([Buffer.from([0xff, SOI]), ...tables, Buffer.from([0xff, EOI])]),
    header: { ...header, bytes: Buffer.concat(kept, keptLength), sofAt },
  };
}
