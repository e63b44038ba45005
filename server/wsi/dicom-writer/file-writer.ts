/**
 * The file writer: a DICOM Part 10 file (PS3.10 7.1) of one instance, its
 * header (preamble, file meta information, the data set) and encapsulated
 * Pixel Data (PS3.5 A.4): the offset table item, one fragment per frame, the
 * sequence delimiter. Frames are streamed from the frame index in batches;
 * the offset table's place is reserved (its size depends only on the frame
 * count) and filled in once every frame's length is known.
 *
 * Native (uncompressed) Pixel Data is one element of defined length: the
 * frames one after another, each of the same size, padded to an even length
 * at the end only (PS3.5 8.1.1).
 *
 * The Basic Offset Table holds 32-bit offsets. A level whose frames may pass
 * 4 GiB gets the Extended Offset Table instead (7FE0,0001 offsets and
 * 7FE0,0002 lengths, 64-bit) and an empty Basic Offset Table, as PS3.5 A.4
 * requires of the pair.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { bytes, encodeDataset, encodeElement, itemHeader, text, type Dataset } from './elements.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './uids.js';

export type OffsetTableChoice = 'auto' | 'basic' | 'extended';

/** The frames passed 4 GiB where their size was estimated below it: write the instance again with the Extended Offset Table. */
export class OffsetTableOverflow extends Error {
  constructor() {
    super('the frames passed 4 GiB under a Basic Offset Table');
  }
}

export interface InstanceFile {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntax: string;
  dataset: Dataset;
  frameCount: number;
  /** At least the frames' encoded size (item headers and padding included); `auto` picks the table by it. */
  maxFrameBytes: number;
  /** The frames, in order, in batches. */
  frames: AsyncIterable<Buffer[]>;
  offsetTable?: OffsetTableChoice;
  /** Native Pixel Data instead of encapsulated: every frame is `frameBytes` long, the element's VR is `vr`. */
  native?: { frameBytes: number; vr: 'OB' | 'OW' };
  onFrames?: (written: number) => void;
}

export interface WrittenInstance {
  bytes: number;
  /** `none` for native Pixel Data, whose frames are found by arithmetic. */
  offsetTable: 'basic' | 'extended' | 'none';
}

/** Writes under a temporary name beside `path`, renamed into place when complete. */
export async function writeInstanceFile(path: string, instance: InstanceFile): Promise<WrittenInstance> {
  if (instance.native) return writeNativeInstanceFile(path, instance, instance.native);
  const extended = instance.offsetTable === 'extended' || (instance.offsetTable !== 'basic' && instance.maxFrameBytes >= 0xffff_ffff - 8 * instance.frameCount);
  const n = instance.frameCount;
  const head = Buffer.concat([fileMeta(instance), encodeDataset(instance.dataset)]);
  const eotOffsets = extended ? encodeElement(bytes(0x7fe0_0001, 'OV', Buffer.alloc(8 * n))) : Buffer.alloc(0);
  const eotLengths = extended ? encodeElement(bytes(0x7fe0_0002, 'OV', Buffer.alloc(8 * n))) : Buffer.alloc(0);
  const pixelData = Buffer.alloc(12);
  pixelData.writeUInt16LE(0x7fe0, 0);
  pixelData.writeUInt16LE(0x0010, 2);
  pixelData.write('OB', 4, 'latin1');
  pixelData.writeUInt32LE(0xffff_ffff, 8);
  const botLength = extended ? 0 : 4 * n;
  const prefix = Buffer.concat([head, eotOffsets, eotLengths, pixelData, itemHeader(0xe000, botLength)]);
  const tableAt = head.length;
  const botAt = prefix.length;

  const partial = `${path}.partial`;
  const handle = await open(partial, 'w');
  try {
    await handle.write(prefix, 0, prefix.length, 0);
    let position = prefix.length + botLength;
    const firstFragment = position;
    const offsets: number[] = [];
    const lengths: number[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      await writeAll(handle, pending, position);
      position += pendingBytes;
      pending = [];
      pendingBytes = 0;
    };
    for await (const batch of instance.frames) {
      for (const frame of batch) {
        // Items have even lengths: a frame of odd length is followed by one zero byte (PS3.5 A.4).
        const length = frame.length + (frame.length % 2);
        offsets.push(position + pendingBytes - firstFragment);
        lengths.push(length);
        pending.push(itemHeader(0xe000, length), frame);
        if (length !== frame.length) pending.push(ZERO);
        pendingBytes += 8 + length;
        if (pendingBytes >= 8 * 1024 * 1024) await flush();
      }
      instance.onFrames?.(offsets.length);
    }
    await flush();
    if (offsets.length !== n) throw new Error(`the frame index gave ${offsets.length} frames, not ${n}`);
    const end = itemHeader(0xe0dd, 0);
    await handle.write(end, 0, end.length, position);
    position += end.length;

    if (extended) {
      const table = Buffer.alloc(8 * n);
      offsets.forEach((o, i) => table.writeBigUInt64LE(BigInt(o), 8 * i));
      await handle.write(table, 0, table.length, tableAt + 12);
      lengths.forEach((l, i) => table.writeBigUInt64LE(BigInt(l), 8 * i));
      await handle.write(table, 0, table.length, tableAt + eotOffsets.length + 12);
    } else {
      if (n > 0 && offsets[n - 1]! > 0xffff_ffff) throw new OffsetTableOverflow();
      const table = Buffer.alloc(4 * n);
      offsets.forEach((o, i) => table.writeUInt32LE(o, 4 * i));
      await handle.write(table, 0, table.length, botAt);
    }
    await handle.close();
    await rename(partial, path);
    return { bytes: position, offsetTable: extended ? 'extended' : 'basic' };
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(partial, { force: true });
    throw error;
  }
}

