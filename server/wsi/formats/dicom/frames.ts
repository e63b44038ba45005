import { corrupt } from '../../errors.js';
import type { RandomAccessFile } from '../../tiff/file.js';
import { scanFramePositions, Tags, UNDEFINED_LENGTH } from './elements.js';
import type { ValueRange } from './dataset.js';
import type { DicomInstance } from './instance.js';
import { transferSyntax } from './syntax.js';

/** The frames of an instance (or of a concatenation's instances), read by index. */
export interface FrameStore {
  readonly count: number;
  /** Frame `index` (0-based): its encoded bytes, or for native pixel data its raw samples. */
  read(index: number): Promise<Buffer>;
}

const ITEM_HEADER = 8;
/** Reads made while scanning fragments: one window serves the headers of the small fragments it holds. */
const SCAN_WINDOW = 64 * 1024;

/**
 * Index the frames of an instance's Pixel Data (PS3.5 §8.2, Annex A.4): for
 * native pixel data by arithmetic; for encapsulated pixel data through the
 * Extended Offset Table, else the Basic Offset Table, else by walking the
 * fragments' item headers (a read per fragment: the only case that reads
 * more than the header at open). Offsets are checked against the file's size
 * here and against the item tags they must point at when a frame is read, so
 * an offset table that lies fails with `corrupt` instead of yielding garbage.
 */
export async function indexFrames(file: RandomAccessFile, instance: DicomInstance): Promise<FrameStore> {
  const { header, frames } = instance;
  const path = file.path;
  const { pixelData } = header;
  if (!pixelData) throw corrupt(`${path}: the data set ends without Pixel Data`);
  if (pixelData.length !== UNDEFINED_LENGTH) {
    if (transferSyntax(header.transferSyntax)?.coding !== 'native') throw corrupt(`${path}: encapsulated transfer syntax with native (defined-length) Pixel Data`);
    const frameBytes = (instance.tileWidth * instance.tileHeight * instance.samplesPerPixel * instance.bitsAllocated) / 8;
    if (!Number.isInteger(frameBytes) || frameBytes < 1) throw corrupt(`${path}: frames of ${frameBytes} bytes`);
    if (frames * frameBytes > pixelData.length) {
      throw corrupt(`${path}: the Pixel Data holds ${pixelData.length} bytes, fewer than the ${frames} frames of ${frameBytes} bytes it declares`);
    }
    return { count: frames, read: (i) => file.read(pixelData.offset + checkIndex(path, i, frames) * frameBytes, frameBytes, `frame ${i + 1}`) };
  }

  const bot = await file.read(pixelData.offset, ITEM_HEADER, 'the Basic Offset Table');
  if (tagAt(bot, 0) !== Tags.ItemStart) throw corrupt(`${path}: the encapsulated Pixel Data does not start with a Basic Offset Table item`);
  const botLength = bot.readUInt32LE(4);
  if (botLength % 4 !== 0) throw corrupt(`${path}: the Basic Offset Table is ${botLength} bytes long, not a multiple of 4`);
  const first = pixelData.offset + ITEM_HEADER + botLength;
  if (header.extendedOffsetTable && header.extendedOffsetTable.length > 0) return extendedTable(file, instance, first);
  if (botLength > 0) return basicTable(file, frames, first, await file.read(pixelData.offset + ITEM_HEADER, botLength, 'the Basic Offset Table'));
  return scanFragments(file, instance, first);
}

