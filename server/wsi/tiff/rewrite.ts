/**
 * Copy chosen directories of a TIFF into a new file: the tiles or strips are
 * copied byte for byte (so pixels cannot change), the tags are the ones the
 * caller passes. Because every chunk's size is known beforehand, the layout
 * is planned first (header, directories, then data) and the file is written
 * front to back in one pass, hashing as it goes.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { TiffDirectory } from './directory.js';
import type { RandomAccessFile } from './file.js';
import { FieldType, MAX_CLASSIC_OFFSET, asciiValue, rationalValue, serializeIfds, tiffHeader, type IfdEntry } from './ifd-writer.js';
import { Tag } from './tags.js';

export interface RewriteDirectory {
  source: TiffDirectory;
  /**
   * Every tag to write except the layout ones the rewriter owns: image size,
   * tile size or RowsPerStrip, and the chunk offsets and byte counts.
   */
  entries: IfdEntry[];
}

export interface RewriteOptions {
  /** Called after each block written, with bytes written so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Largest read-and-write block (default 8 MiB). */
  blockBytes?: number;
  /** Always write BigTIFF. */
  bigtiff?: boolean;
  /**
   * Also feed every byte of the source, in order, into this hash (an
   * original's checksum without a read of its own). Done when the chunks
   * copied lie in the source in the order they are written (as scanners and
   * the generator lay them out): the source is then read front to back once,
   * whole. Otherwise the hash is left untouched and `sourceHashed` is false.
   */
  sourceHash?: Hash;
}

export interface RewriteResult {
  size: number;
  sha256: string;
  format: 'classic' | 'bigtiff';
  /** Whether `sourceHash` was fed the whole source. */
  sourceHashed: boolean;
}

/** Tags the rewriter writes from the layout; callers must not pass them. */
export const LAYOUT_TAGS: ReadonlySet<number> = new Set([
  Tag.ImageWidth,
  Tag.ImageLength,
  Tag.TileWidth,
  Tag.TileLength,
  Tag.RowsPerStrip,
  Tag.TileOffsets,
  Tag.TileByteCounts,
  Tag.StripOffsets,
  Tag.StripByteCounts,
]);

/**
 * The source's tag as an entry to write, keeping its field type. Returns
 * undefined for types this writer does not produce (signed and float types),
 * so the caller can report the tag as dropped.
 */
export function carryTag(directory: TiffDirectory, tag: number): IfdEntry | undefined {
  const value = directory.tags.get(tag);
  const type = directory.tagTypes.get(tag);
  if (value === undefined || type === undefined) return undefined;
  if (typeof value === 'string') return { tag, type: FieldType.ASCII, values: asciiValue(value) };
  if (Buffer.isBuffer(value)) {
    if (type !== FieldType.BYTE && type !== FieldType.UNDEFINED) return undefined;
    return { tag, type, values: value };
  }
  switch (type) {
    case FieldType.SHORT:
    case FieldType.LONG:
    case FieldType.DOUBLE:
    case FieldType.BYTE:
      return { tag, type, values: value };
    case 13: // IFD offsets point into the source file and mean nothing in the copy
    case 16:
    case 18:
      return undefined;
    case FieldType.RATIONAL:
      return { tag, type, values: value.flatMap(rationalValue) };
    default:
      return undefined;
  }
}

interface Chunk {
  sourceOffset: number;
  length: number;
}