const ZERO = Buffer.alloc(1);

async function writeNativeInstanceFile(path: string, instance: InstanceFile, native: { frameBytes: number; vr: 'OB' | 'OW' }): Promise<WrittenInstance> {
  const n = instance.frameCount;
  const length = n * native.frameBytes;
  const padded = length + (length % 2);
  if (padded > 0xffff_fffe) throw new Error(`native Pixel Data of ${n} frames of ${native.frameBytes} bytes passes the 4 GiB a defined-length element can hold`);
  const pixelData = Buffer.alloc(12);
  pixelData.writeUInt16LE(0x7fe0, 0);
  pixelData.writeUInt16LE(0x0010, 2);
  pixelData.write(native.vr, 4, 'latin1');
  pixelData.writeUInt32LE(padded, 8);
  const prefix = Buffer.concat([fileMeta(instance), encodeDataset(instance.dataset), pixelData]);

  const partial = `${path}.partial`;
  const handle = await open(partial, 'w');
  try {
    await handle.write(prefix, 0, prefix.length, 0);
    let position = prefix.length;
    let written = 0;
    for await (const batch of instance.frames) {
      for (const frame of batch) {
        if (frame.length !== native.frameBytes) throw new Error(`frame ${written} holds ${frame.length} bytes, not the ${native.frameBytes} of a native frame`);
      }
      await writeAll(handle, batch, position);
      position += batch.length * native.frameBytes;
      written += batch.length;
      instance.onFrames?.(written);
    }
    if (written !== n) throw new Error(`the frame index gave ${written} frames, not ${n}`);
    if (length % 2) {
      await handle.write(ZERO, 0, 1, position);
      position += 1;
    }
    await handle.close();
    await rename(partial, path);
    return { bytes: position, offsetTable: 'none' };
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(partial, { force: true });
    throw error;
  }
}

/** Write `chunks` from `position` without copying them together: writev, 1024 buffers at a time, finishing short writes. */
async function writeAll(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  for (let start = 0; start < chunks.length; start += 1024) {
    let group = chunks.slice(start, start + 1024);
    while (group.length > 0) {
      const { bytesWritten } = await handle.writev(group, position);
      position += bytesWritten;
      let done = bytesWritten;
      while (group.length > 0 && done >= group[0]!.length) {
        done -= group[0]!.length;
        group = group.slice(1);
      }
      if (done > 0) group = [group[0]!.subarray(done), ...group.slice(1)];
    }
  }
}

/** The 128-byte preamble, "DICM" and the file meta information group (PS3.10 7.1), in Explicit VR Little Endian. */
function fileMeta(instance: InstanceFile): Buffer {
  const group = encodeDataset([
    bytes(0x0002_0001, 'OB', Buffer.from([0, 1])),
    text(0x0002_0002, 'UI', instance.sopClassUid),
    text(0x0002_0003, 'UI', instance.sopInstanceUid),
    text(0x0002_0010, 'UI', instance.transferSyntax),
    text(0x0002_0012, 'UI', IMPLEMENTATION_CLASS_UID),
    text(0x0002_0013, 'SH', IMPLEMENTATION_VERSION_NAME),
  ]);
  const length = Buffer.alloc(12);
  length.writeUInt16LE(0x0002, 0);
  length.writeUInt16LE(0x0000, 2);
  length.write('UL', 4, 'latin1');
  length.writeUInt16LE(4, 6);
  length.writeUInt32LE(group.length, 8);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), length, group]);
}
