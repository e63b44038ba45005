import { open } from 'node:fs/promises';

/**
 * A small writer of DICOM whole-slide instances for the reader's tests:
 * synthetic series too large to keep as fixtures (a hundred thousand frames,
 * written with holes where frames are never read), the organisations and
 * encodings the real fixtures lack (TILED_SPARSE, Extended Offset Table,
 * Implicit VR, concatenations), from a handful of attributes.
 */

export interface Element {
  tag: number;
  vr: string;
  value: Buffer | Element[][];
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

const text = (s: string, pad = ' ') => Buffer.from(s.length % 2 ? s + pad : s, 'latin1');
export const ui = (tag: number, uid: string): Element => ({ tag, vr: 'UI', value: text(uid, '\0') });
export const cs = (tag: number, vr: string, value: string): Element => ({ tag, vr, value: text(value) });
export const us = (tag: number, ...values: number[]): Element => ({ tag, vr: 'US', value: Buffer.from(new Uint16Array(values).buffer) });
export const ul = (tag: number, ...values: number[]): Element => ({ tag, vr: 'UL', value: Buffer.from(new Uint32Array(values).buffer) });
export const sl = (tag: number, ...values: number[]): Element => ({ tag, vr: 'SL', value: Buffer.from(new Int32Array(values).buffer) });
export const sq = (tag: number, items: Element[][]): Element => ({ tag, vr: 'SQ', value: items });

function encodeItems(items: Element[][], explicit: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    const body = encode(item, explicit);
    const head = Buffer.alloc(8);
    head.writeUInt16LE(0xfffe, 0);
    head.writeUInt16LE(0xe000, 2);
    head.writeUInt32LE(body.length, 4);
    parts.push(head, body);
  }
  return Buffer.concat(parts);
}

/** Elements in the order given (the caller sorts them), every length defined. */
export function encode(elements: Element[], explicit: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const { tag, vr, value } of elements) {
    const body = Buffer.isBuffer(value) ? value : encodeItems(value, explicit);
    let head: Buffer;
    if (!explicit) {
      head = Buffer.alloc(8);
      head.writeUInt32LE(body.length, 4);
    } else if (LONG_VRS.has(vr)) {
      head = Buffer.alloc(12);
      head.write(vr, 4, 'latin1');
      head.writeUInt32LE(body.length, 8);
    } else {
      head = Buffer.alloc(8);
      head.write(vr, 4, 'latin1');
      head.writeUInt16LE(body.length, 6);
    }
    head.writeUInt16LE(tag >>> 16, 0);
    head.writeUInt16LE(tag & 0xffff, 2);
    parts.push(head, body);
  }
  return Buffer.concat(parts);
}

export interface SyntheticWsi {
  transferSyntax: string;
  width: number;
  height: number;
  tile: number;
  frames: number;
  photometric?: string;
  samples?: number;
  bitsAllocated?: number;
  planar?: number;
  organization?: 'TILED_FULL' | 'TILED_SPARSE';
  imageType?: string;
  sopClass?: string;
  seriesUid?: string;
  opticalPaths?: string[];
  /** TILED_SPARSE: each frame's 1-based position in the Total Pixel Matrix, and its optical path. */
  positions?: { column: number; row: number; path?: string }[];
  concatenation?: { uid: string; number: number; total: number; frameOffset: number };
  explicit?: boolean;
  /** Native pixel data, or encapsulated frames: a buffer, or a number of bytes left as a hole (never read). */
  pixels: { native: Buffer } | { fragments: (Buffer | number)[][]; table: 'basic' | 'extended' | 'none' };
}

const WSI = '1.2.840.10008.5.1.4.1.1.77.1.6';