async function extendedTable(file: RandomAccessFile, instance: DicomInstance, first: number): Promise<FrameStore> {
  const path = file.path;
  const { extendedOffsetTable: table, extendedOffsetTableLengths: lengthsRange } = instance.header;
  const { bytes } = instance.header;
  const offsets = await readUint64s(file, bytes.buffer, table!, 'the Extended Offset Table');
  const lengths = lengthsRange ? await readUint64s(file, bytes.buffer, lengthsRange, 'the Extended Offset Table Lengths') : undefined;
  if (offsets.length !== instance.frames || lengths?.length !== instance.frames) {
    throw corrupt(`${path}: the Extended Offset Table lists ${offsets.length} offsets and ${lengths?.length ?? 0} lengths for ${instance.frames} frames`);
  }
  for (let i = 0; i < offsets.length; i++) {
    if (first + offsets[i]! + ITEM_HEADER + lengths[i]! > file.size) {
      throw corrupt(`${path}: the Extended Offset Table puts frame ${i + 1} past the end of the file (${file.size} bytes)`);
    }
  }
  return {
    count: instance.frames,
    async read(i) {
      checkIndex(path, i, instance.frames);
      const at = first + offsets[i]!;
      const bytes = await file.read(at, ITEM_HEADER + lengths[i]!, `frame ${i + 1}`);
      // Each frame is one fragment when the table is present (PS3.5 A.4).
      if (tagAt(bytes, 0) !== Tags.ItemStart || bytes.readUInt32LE(4) !== lengths[i]) {
        throw corrupt(`${path}: the Extended Offset Table is wrong: frame ${i + 1} at offset ${at} is not a fragment of ${lengths[i]} bytes`);
      }
      return bytes.subarray(ITEM_HEADER);
    },
  };
}

function basicTable(file: RandomAccessFile, frames: number, first: number, table: Buffer): FrameStore {
  const path = file.path;
  const count = table.length / 4;
  if (count !== frames) throw corrupt(`${path}: the Basic Offset Table lists ${count} frames, the instance declares ${frames}`);
  const starts = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    starts[i] = first + table.readUInt32LE(i * 4);
    if ((i === 0 && starts[i] !== first) || (i > 0 && starts[i]! <= starts[i - 1]!)) {
      throw corrupt(`${path}: the Basic Offset Table is wrong: frame ${i + 1}'s offset ${table.readUInt32LE(i * 4)} does not follow frame ${i}'s`);
    }
    if (starts[i]! + ITEM_HEADER > file.size) throw corrupt(`${path}: the Basic Offset Table puts frame ${i + 1} past the end of the file (${file.size} bytes)`);
  }
  return {
    count,
    async read(i) {
      checkIndex(path, i, count);
      const start = starts[i]!;
      if (i + 1 < count) return fragmentsIn(path, await file.read(start, starts[i + 1]! - start, `frame ${i + 1}`), start, i);
      return lastFrame(file, start, i);
    },
  };
}

