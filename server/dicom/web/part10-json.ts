/**
 * The data set of a DICOM file (explicit VR little endian, as every
 * published instance is written) as the DICOM JSON Model (PS3.18 F.2):
 * every attribute up to the Pixel Data, binary values as BulkDataURIs named
 * by their place in the data set (`00480105.0.00282000`, as toDicomJson
 * names them) and remembered as byte ranges of the file, so that a bulk data
 * request reads the file itself. The File Meta Information, group lengths,
 * the Pixel Data and its offset tables are left out (frames come from the
 * frames resource).
 */
import { elementHeader, hexTag, Tags, UNDEFINED_LENGTH, type Bytes, type ElementHeader } from '../../wsi/formats/dicom/elements.js';
import { tagKey, type JsonAttribute, type JsonDataset } from './dicom-json.js';

/** Where a binary value lies in the file. */
export interface BulkRange {
  offset: number;
  length: number;
}

export interface FileDataset {
  /** BulkDataURIs hold the value's path only; the caller makes them URLs (withBulkUris). */
  attributes: JsonDataset;
  bulk: Map<string, BulkRange>;
}

const BINARY = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const SINGLE_TEXT = new Set(['LT', 'ST', 'UT', 'UR']);
const TEXT = new Set(['AE', 'AS', 'CS', 'DA', 'DT', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT', 'DS', 'IS']);
const NUMBERS: Record<string, { size: number; read: (b: Buffer, at: number) => number }> = {
  US: { size: 2, read: (b, at) => b.readUInt16LE(at) },
  SS: { size: 2, read: (b, at) => b.readInt16LE(at) },
  UL: { size: 4, read: (b, at) => b.readUInt32LE(at) },
  SL: { size: 4, read: (b, at) => b.readInt32LE(at) },
  FL: { size: 4, read: (b, at) => b.readFloatLE(at) },
  FD: { size: 8, read: (b, at) => b.readDoubleLE(at) },
  SV: { size: 8, read: (b, at) => Number(b.readBigInt64LE(at)) },
  UV: { size: 8, read: (b, at) => Number(b.readBigUInt64LE(at)) },
};
const PIXEL_GROUP = Tags.PixelData >>> 16;
const DATASET_TRAILING_PADDING = 0xfffcfffc;

/**
 * The data set in `bytes` (the file from its first byte, at least up to the
 * Pixel Data) as DICOM JSON. Throws on a data set it cannot walk (implicit VR
 * is refused by the caller, which knows the transfer syntax).
 */
export function fileDataset(bytes: Buffer, path: string): FileDataset {
  const source: Bytes = { buffer: bytes, base: 0 };
  const bulk = new Map<string, BulkRange>();
  const utf8 = { value: false };
  const attributes: JsonDataset = {};
  let at = 132;
  while (at + 8 <= bytes.length) {
    const h = elementHeader(source, at, true);
    if (h.tag >>> 16 === PIXEL_GROUP || h.tag === DATASET_TRAILING_PADDING) break;
    at = element(source, h, '', attributes, bulk, utf8, path);
    if (h.tag === 0x0008_0005) utf8.value = (attributes['00080005']?.Value ?? []).includes('ISO_IR 192');
  }
  return { attributes, bulk };
}

/** Read the element whose header is `h` into `into` (unless it is File Meta or a group length); returns the offset after it. */
function element(source: Bytes, h: ElementHeader, prefix: string, into: JsonDataset, bulk: Map<string, BulkRange>, utf8: { value: boolean }, path: string): number {
  const key = tagKey(h.tag);
  const skip = h.tag >>> 16 === 0x0002 || (h.tag & 0xffff) === 0;
  if (h.vr === 'SQ' || (h.length === UNDEFINED_LENGTH && h.vr === 'UN')) {
    const items: JsonDataset[] = [];
    const end = h.length === UNDEFINED_LENGTH ? undefined : h.value + h.length;
    let at = h.value;
    while (end === undefined || at < end) {
      const item = elementHeader(source, at, true);
      if (item.tag === Tags.SequenceEnd) {
        at = item.value;
        break;
      }
      if (item.tag !== Tags.ItemStart) throw new Error(`${path}: expected an item of ${hexTag(h.tag)} at offset ${at}, found ${hexTag(item.tag)}`);
      const dataset: JsonDataset = {};
      const itemEnd = item.length === UNDEFINED_LENGTH ? undefined : item.value + item.length;
      at = item.value;
      while (itemEnd === undefined || at < itemEnd) {
        const inner = elementHeader(source, at, true);
        if (inner.tag === Tags.ItemEnd) {
          at = inner.value;
          break;
        }
        at = element(source, inner, `${prefix}${key}.${items.length}.`, dataset, bulk, utf8, path);
      }
      items.push(dataset);
    }
    if (!skip) into[key] = items.length ? { vr: 'SQ', Value: items } : { vr: 'SQ' };
    return at;
  }
  if (h.length === UNDEFINED_LENGTH) throw new Error(`${path}: element ${hexTag(h.tag)} (${h.vr}) has an undefined length`);
  const end = h.value + h.length;
  if (end > source.buffer.length) throw new Error(`${path}: element ${hexTag(h.tag)} runs past the header`);
  if (!skip) into[key] = value(source.buffer, h, `${prefix}${key}`, bulk, utf8.value);
  return end;
}

function value(bytes: Buffer, h: ElementHeader, at: string, bulk: Map<string, BulkRange>, utf8: boolean): JsonAttribute {
  const { vr } = h;
  if (h.length === 0) return { vr };
  const raw = bytes.subarray(h.value, h.value + h.length);
  if (BINARY.has(vr)) {
    bulk.set(at, { offset: h.value, length: h.length });
    return { vr, BulkDataURI: at };
  }
  const number = NUMBERS[vr];
  if (number) {
    const values: number[] = [];
    for (let i = 0; i + number.size <= raw.length; i += number.size) values.push(number.read(raw, i));
    return { vr, Value: values };
  }
  if (vr === 'AT') {
    const values: string[] = [];
    for (let i = 0; i + 4 <= raw.length; i += 4) values.push(tagKey(((raw.readUInt16LE(i) << 16) | raw.readUInt16LE(i + 2)) >>> 0));
    return { vr, Value: values };
  }
  if (!TEXT.has(vr)) {
    bulk.set(at, { offset: h.value, length: h.length });
    return { vr, BulkDataURI: at };
  }
  const text = vr === 'UI' ? raw.toString('latin1').replace(/\0+$/, '') : raw.toString(utf8 ? 'utf8' : 'latin1');
  const parts = SINGLE_TEXT.has(vr) ? [text.replace(/[\0 ]+$/, '')] : text.split('\\').map((v) => v.replace(/^[ ]+|[\0 ]+$/g, ''));
  if (parts.every((p) => p === '')) return { vr };
  if (vr === 'PN') {
    return {
      vr,
      Value: parts.map((p) => {
        if (p === '') return null;
        const [alphabetic, ideographic, phonetic] = p.split('=');
        return Object.fromEntries(Object.entries({ Alphabetic: alphabetic, Ideographic: ideographic, Phonetic: phonetic }).filter(([, v]) => v));
      }),
    };
  }
  if (vr === 'DS' || vr === 'IS') return { vr, Value: parts.map((p) => (p === '' ? null : Number(p))) };
  return { vr, Value: parts.map((p) => (p === '' ? null : p)) };
}

/** The attributes with each BulkDataURI (a path in the data set) made a URL by `url(path)`. */
export function withBulkUris(attributes: JsonDataset, url: (path: string) => string): JsonDataset {
  const out: JsonDataset = {};
  for (const [key, attribute] of Object.entries(attributes)) {
    if (attribute.BulkDataURI !== undefined) out[key] = { vr: attribute.vr, BulkDataURI: url(attribute.BulkDataURI) };
    else if (attribute.vr === 'SQ' && attribute.Value) out[key] = { vr: 'SQ', Value: (attribute.Value as JsonDataset[]).map((item) => withBulkUris(item, url)) };
    else out[key] = attribute;
  }
  return out;
}
