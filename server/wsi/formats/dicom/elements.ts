/**
 * The structure of a DICOM data set (PS3.5 §7): element headers, sequences
 * and items, walked over bytes already read without decoding values. The
 * reader uses it to find where the Per-Frame Functional Groups and the Pixel
 * Data lie without parsing them, and to scan the per-frame plane positions
 * of a TILED_SPARSE instance into typed arrays.
 */

export const UNDEFINED_LENGTH = 0xffffffff;

export const Tags = {
  ItemStart: 0xfffee000,
  ItemEnd: 0xfffee00d,
  SequenceEnd: 0xfffee0dd,
  PerFrameFunctionalGroups: 0x52009230,
  ExtendedOffsetTable: 0x7fe00001,
  ExtendedOffsetTableLengths: 0x7fe00002,
  PixelData: 0x7fe00010,
  PlanePositionSlide: 0x0048021a,
  ColumnPositionInTotalImagePixelMatrix: 0x0048021e,
  RowPositionInTotalImagePixelMatrix: 0x0048021f,
  OpticalPathIdentification: 0x00480207,
  OpticalPathIdentifier: 0x00480106,
  ZOffsetInSlideCoordinateSystem: 0x0040074a,
} as const;

/** Sequences the per-frame scan descends into when the VR is implicit. */
const IMPLICIT_SEQUENCES = new Set<number>([Tags.PlanePositionSlide, Tags.OpticalPathIdentification]);

/** Explicit VRs whose length is 4 bytes after 2 reserved ones (PS3.5 §7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/** The same VRs as two-byte codes, for the per-frame scan's loop. */
const LONG_VR_CODES = new Set([...LONG_VRS].map((vr) => (vr.charCodeAt(0) << 8) | vr.charCodeAt(1)));
const SQ_CODE = ('S'.charCodeAt(0) << 8) | 'Q'.charCodeAt(0);

/** Thrown when the bytes at hand end before the structure does: the caller reads more and tries again. */
export class NeedMoreBytes extends Error {
  constructor(readonly upTo: number) {
    super(`more bytes needed (up to ${upTo})`);
  }
}

/** Bytes of a file from `base` on, already read. */
export interface Bytes {
  buffer: Buffer;
  base: number;
}

export interface ElementHeader {
  tag: number;
  /** Two letters, or '' when the VR is implicit (and for items and delimiters). */
  vr: string;
  length: number;
  /** File offset of the element's value. */
  value: number;
}

/** The header of the element at file offset `at`. */
export function elementHeader(bytes: Bytes, at: number, explicit: boolean): ElementHeader {
  const b = bytes.buffer;
  const o = within(bytes, at, 8);
  const tag = ((b.readUInt16LE(o) << 16) | b.readUInt16LE(o + 2)) >>> 0;
  if (tag >>> 16 === 0xfffe || !explicit) return { tag, vr: '', length: b.readUInt32LE(o + 4), value: at + 8 };
  const vr = String.fromCharCode(b[o + 4]!, b[o + 5]!);
  if (LONG_VRS.has(vr)) return { tag, vr, length: b.readUInt32LE(within(bytes, at + 8, 4)), value: at + 12 };
  return { tag, vr, length: b.readUInt16LE(o + 6), value: at + 8 };
}

/** The file offset just past the element whose header is `h`, walking undefined-length sequences item by item. */
export function skipElement(bytes: Bytes, h: ElementHeader, explicit: boolean): number {
  if (h.length !== UNDEFINED_LENGTH) return h.value + h.length;
  return walkItems(bytes, h.value, undefined, explicit, (item) => skipItem(bytes, item, explicit));
}

function skipItem(bytes: Bytes, item: ElementHeader, explicit: boolean): number {
  if (item.length !== UNDEFINED_LENGTH) return item.value + item.length;
  let at = item.value;
  for (;;) {
    const h = elementHeader(bytes, at, explicit);
    if (h.tag === Tags.ItemEnd) return h.value;
    at = skipElement(bytes, h, explicit);
  }
}

/**
 * Walk the items of a sequence value from `at` to `end` (undefined: up to
 * its Sequence Delimitation Item); `onItem` returns where the item ends.
 * Returns the offset just past the sequence.
 */
export function walkItems(bytes: Bytes, at: number, end: number | undefined, explicit: boolean, onItem: (item: ElementHeader, index: number) => number): number {
  let index = 0;
  while (end === undefined || at < end) {
    const h = elementHeader(bytes, at, explicit);
    if (h.tag === Tags.SequenceEnd) return h.value;
    if (h.tag !== Tags.ItemStart) throw new Error(`expected a sequence item at offset ${at}, found tag ${hexTag(h.tag)}`);
    at = onItem(h, index++);
  }
  if (at !== end) throw new Error(`a sequence item runs past the end of its sequence (offset ${at}, sequence ends at ${end})`);
  return at;
}