/** Write one instance; frames given as hole sizes are not written (the file is sparse there). Returns the file's size. */
export async function writeWsi(path: string, spec: SyntheticWsi): Promise<number> {
  const explicit = spec.explicit ?? true;
  const sopClass = spec.sopClass ?? WSI;
  const meta = [ui(0x00020002, sopClass), ui(0x00020003, '1.2.3.4.5'), ui(0x00020010, spec.transferSyntax)];
  const metaBody = encode([{ tag: 0x00020001, vr: 'OB', value: Buffer.from([0, 1]) }, ...meta], true);
  const photometric = spec.photometric ?? 'RGB';
  const samples = spec.samples ?? (photometric.startsWith('MONOCHROME') ? 1 : 3);
  const bits = spec.bitsAllocated ?? 8;
  const dataset: Element[] = [
    cs(0x00080008, 'CS', `ORIGINAL\\PRIMARY\\${spec.imageType ?? 'VOLUME'}\\NONE`),
    ui(0x00080016, sopClass),
    ui(0x0020000e, spec.seriesUid ?? '1.2.3.4.6'),
    cs(0x00200013, 'IS', '1'),
    ...(spec.concatenation
      ? [ui(0x00209161, spec.concatenation.uid), us(0x00209162, spec.concatenation.number), us(0x00209163, spec.concatenation.total), ul(0x00209228, spec.concatenation.frameOffset)]
      : []),
    cs(0x00209311, 'CS', spec.organization ?? 'TILED_FULL'),
    us(0x00280002, samples),
    cs(0x00280004, 'CS', photometric),
    ...(samples === 3 ? [us(0x00280006, spec.planar ?? 0)] : []),
    cs(0x00280008, 'IS', String(spec.frames)),
    us(0x00280010, spec.tile),
    us(0x00280011, spec.tile),
    us(0x00280100, bits),
    us(0x00280101, bits),
    us(0x00280102, bits - 1),
    us(0x00280103, 0),
    ul(0x00480006, spec.width),
    ul(0x00480007, spec.height),
    sq(0x00480105, (spec.opticalPaths ?? ['1']).map((id) => [cs(0x00480106, 'SH', id)])),
    ul(0x00480303, 1),
    sq(0x52009229, [[sq(0x00289110, [[cs(0x00280030, 'DS', '0.00025\\0.00025')]])]]),
  ];
  if (spec.positions) {
    dataset.push(
      sq(
        0x52009230,
        spec.positions.map((p) => [
          ...(p.path ? [sq(0x00480207, [[cs(0x00480106, 'SH', p.path)]])] : []),
          sq(0x0048021a, [[sl(0x0048021e, p.column), sl(0x0048021f, p.row)]]),
        ]),
      ),
    );
  }
  const parts: (Buffer | number)[] = [];
  if ('native' in spec.pixels) {
    dataset.push({ tag: 0x7fe00010, vr: bits === 16 ? 'OW' : 'OB', value: spec.pixels.native });
    parts.push(encode(dataset, explicit));
  } else {
    const frames = spec.pixels.fragments;
    const frameSizes = frames.map((f) => f.reduce<number>((n, part) => n + 8 + (typeof part === 'number' ? part : part.length), 0));
    const offsets: number[] = [];
    frameSizes.reduce((at, size) => (offsets.push(at), at + size), 0);
    if (spec.pixels.table === 'extended') {
      dataset.push({ tag: 0x7fe00001, vr: 'OV', value: Buffer.from(new BigUint64Array(offsets.map(BigInt)).buffer) });
      dataset.push({
        tag: 0x7fe00002,
        vr: 'OV',
        value: Buffer.from(new BigUint64Array(frames.map((f) => BigInt(typeof f[0] === 'number' ? f[0] : f[0]!.length))).buffer),
      });
    }
    parts.push(encode(dataset, explicit));
    const pixelHead = Buffer.alloc(explicit ? 12 : 8);
    pixelHead.writeUInt16LE(0x7fe0, 0);
    pixelHead.writeUInt16LE(0x0010, 2);
    if (explicit) {
      pixelHead.write('OB', 4, 'latin1');
      pixelHead.writeUInt32LE(0xffffffff, 8);
    } else pixelHead.writeUInt32LE(0xffffffff, 4);
    const bot = spec.pixels.table === 'basic' ? Buffer.from(new Uint32Array(offsets).buffer) : Buffer.alloc(0);
    parts.push(pixelHead, item(bot.length), bot);
    for (const frame of frames) for (const part of frame) parts.push(item(typeof part === 'number' ? part : part.length), part);
    parts.push(Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]));
  }
  const head = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), encode([ul(0x00020000, metaBody.length)], true), metaBody]);
  const handle = await open(path, 'w');
  try {
    let at = 0;
    for (const part of [head, ...parts]) {
      if (typeof part === 'number') at += part;
      else {
        await handle.write(part, 0, part.length, at);
        at += part.length;
      }
    }
    await handle.truncate(at);
    return at;
  } finally {
    await handle.close();
  }
}

function item(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(0xe000, 2);
  b.writeUInt32LE(length, 4);
  return b;
}