export async function rewriteTiff(
  source: RandomAccessFile,
  littleEndianSource: boolean,
  directories: RewriteDirectory[],
  output: string,
  options: RewriteOptions = {},
): Promise<RewriteResult> {
  if (directories.length === 0) throw new Error('a TIFF needs at least one directory');
  for (const { source: d, entries } of directories) {
    const owned = entries.find((e) => LAYOUT_TAGS.has(e.tag));
    if (owned) throw new Error(`tag ${owned.tag} of directory ${d.index} is written by the rewriter, not the caller`);
    if (!littleEndianSource && d.bitsPerSample > 8 && !isByteOrderFree(d.compression)) {
      throw new Error(`directory ${d.index} holds ${d.bitsPerSample}-bit samples in big-endian order; copying them into a little-endian file would change them`);
    }
  }

  const chunks = directories.map(({ source: d }) =>
    Array.from(d.offsets, (offset, i): Chunk => ({ sourceOffset: offset, length: d.byteCounts[i]! })),
  );
  const dataBytes = chunks.flat().reduce((sum, c) => sum + c.length, 0);

  let big = options.bigtiff === true;
  let plan = planLayout(directories, chunks, big);
  if (!big && plan.dataStart + dataBytes > MAX_CLASSIC_OFFSET) {
    big = true;
    plan = planLayout(directories, chunks, big);
  }
  const total = plan.dataStart + dataBytes;

  let handle: FileHandle | undefined;
  try {
    handle = await open(output, 'wx');
    const hash = createHash('sha256');
    const head = Buffer.concat([tiffHeader(big, plan.firstIfd), Buffer.alloc(plan.firstIfd - (big ? 16 : 8)), plan.ifds]);
    await writeAll(handle, head, 0);
    hash.update(head);
    let position = head.length;
    if (position !== plan.dataStart) throw new Error(`layout error: data planned at ${plan.dataStart}, header ends at ${position}`);

    const blockBytes = options.blockBytes ?? 8 * 1024 * 1024;
    const inOrder = options.sourceHash !== undefined && inSourceOrder(chunks.flat(), source.size);
    if (inOrder) {
      position = await copyWholeSource(source, chunks.flat(), handle, position, blockBytes, [hash, options.sourceHash!], (done) => options.onProgress?.(done, total));
    } else {
      const runs = contiguousRuns(chunks.flat(), blockBytes);
      let next = runs.length > 0 ? readRun(source, runs[0]!) : undefined;
      for (let i = 0; i < runs.length; i++) {
        const block = await next!;
        next = i + 1 < runs.length ? readRun(source, runs[i + 1]!) : undefined;
        hash.update(block);
        await writeAll(handle, block, position);
        position += block.length;
        options.onProgress?.(position, total);
      }
    }
    if (position !== total) throw new Error(`layout error: wrote ${position} bytes of ${total}`);
    await handle.sync();
    await handle.close();
    handle = undefined;
    return { size: total, sha256: hash.digest('hex'), format: big ? 'bigtiff' : 'classic', sourceHashed: inOrder };
  } catch (error) {
    if (handle) await handle.close().catch(() => {});
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') await rm(output, { force: true });
    throw error;
  }
}

/** Compressed data streams are byte sequences; only raw (or predicted) multi-byte samples depend on byte order. */
function isByteOrderFree(compression: number): boolean {
  return ![1, 5, 8, 32946, 32773].includes(compression);
}

interface Plan {
  firstIfd: number;
  ifds: Buffer;
  dataStart: number;
}

/** Header, then every IFD, then the data, with each directory's chunks in tile order. */
function planLayout(directories: RewriteDirectory[], chunks: Chunk[][], big: boolean): Plan {
  const firstIfd = big ? 16 : 8;
  const build = (dataStart: number) => {
    let cursor = dataStart;
    const lists = directories.map(({ source: d, entries }, i) => {
      const offsets = chunks[i]!.map((c) => {
        const at = cursor;
        cursor += c.length;
        return at;
      });
      return [...entries, ...layoutEntries(d, offsets, chunks[i]!.map((c) => c.length), big)];
    });
    return serializeIfds(lists, firstIfd, big);
  };
  // The IFDs' size does not depend on the offsets they hold, so one trial run fixes where the data starts.
  const trial = build(0);
  const dataStart = firstIfd + trial.length;
  return { firstIfd, ifds: build(dataStart), dataStart };
}

function layoutEntries(d: TiffDirectory, offsets: number[], counts: number[], big: boolean): IfdEntry[] {
  const offsetType = big ? FieldType.LONG8 : FieldType.LONG;
  const list: IfdEntry[] = [
    { tag: Tag.ImageWidth, type: FieldType.LONG, values: [d.width] },
    { tag: Tag.ImageLength, type: FieldType.LONG, values: [d.height] },
  ];
  if (d.tiled) {
    list.push(
      { tag: Tag.TileWidth, type: FieldType.LONG, values: [d.tileWidth] },
      { tag: Tag.TileLength, type: FieldType.LONG, values: [d.tileHeight] },
      { tag: Tag.TileOffsets, type: offsetType, values: offsets },
      { tag: Tag.TileByteCounts, type: offsetType, values: counts },
    );
  } else {
    list.push(
      { tag: Tag.RowsPerStrip, type: FieldType.LONG, values: [d.tileHeight] },
      { tag: Tag.StripOffsets, type: offsetType, values: offsets },
      { tag: Tag.StripByteCounts, type: offsetType, values: counts },
    );
  }
  return list;
}