/** Plane positions (1-based, in the Total Pixel Matrix) and optical paths of every frame of a Per-Frame Functional Groups Sequence. */
export interface FramePositions {
  columns: Int32Array;
  rows: Int32Array;
  /** Each frame's Optical Path Identifier, where the frames name one. */
  opticalPaths: (string | undefined)[];
  /** Each frame's Z offset in the slide coordinate system (µm), NaN where absent. */
  z: Float64Array;
}

/**
 * Scan the items of a Per-Frame Functional Groups Sequence (value at
 * `at`, `length` bytes or undefined) for each frame's plane position and
 * optical path, into typed arrays. One loop over the bytes with a stack of
 * where each open sequence and item ends, and no object per element: a
 * hundred thousand frames take a few tens of milliseconds.
 */
export function scanFramePositions(bytes: Bytes, at: number, length: number, explicit: boolean, frames: number): FramePositions {
  const out: FramePositions = {
    columns: new Int32Array(frames).fill(-1),
    rows: new Int32Array(frames).fill(-1),
    opticalPaths: new Array<string | undefined>(frames).fill(undefined),
    z: new Float64Array(frames).fill(Number.NaN),
  };
  const b = bytes.buffer;
  const end = length === UNDEFINED_LENGTH ? Infinity : at + length;
  /** Where each open item or nested sequence ends (Infinity: at its delimiter). */
  const ends: number[] = [];
  let frame = -1;
  let p = at;
  for (;;) {
    const limit = ends.length === 0 ? end : ends[ends.length - 1]!;
    if (p >= limit) {
      if (ends.length === 0) break;
      ends.pop();
      continue;
    }
    const o = within(bytes, p, 8);
    const group = b.readUInt16LE(o);
    const tag = ((group << 16) | b.readUInt16LE(o + 2)) >>> 0;
    if (group === 0xfffe) {
      const itemLength = b.readUInt32LE(o + 4);
      p += 8;
      if (tag === Tags.SequenceEnd || tag === Tags.ItemEnd) {
        if (ends.length === 0) break;
        ends.pop();
      } else if (tag === Tags.ItemStart) {
        if (ends.length === 0 && ++frame >= frames) throw new Error(`the Per-Frame Functional Groups Sequence has more items than the ${frames} frames`);
        ends.push(itemLength === UNDEFINED_LENGTH ? Infinity : p + itemLength);
      } else {
        throw new Error(`unexpected tag ${hexTag(tag)} at offset ${p - 8}`);
      }
      continue;
    }
    if (ends.length === 0) throw new Error(`expected a sequence item at offset ${p}, found tag ${hexTag(tag)}`);
    let valueLength: number;
    let value: number;
    let sequence: boolean;
    if (explicit) {
      const vr = (b[o + 4]! << 8) | b[o + 5]!;
      if (LONG_VR_CODES.has(vr)) {
        valueLength = b.readUInt32LE(within(bytes, p + 8, 4));
        value = p + 12;
      } else {
        valueLength = b.readUInt16LE(o + 6);
        value = p + 8;
      }
      sequence = vr === SQ_CODE;
    } else {
      valueLength = b.readUInt32LE(o + 4);
      value = p + 8;
      sequence = valueLength === UNDEFINED_LENGTH || IMPLICIT_SEQUENCES.has(tag);
    }
    if (sequence) {
      ends.push(valueLength === UNDEFINED_LENGTH ? Infinity : value + valueLength);
      p = value;
      continue;
    }
    if (valueLength === UNDEFINED_LENGTH) throw new Error(`element ${hexTag(tag)} of undefined length at offset ${p}`);
    if (tag === Tags.ColumnPositionInTotalImagePixelMatrix && valueLength === 4) out.columns[frame] = b.readInt32LE(within(bytes, value, 4));
    else if (tag === Tags.RowPositionInTotalImagePixelMatrix && valueLength === 4) out.rows[frame] = b.readInt32LE(within(bytes, value, 4));
    else if (tag === Tags.OpticalPathIdentifier) out.opticalPaths[frame] = text(bytes, value, valueLength);
    else if (tag === Tags.ZOffsetInSlideCoordinateSystem) out.z[frame] = Number(text(bytes, value, valueLength));
    p = value + valueLength;
  }
  return out;
}

/** The index in `bytes.buffer` of file offset `at`, once `length` bytes from there are at hand. */
function within(bytes: Bytes, at: number, length: number): number {
  const from = at - bytes.base;
  if (from < 0) throw new Error(`offset ${at} lies before the bytes read`);
  if (from + length > bytes.buffer.length) throw new NeedMoreBytes(at + length);
  return from;
}

/** A text value without its padding (trailing NUL or spaces, leading spaces). */
function text(bytes: Bytes, at: number, length: number): string {
  const b = bytes.buffer;
  let start = within(bytes, at, length);
  let end = start + length;
  while (end > start && (b[end - 1] === 0 || b[end - 1] === 0x20)) end--;
  while (start < end && b[start] === 0x20) start++;
  return b.toString('latin1', start, end);
}

export const hexTag = (tag: number) => `(${(tag >>> 16).toString(16).padStart(4, '0').toUpperCase()},${(tag & 0xffff).toString(16).padStart(4, '0').toUpperCase()})`;
