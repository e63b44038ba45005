/**
 * Serialising TIFF and BigTIFF directories (little-endian), shared by the
 * slide generator's streaming writer and the rewriter that copies slides.
 */
import { TYPE_SIZE } from './tags.js';

export const FieldType = { BYTE: 1, ASCII: 2, SHORT: 3, LONG: 4, RATIONAL: 5, UNDEFINED: 7, DOUBLE: 12, LONG8: 16 } as const;
export type FieldType = (typeof FieldType)[keyof typeof FieldType];
const Type = FieldType;

/** The largest offset classic TIFF can hold. */
export const MAX_CLASSIC_OFFSET = 0xffff_ffff;

/** An ASCII field's bytes: latin1 text and its terminating NUL. */
export function asciiValue(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'latin1');
}

/** A positive number as a RATIONAL pair: exact for whole numbers, else to 1/10000. */
export function rationalValue(value: number): number[] {
  if (Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff) return [value, 1];
  const denominator = 10_000;
  return [Math.round(value * denominator), denominator];
}

/** Bytes an IFD of `entryCount` entries takes (without out-of-line values). */
export function ifdSize(entryCount: number, big: boolean): number {
  return (big ? 8 : 2) + entryCount * (big ? 20 : 12) + (big ? 8 : 4);
}

/** The file header: classic (8 bytes used) or BigTIFF (16), little-endian, pointing at the first IFD. */
export function tiffHeader(big: boolean, firstIfd: number): Buffer {
  const buf = Buffer.alloc(big ? 16 : 8);
  buf.write('II', 0, 'latin1');
  if (big) {
    buf.writeUInt16LE(43, 2);
    buf.writeUInt16LE(8, 4); // bytes per offset
    buf.writeUInt16LE(0, 6);
    buf.writeBigUInt64LE(BigInt(firstIfd), 8);
  } else {
    buf.writeUInt16LE(42, 2);
    buf.writeUInt32LE(firstIfd, 4);
  }
  return buf;
}

/**
 * One directory entry to write. Numbers are written in the field's type
 * (RATIONAL as numerator, denominator pairs); a Buffer is written as is (ASCII
 * with its NUL, BYTE, UNDEFINED, or values already encoded little-endian).
 */
export interface IfdEntry {
  tag: number;
  type: FieldType;
  values: number[] | Buffer;
}

function valueBytes(entry: IfdEntry): Buffer {
  if (Buffer.isBuffer(entry.values)) return entry.values;
  const size = TYPE_SIZE[entry.type]!;
  const count = entry.type === Type.RATIONAL ? entry.values.length / 2 : entry.values.length;
  const buf = Buffer.alloc(count * size);
  entry.values.forEach((value, i) => {
    switch (entry.type) {
      case Type.SHORT:
        buf.writeUInt16LE(value, i * 2);
        break;
      case Type.LONG:
      case Type.RATIONAL:
        buf.writeUInt32LE(value, i * 4);
        break;
      case Type.LONG8:
        buf.writeBigUInt64LE(BigInt(value), i * 8);
        break;
      case Type.DOUBLE:
        buf.writeDoubleLE(value, i * 8);
        break;
      case Type.BYTE:
        buf.writeUInt8(value, i);
        break;
      default:
        throw new Error(`cannot write numbers as TIFF type ${entry.type}`);
    }
  });
  return buf;
}

function count(entry: IfdEntry): number {
  if (Buffer.isBuffer(entry.values)) return entry.values.length;
  return entry.type === Type.RATIONAL ? entry.values.length / 2 : entry.values.length;
}

/**
 * Every IFD, each followed by its out-of-line values, laid out from `start`
 * (an even offset). Each IFD links to the next; the last links to 0.
 */
export function serializeIfds(directories: IfdEntry[][], start: number, big: boolean): Buffer {
  const inline = big ? 8 : 4;
  const entrySize = big ? 20 : 12;
  const countSize = big ? 8 : 2;
  const nextSize = big ? 8 : 4;
  const even = (n: number) => n + (n % 2);

  const plans = directories.map((unsorted) => {
    const list = [...unsorted].sort((a, b) => a.tag - b.tag);
    const values = list.map(valueBytes);
    const ifdSize = countSize + list.length * entrySize + nextSize;
    let extra = 0;
    for (const v of values) if (v.length > inline) extra += even(v.length);
    return { list, values, ifdSize, size: even(ifdSize) + extra };
  });
  const total = plans.reduce((sum, p) => sum + p.size, 0);
  const out = Buffer.alloc(total);

  let cursor = 0;
  plans.forEach((plan, index) => {
    const ifdOffset = start + cursor;
    const nextOffset = index + 1 < plans.length ? ifdOffset + plan.size : 0;
    let dataCursor = cursor + even(plan.ifdSize);
    let p = cursor;
    if (big) out.writeBigUInt64LE(BigInt(plan.list.length), p);
    else out.writeUInt16LE(plan.list.length, p);
    p += countSize;
    plan.list.forEach((entry, i) => {
      const bytes = plan.values[i]!;
      out.writeUInt16LE(entry.tag, p);
      out.writeUInt16LE(entry.type, p + 2);
      if (big) out.writeBigUInt64LE(BigInt(count(entry)), p + 4);
      else out.writeUInt32LE(count(entry), p + 4);
      const field = p + 4 + (big ? 8 : 4);
      if (bytes.length <= inline) {
        bytes.copy(out, field);
      } else {
        if (big) out.writeBigUInt64LE(BigInt(start + dataCursor), field);
        else out.writeUInt32LE(start + dataCursor, field);
        bytes.copy(out, dataCursor);
        dataCursor += even(bytes.length);
      }
      p += entrySize;
    });
    if (big) out.writeBigUInt64LE(BigInt(nextOffset), p);
    else out.writeUInt32LE(nextOffset, p);
    cursor += plan.size;
  });
  return out;
}