/** Gaps (alignment padding, unrelated bytes) this small are read along with their neighbours and dropped. */
const MAX_GAP = 64 * 1024;

/** Consecutive chunks that lie in order and close together in the source, read as one span of at most `limit` bytes. */
function contiguousRuns(chunks: Chunk[], limit: number): Chunk[][] {
  const runs: Chunk[][] = [];
  let run: Chunk[] = [];
  for (const chunk of chunks) {
    const first = run[0];
    const last = run.at(-1);
    const end = last ? last.sourceOffset + last.length : 0;
    const joins =
      first !== undefined &&
      chunk.length > 0 &&
      chunk.sourceOffset >= end &&
      chunk.sourceOffset - end <= MAX_GAP &&
      chunk.sourceOffset + chunk.length - first.sourceOffset <= limit;
    if (!joins && run.length > 0) {
      runs.push(run);
      run = [];
    }
    run.push(chunk);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** The run's chunks, back to back: one read of the span they lie in, gaps left out. */
async function readRun(source: RandomAccessFile, run: Chunk[]): Promise<Buffer> {
  const first = run[0]!;
  const last = run.at(-1)!;
  const span = await source.read(first.sourceOffset, last.sourceOffset + last.length - first.sourceOffset, 'image data');
  const payload = run.reduce((sum, c) => sum + c.length, 0);
  if (payload === span.length) return span;
  return Buffer.concat(
    run.map((c) => span.subarray(c.sourceOffset - first.sourceOffset, c.sourceOffset - first.sourceOffset + c.length)),
    payload,
  );
}

/** Every non-empty chunk starts at or after the end of the one before it, and ends within the source (else the reads by runs name the damage). */
function inSourceOrder(chunks: Chunk[], size: number): boolean {
  let end = 0;
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (chunk.sourceOffset < end || chunk.sourceOffset + chunk.length > size) return false;
    end = chunk.sourceOffset + chunk.length;
  }
  return true;
}

/**
 * The source read front to back in blocks (the next block read while this
 * one is used), every byte into `hashes[1]`; the chunks' bytes, which lie in
 * it in the order they are written, handed to the output as slices of the
 * block (no copy) and into `hashes[0]`. Returns the output position reached.
 */
async function copyWholeSource(
  source: RandomAccessFile,
  chunks: Chunk[],
  output: FileHandle,
  position: number,
  blockBytes: number,
  [outputHash, sourceHash]: [Hash, Hash],
  onProgress: (done: number) => void,
): Promise<number> {
  const buffers = [Buffer.allocUnsafe(blockBytes), Buffer.allocUnsafe(blockBytes)];
  let turn = 0;
  let next: Promise<Buffer> | undefined = source.readInto(buffers[0]!, 0);
  let start = 0;
  // The chunk being copied, and how much of it is done.
  let k = 0;
  let copied = 0;
  while (next) {
    const block: Buffer = await next;
    const end: number = start + block.length;
    turn ^= 1;
    next = end < source.size ? source.readInto(buffers[turn]!, end) : undefined;
    sourceHash.update(block);
    const parts: Buffer[] = [];
    while (k < chunks.length) {
      const chunk = chunks[k]!;
      const from = chunk.sourceOffset + copied;
      if (chunk.length > 0 && from >= end) break;
      const to = Math.min(chunk.sourceOffset + chunk.length, end);
      if (to > from) parts.push(block.subarray(from - start, to - start));
      copied += Math.max(0, to - from);
      if (copied < chunk.length) break;
      k++;
      copied = 0;
    }
    for (const part of parts) outputHash.update(part);
    position = await writeParts(output, parts, position);
    onProgress(position);
    start = end;
  }
  if (k < chunks.length) throw new Error(`layout error: the source ended before chunk ${k} of ${chunks.length}`);
  return position;
}

/** The parts written one after the other from `position` (one system call where the kernel takes them all); the position after them. */
async function writeParts(handle: FileHandle, parts: Buffer[], position: number): Promise<number> {
  if (parts.length === 0) return position;
  const length = parts.reduce((sum, p) => sum + p.length, 0);
  const { bytesWritten } = await handle.writev(parts, position);
  if (bytesWritten < length) await writeAll(handle, Buffer.concat(parts).subarray(bytesWritten), position + bytesWritten);
  return position + length;
}

async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