/** The values of the fragments that fill `span` (the bytes from `start` up to the next frame), concatenated. */
function fragmentsIn(path: string, span: Buffer, start: number, frame: number): Buffer {
  const parts: Buffer[] = [];
  let p = 0;
  while (p < span.length) {
    if (p + ITEM_HEADER > span.length || tagAt(span, p) !== Tags.ItemStart) {
      throw corrupt(`${path}: the offset table is wrong: no fragment starts at offset ${start + p} (frame ${frame + 1})`);
    }
    const length = span.readUInt32LE(p + 4);
    if (p + ITEM_HEADER + length > span.length) {
      throw corrupt(`${path}: the offset table is wrong: frame ${frame + 1}'s fragment at offset ${start + p} runs into the next frame`);
    }
    parts.push(span.subarray(p + ITEM_HEADER, p + ITEM_HEADER + length));
    p += ITEM_HEADER + length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The last frame has no next offset: its fragments run up to the Sequence Delimitation Item. */
async function lastFrame(file: RandomAccessFile, start: number, frame: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let p = start;
  while (p + ITEM_HEADER <= file.size) {
    const head = await file.read(p, ITEM_HEADER, `frame ${frame + 1}`);
    const tag = tagAt(head, 0);
    if (tag === Tags.SequenceEnd) break;
    if (tag !== Tags.ItemStart) {
      if (parts.length > 0) break;
      throw corrupt(`${file.path}: the offset table is wrong: no fragment starts at offset ${p} (frame ${frame + 1})`);
    }
    const length = head.readUInt32LE(4);
    parts.push(await file.read(p + ITEM_HEADER, length, `frame ${frame + 1}`));
    p += ITEM_HEADER + length;
  }
  if (parts.length === 0) throw corrupt(`${file.path}: frame ${frame + 1} lies past the end of the file`);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Without offset tables: walk the fragments' item headers, then tell frames apart (PS3.5 A.4). */
async function scanFragments(file: RandomAccessFile, instance: DicomInstance, first: number): Promise<FrameStore> {
  const path = file.path;
  const values: number[] = [];
  const lengths: number[] = [];
  const starts: boolean[] = [];
  let window: Buffer = Buffer.alloc(0);
  let windowAt = 0;
  let p = first;
  let ended = false;
  while (p + ITEM_HEADER <= file.size) {
    if (p < windowAt || p + ITEM_HEADER + 4 > windowAt + window.length) {
      windowAt = p;
      window = await file.read(p, Math.min(SCAN_WINDOW, file.size - p), 'the Pixel Data fragments');
    }
    const at = p - windowAt;
    const tag = tagAt(window, at);
    if (tag === Tags.SequenceEnd) {
      ended = true;
      break;
    }
    if (tag !== Tags.ItemStart) throw corrupt(`${path}: damaged Pixel Data: no fragment item at offset ${p}`);
    const length = window.readUInt32LE(at + 4);
    if (p + ITEM_HEADER + length > file.size) {
      throw corrupt(`${path}: fragment ${values.length + 1} of the Pixel Data (${length} bytes at offset ${p}) runs past the end of the file (${file.size} bytes); the file is truncated`);
    }
    values.push(p + ITEM_HEADER);
    lengths.push(length);
    starts.push(at + ITEM_HEADER + 4 <= window.length && startsFrame(window.subarray(at + ITEM_HEADER, at + ITEM_HEADER + 4)));
    p += ITEM_HEADER + length;
  }
  if (!ended) throw corrupt(`${path}: the Pixel Data ends without its Sequence Delimitation Item after ${values.length} fragments; the file is truncated`);
  const { frames } = instance;
  let firstOf: number[];
  if (values.length === frames) firstOf = values.map((_, i) => i);
  else if (frames === 1 && values.length > 0) firstOf = [0];
  else {
    // Several fragments per frame: each frame's first fragment starts with its codec's marker.
    firstOf = starts.flatMap((s, i) => (s ? [i] : []));
    if (firstOf.length !== frames || firstOf[0] !== 0) {
      throw corrupt(`${path}: the Pixel Data holds ${values.length} fragments for ${frames} frames, and no offset table says which belong to which frame`);
    }
  }
  return {
    count: frames,
    async read(i) {
      checkIndex(path, i, frames);
      const from = firstOf[i]!;
      const to = i + 1 < frames ? firstOf[i + 1]! : values.length;
      const parts = [];
      for (let f = from; f < to; f++) parts.push(await file.read(values[f]!, lengths[f]!, `frame ${i + 1}`));
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
  };
}

/** Whether a fragment begins a JPEG / JPEG-LS (SOI), a JPEG 2000 codestream (SOC SIZ) or a JP2 file. */
function startsFrame(head: Buffer): boolean {
  return (head[0] === 0xff && head[1] === 0xd8) || (head[0] === 0xff && head[1] === 0x4f && head[2] === 0xff && head[3] === 0x51) || head.readUInt32BE(0) === 0x0c;
}

/** A table of 64-bit values, from the header already read (it lies before the Pixel Data) or from the file. */
async function readUint64s(file: RandomAccessFile, header: Buffer, range: ValueRange, what: string): Promise<number[]> {
  if (range.length === UNDEFINED_LENGTH || range.length % 8 !== 0) throw corrupt(`${file.path}: ${what} is ${range.length} bytes long, not a multiple of 8`);
  const inHeader = range.offset + range.length <= header.length;
  const bytes = inHeader ? header.subarray(range.offset, range.offset + range.length) : await file.read(range.offset, range.length, what);
  const out: number[] = [];
  for (let i = 0; i < range.length; i += 8) {
    const high = bytes.readUInt32LE(i + 4);
    if (high >= 2 ** 21) throw corrupt(`${file.path}: ${what} holds an absurd value ${bytes.readBigUInt64LE(i)}`);
    out.push(high * 2 ** 32 + bytes.readUInt32LE(i));
  }
  return out;
}

const tagAt = (b: Buffer, at: number) => ((b.readUInt16LE(at) << 16) | b.readUInt16LE(at + 2)) >>> 0;

function checkIndex(path: string, i: number, count: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= count) throw corrupt(`${path}: no frame ${i + 1}; the instance has ${count}`);
  return i;
}

/** Frames of several instances as one store: the parts of a concatenation, each from its Concatenation Frame Offset Number. */
export function concatenated(parts: { offset: number; store: FrameStore }[]): FrameStore {
  const sorted = [...parts].sort((a, b) => a.offset - b.offset);
  const last = sorted[sorted.length - 1]!;
  return {
    count: last.offset + last.store.count,
    read(i) {
      let part = sorted[0]!;
      for (const candidate of sorted) if (candidate.offset <= i) part = candidate;
      return part.store.read(i - part.offset);
    },
  };
}

/** Which frame holds each tile of the chosen optical path and focal plane; -1 where a TILED_SPARSE image has none. */
export interface TileGrid {
  across: number;
  down: number;
  frameAt(col: number, row: number): number;
  /** Tile positions with no frame (TILED_SPARSE only). */
  missing: number;
}

/**
 * The tile grid of an image: TILED_FULL by arithmetic (frames run along
 * rows, then down, then through focal planes, then through optical paths;
 * PS3.3 C.8.12.4.1.3); TILED_SPARSE from each frame's plane position, read
 * from the Per-Frame Functional Groups in one compact scan.
 */
export function tileGrid(instances: DicomInstance[], totalFrames: number, pathId: string): TileGrid {
  const base = instances[0]!;
  const path = base.header.path;
  const across = Math.ceil(base.width / base.tileWidth);
  const down = Math.ceil(base.height / base.tileHeight);
  const perPlane = across * down;
  if (base.organization === 'TILED_FULL') {
    const perPath = perPlane * base.focalPlanes;
    if (totalFrames < perPlane) {
      throw corrupt(`${path}: ${totalFrames} frames, but its ${base.width}×${base.height} image in tiles of ${base.tileWidth}×${base.tileHeight} needs ${perPlane}`);
    }
    // A single image for every optical path (a colour label or localizer) is stored once.
    const stored = Math.floor(totalFrames / perPath);
    const index = Math.max(0, base.opticalPaths.findIndex((p) => p.id === pathId));
    const offset = index < stored ? index * perPath : 0;
    return { across, down, missing: 0, frameAt: (col, row) => offset + row * across + col };
  }
  const map = new Int32Array(perPlane).fill(-1);
  let frameBase = 0;
  let plane: number | undefined;
  for (const instance of instances) {
    const { perFrame } = instance.header;
    if (!perFrame) throw corrupt(`${instance.header.path}: a TILED_SPARSE instance without Per-Frame Functional Groups`);
    let positions;
    try {
      positions = scanFramePositions(instance.header.bytes, perFrame.offset, perFrame.length, instance.header.explicit, instance.frames);
    } catch (error) {
      throw corrupt(`${instance.header.path}: damaged Per-Frame Functional Groups (${(error as Error).message})`, error);
    }
    const start = instance.concatenation?.frameOffset ?? frameBase;
    for (let f = 0; f < instance.frames; f++) {
      const id = positions.opticalPaths[f];
      if (id !== undefined && id !== pathId) continue;
      const z = positions.z[f]!;
      plane ??= z;
      if (!(z === plane || (Number.isNaN(z) && Number.isNaN(plane)))) continue;
      const c = positions.columns[f]!;
      const r = positions.rows[f]!;
      const col = (c - 1) / base.tileWidth;
      const row = (r - 1) / base.tileHeight;
      if (c < 1 || r < 1) throw corrupt(`${instance.header.path}: frame ${f + 1} has no plane position in the Per-Frame Functional Groups`);
      if (!Number.isInteger(col) || !Number.isInteger(row) || col >= across || row >= down) {
        throw corrupt(`${instance.header.path}: frame ${f + 1} lies at (${c}, ${r}), off the grid of ${base.tileWidth}×${base.tileHeight} tiles of a ${base.width}×${base.height} image`);
      }
      if (map[row * across + col] === -1) map[row * across + col] = start + f;
    }
    frameBase += instance.frames;
  }
  let missing = 0;
  for (const f of map) if (f === -1) missing++;
  return { across, down, missing, frameAt: (col, row) => map[row * across + col]! };
}
