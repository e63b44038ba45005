/** Archives and masks made inside the tests of the challenge scorer. */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import sharp from 'sharp';
import tar from 'tar-stream';
import type { ExecutionContext } from 'ava';

/** A scratch folder removed after the test. */
export async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-scoring-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** Deflate (default) or store. */
  store?: boolean;
  /** Unix mode for the external attributes (e.g. 0o120777 for a symbolic link). */
  mode?: number;
}

/**
 * A ZIP written byte by byte, so that the tests can put in what a careful
 * archiver would refuse to write (names with "..", absolute names, links).
 */
export function zipBuffer(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const packed = entry.store ? entry.data : zlib.deflateRawSync(entry.data);
    const crc = zlib.crc32(entry.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // UTF-8 names
    local.writeUInt16LE(entry.store ? 0 : 8, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(entry.store ? 0 : 8, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((entry.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += local.length + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

export async function writeZip(file: string, entries: ZipEntry[]): Promise<string> {
  await writeFile(file, zipBuffer(entries));
  return file;
}

export interface TarEntry {
  name: string;
  data?: Buffer;
  type?: 'file' | 'symlink' | 'link' | 'directory';
  linkname?: string;
}

/** A tar (gzipped when the name ends in .gz) made with tar-stream. */
export async function writeTar(file: string, entries: TarEntry[]): Promise<string> {
  const pack = tar.pack();
  const done = file.endsWith('.gz') ? pipeline(pack, zlib.createGzip(), createWriteStream(file)) : pipeline(pack, createWriteStream(file));
  for (const entry of entries) {
    if (entry.type === 'symlink' || entry.type === 'link' || entry.type === 'directory') pack.entry({ name: entry.name, type: entry.type, linkname: entry.linkname });
    else pack.entry({ name: entry.name }, entry.data ?? Buffer.alloc(0));
  }
  pack.finalize();
  await done;
  return file;
}

/** A width × height mask with `value` inside the rectangle [x0, x1) × [y0, y1) of mask pixels, 0 elsewhere. */
export function rectangleMask(width: number, height: number, rectangles: { x0: number; y0: number; x1: number; y1: number; value: number }[]): Uint8Array {
  const data = new Uint8Array(width * height);
  for (const { x0, y0, x1, y1, value } of rectangles) {
    for (let y = Math.max(0, y0); y < Math.min(height, y1); y++) data.fill(value, y * width + Math.max(0, x0), y * width + Math.min(width, x1));
  }
  return data;
}

/** An 8-bit grey PNG of the mask. */
export function pngOf(data: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(data, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** A level-0 rectangle as a GeoJSON Polygon (one ring, closed). */
export function rectanglePolygon(x0: number, y0: number, x1: number, y1: number): number[][][] {
  return [
    [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
      [x0, y0],
    ],
  ];
}

/**
 * A PNG written by hand: grey (colour type 0) or palette (3) samples of
 * `depth` bits packed most significant first, every row with filter 0; a
 * palette image gets a grey palette of 2^depth entries.
 */
export function packedPng(width: number, height: number, depth: 1 | 2 | 4 | 8, colourType: 0 | 3, samples: Uint8Array): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = depth;
  header[9] = colourType;
  const rowBytes = Math.ceil((width * depth) / 8);
  const rows = Buffer.alloc(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      rows[y * (rowBytes + 1) + 1 + (bit >> 3)]! |= samples[y * width + x]! << (8 - depth - (bit & 7));
    }
  }
  const palette = Buffer.alloc(3 * (1 << depth));
  for (let i = 0; i < 1 << depth; i++) palette.fill(Math.round((255 * i) / ((1 << depth) - 1)), 3 * i, 3 * i + 3);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    ...(colourType === 3 ? [chunk('PLTE', palette)] : []),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
