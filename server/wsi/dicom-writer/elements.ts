/**
 * DICOM data elements as values (tag, VR, value), and their encoding in
 * Explicit VR Little Endian (PS3.5 7.1.2) with defined lengths. The
 * attributes of an instance are built as this model (attributes.ts), so that
 * the same model can be written to a file or, later, rendered as DICOM JSON.
 */

export type Vr =
  | 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FD' | 'FL' | 'IS' | 'LO' | 'LT' | 'OB' | 'OD' | 'OF' | 'OL' | 'OV' | 'OW' | 'PN' | 'SH' | 'SL' | 'SQ' | 'SS'
  | 'ST' | 'SV' | 'TM' | 'UC' | 'UI' | 'UL' | 'UN' | 'UR' | 'US' | 'UT' | 'UV';

export type ElementValue = readonly string[] | readonly number[] | Buffer | readonly Dataset[];

export interface Element {
  tag: number;
  vr: Vr;
  value: ElementValue;
}

/** A data set, or a sequence item: elements in any order (encoding sorts them by tag). */
export type Dataset = Element[];

/** VRs whose explicit header has a 32-bit length after two reserved bytes (PS3.5 Table 7.1-1). */
const LONG_VRS = new Set<Vr>(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const TEXT_VRS = new Set<Vr>(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);

export const text = (tag: number, vr: Vr, ...values: string[]): Element => ({ tag, vr, value: values });
export const numbers = (tag: number, vr: 'US' | 'UL' | 'SL' | 'SS' | 'FL' | 'FD' | 'AT' | 'UV' | 'SV', ...values: number[]): Element => ({ tag, vr, value: values });
export const bytes = (tag: number, vr: 'OB' | 'OW' | 'OV' | 'UN', value: Buffer): Element => ({ tag, vr, value });
export const sequence = (tag: number, ...items: Dataset[]): Element => ({ tag, vr: 'SQ', value: items });
export const code = (value: string, scheme: string, meaning: string): Dataset => [
  text(0x0008_0100, 'SH', value),
  text(0x0008_0102, 'SH', scheme),
  text(0x0008_0104, 'LO', meaning),
];

/**
 * A Decimal String of at most 16 characters (PS3.5 6.2): the shortest
 * rendering of `value` that fits, with as many significant digits as fit.
 */
export function decimalString(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a number: ${value}`);
  for (let precision = 15; precision > 0; precision--) {
    const s = String(Number(value.toPrecision(precision)));
    if (s.length <= 16) return s;
  }
  throw new RangeError(`${value} does not fit a Decimal String`);
}

/** Encode a data set (sorted by tag) in Explicit VR Little Endian, every length defined. */
export function encodeDataset(dataset: Dataset): Buffer {
  const parts: Buffer[] = [];
  for (const element of [...dataset].sort((a, b) => a.tag - b.tag)) parts.push(encodeElement(element));
  return Buffer.concat(parts);
}

export function encodeElement({ tag, vr, value }: Element): Buffer {
  const body = encodeValue(vr, value);
  if (body.length > 0xffff_fffe) throw new RangeError(`element ${tagName(tag)} is too long`);
  let head: Buffer;
  if (LONG_VRS.has(vr)) {
    head = Buffer.alloc(12);
    head.writeUInt32LE(body.length, 8);
  } else {
    if (body.length > 0xffff) throw new RangeError(`element ${tagName(tag)} (${vr}) is longer than its VR allows`);
    head = Buffer.alloc(8);
    head.writeUInt16LE(body.length, 6);
  }
  head.writeUInt16LE(tag >>> 16, 0);
  head.writeUInt16LE(tag & 0xffff, 2);
  head.write(vr, 4, 'latin1');
  return Buffer.concat([head, body]);
}

/** An item or delimiter header: (FFFE,xxxx) and a 32-bit length. */
export function itemHeader(element: 0xe000 | 0xe00d | 0xe0dd, length: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(element, 2);
  head.writeUInt32LE(length, 4);
  return head;
}

function encodeValue(vr: Vr, value: ElementValue): Buffer {
  if (Buffer.isBuffer(value)) return value.length % 2 ? Buffer.concat([value, Buffer.alloc(1)]) : value;
  if (vr === 'SQ') {
    const parts: Buffer[] = [];
    for (const item of value as readonly Dataset[]) {
      const body = encodeDataset(item);
      parts.push(itemHeader(0xe000, body.length), body);
    }
    return Buffer.concat(parts);
  }
  if (TEXT_VRS.has(vr)) {
    const joined = (value as readonly string[]).join('\\');
    const encoded = Buffer.from(joined, vr === 'UI' ? 'latin1' : 'utf8');
    return encoded.length % 2 ? Buffer.concat([encoded, Buffer.from(vr === 'UI' ? [0] : [0x20])]) : encoded;
  }
  const values = value as readonly number[];
  const size = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, AT: 4, UV: 8, SV: 8 }[vr as 'US'];
  if (!size) throw new TypeError(`no numeric encoding for VR ${vr}`);
  const out = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    const at = i * size;
    switch (vr) {
      case 'US': out.writeUInt16LE(v, at); break;
      case 'SS': out.writeInt16LE(v, at); break;
      case 'UL': out.writeUInt32LE(v, at); break;
      case 'SL': out.writeInt32LE(v, at); break;
      case 'FL': out.writeFloatLE(v, at); break;
      case 'FD': out.writeDoubleLE(v, at); break;
      case 'UV': out.writeBigUInt64LE(BigInt(v), at); break;
      case 'SV': out.writeBigInt64LE(BigInt(v), at); break;
      case 'AT':
        out.writeUInt16LE(v >>> 16, at);
        out.writeUInt16LE(v & 0xffff, at + 2);
        break;
      default: throw new TypeError(`no numeric encoding for VR ${vr}`);
    }
  });
  return out;
}

export const tagName = (tag: number) => `(${(tag >>> 16).toString(16).padStart(4, '0').toUpperCase()},${(tag & 0xffff).toString(16).padStart(4, '0').toUpperCase()})`;
