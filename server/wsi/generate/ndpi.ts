/**
 * A synthetic Hamamatsu NDPI, laid out as NanoZoomer scanners write it, so
 * that OpenSlide reads it as vendor `hamamatsu`:
 *
 * - classic little-endian TIFF with NDPI's 64-bit extension: the header's
 *   offset to the first directory and each directory's offset to the next are
 *   8 bytes, and each directory is followed by one 32-bit word per entry
 *   holding the high bits of its value (all zero below 4 GiB);
 * - every image is one JPEG strip written before its directory (OpenSlide
 *   restores the high bits of 32-bit offsets on that assumption): the levels,
 *   largest first, each 4× smaller, then the macro;
 * - a level's strip is one baseline JPEG (YCbCr 4:4:4) with a restart marker
 *   after every `restartInterval` MCUs, which divides a row of MCUs; its
 *   frame header holds 0 for a side past 65,535 pixels. Tag 65426
 *   (McuStarts) lists where each restart interval begins;
 * - Hamamatsu's private tags: 65420 (format flag), 65421 (source lens: the
 *   level's magnification, -1 for the macro), 65422/65423 (offsets from the
 *   slide's centre, nm), 65424 (focal plane), 65427 (reference), 65442
 *   (scanner serial number) and 65449 (a CR LF separated property map with
 *   the creation date), all fake and derived from the seed.
 */
import { open, type FileHandle } from 'node:fs/promises';
import sharp from 'sharp';
import { BaselineJpegEncoder, MCU_SIDE } from './baseline-jpeg.js';
import type { Identity } from './identity.js';
import { renderMacro, type Canvas } from './label.js';
import { MPP, OBJECTIVE_POWER, type LevelInfo, type SlideSettings } from './slide-settings.js';
import type { WriteContext } from './svs-images.js';
import { mulberry32, type TissueRenderer } from './tissue.js';

/** What an NDPI is drawn from. */
export interface NdpiContent {
  settings: SlideSettings;
  renderer: TissueRenderer;
  identity: Identity;
  levels: LevelInfo[];
  label: Canvas;
}

/** The fake identifying values an NDPI carries, for the ground truth. */
export interface NdpiIdentity {
  serial: string;
  created: string;
  reference: string;
}

const TYPE = { BYTE: 1, ASCII: 2, SHORT: 3, LONG: 4, RATIONAL: 5, SLONG: 9, FLOAT: 11 } as const;
type Entry = [tag: number, type: number, values: number[] | string];

/** Bytes of strip kept before a write. */
const FLUSH_BYTES = 4 * 1024 * 1024;

export function ndpiIdentity(seed: number, id: Identity): NdpiIdentity {
  const rand = mulberry32(seed ^ 0x5bd1e995);
  const [month, day, year] = id.fields.Date!.split('/');
  return { serial: String(100000 + Math.floor(rand() * 900000)), created: `20${year}/${month}/${day}`, reference: id.barcode };
}

/** The restart interval used for a level: the largest divisor of its MCUs per row that is at most the one asked for. */
export function restartIntervalFor(width: number, asked: number): number {
  const mcus = Math.ceil(width / MCU_SIDE);
  for (let r = Math.min(asked, mcus); r > 1; r--) if (mcus % r === 0) return r;
  return 1;
}

/** Chunks (restart intervals and the macro) the file is written in, for progress. */
export function ndpiChunkCount(levels: LevelInfo[], restartInterval: number): number {
  return levels.reduce((sum, l) => sum + Math.ceil(l.height / MCU_SIDE) * (Math.ceil(l.width / MCU_SIDE) / restartIntervalFor(l.width, restartInterval)), 0) + 1;
}

export async function writeNdpi(file: string, content: NdpiContent, context: WriteContext): Promise<NdpiIdentity> {
  const { settings: s, identity: id } = content;
  const fake = ndpiIdentity(s.seed, id);
  const rand = mulberry32(s.seed ^ 0x68e31da4);
  const xOffset = Math.round((rand() - 0.5) * 20_000_000);
  const yOffset = Math.round((rand() - 0.5) * 10_000_000);
  const propertyMap = [
    `Created=${fake.created}`,
    `Updated=${fake.created}`,
    'Product=C13210-01',
    `NDP.S/N=${fake.serial}`,
    `Macro.S/N=${fake.serial}`,
    'system.version=1.0',
    `Objective.Lens.Magnificant=${OBJECTIVE_POWER}`,
    '',
  ].join('\r\n');
  const dateTime = `${fake.created.replaceAll('/', ':')} 10:11:12`;
  const common = (lens: number, xy: boolean): Entry[] => [
    [271, TYPE.ASCII, 'Hamamatsu'],
    [272, TYPE.ASCII, 'C13210-01'],
    [305, TYPE.ASCII, 'NDP.scan 3.2.15'],
    [306, TYPE.ASCII, dateTime],
    [65420, TYPE.SHORT, [1]],
    [65421, TYPE.FLOAT, [lens]],
    [65422, TYPE.SLONG, [xy ? xOffset : 0]],
    [65423, TYPE.SLONG, [xy ? yOffset : 0]],
    [65427, TYPE.ASCII, fake.reference],
    [65442, TYPE.ASCII, fake.serial],
    [65449, TYPE.ASCII, propertyMap],
  ];

  const writer = await NdpiWriter.create(file, s.ndpiDataOffset);
  try {
    for (const level of content.levels) {
      context.signal?.throwIfAborted();
      const R = restartIntervalFor(level.width, s.restartInterval);
      const strip = await writer.beginStrip();
      const mcuStarts = await writeLevelStrip(writer, content, level, R, context);
      const pixelsPerCm = 10_000 / (MPP * level.downsample);
      await writer.endImage(strip, [
        ...common(OBJECTIVE_POWER / level.downsample, true),
        [256, TYPE.LONG, [level.width]],
        [257, TYPE.LONG, [level.height]],
        [258, TYPE.SHORT, [8, 8, 8]],
        [259, TYPE.SHORT, [7]],
        [262, TYPE.SHORT, [6]],
        [277, TYPE.SHORT, [3]],
        [278, TYPE.LONG, [level.height]],
        [282, TYPE.RATIONAL, [pixelsPerCm]],
        [283, TYPE.RATIONAL, [pixelsPerCm]],
        [296, TYPE.SHORT, [3]],
        [530, TYPE.SHORT, [1, 1]],
        [65424, TYPE.SLONG, [0]],
        [65426, TYPE.LONG, mcuStarts],
      ]);
    }
    context.signal?.throwIfAborted();
    const macro = renderMacro(content.renderer, content.label);
    const jpeg = await sharp(macro.data, { raw: { width: macro.width, height: macro.height, channels: 3 } })
      .jpeg({ quality: s.quality, optimiseCoding: false, chromaSubsampling: '4:2:0' })
      .toBuffer();
    const strip = await writer.beginStrip();
    await writer.append(jpeg);
    context.chunkWritten();
    await writer.endImage(strip, [
      ...common(-1, false),
      [256, TYPE.LONG, [macro.width]],
      [257, TYPE.LONG, [macro.height]],
      [258, TYPE.SHORT, [8, 8, 8]],
      [259, TYPE.SHORT, [7]],
      [262, TYPE.SHORT, [6]],
      [277, TYPE.SHORT, [3]],
      [278, TYPE.LONG, [macro.height]],
      [282, TYPE.RATIONAL, [10_000 / (MPP * 60)]],
      [283, TYPE.RATIONAL, [10_000 / (MPP * 60)]],
      [296, TYPE.SHORT, [3]],
      [530, TYPE.SHORT, [2, 2]],
    ]);
    await writer.close();
  } catch (error) {
    await writer.close().catch(() => undefined);
    throw error;
  }
  return fake;
}

/** One level's JPEG strip, band of MCUs by band; returns McuStarts (offsets of each interval in the strip). */
async function writeLevelStrip(writer: NdpiWriter, content: NdpiContent, level: LevelInfo, R: number, context: WriteContext): Promise<number[]> {
  const { width, height } = level;
  const { width: W, height: H, quality } = content.settings;
  const encoder = new BaselineJpegEncoder(quality);
  const mcusAcross = Math.ceil(width / MCU_SIDE);
  const paddedWidth = mcusAcross * MCU_SIDE;
  const bands = Math.ceil(height / MCU_SIDE);
  const stride = paddedWidth * 3;
  const band = Buffer.alloc(stride * MCU_SIDE);
  const rendered = Buffer.alloc(width * MCU_SIDE * 3);
  const scaleX = W / width;
  const scaleY = H / height;
  const header = encoder.header(width, height, R);
  const mcuStarts: number[] = [];
  let pending: Buffer[] = [header];
  let pendingBytes = header.length;
  let position = header.length;
  let count = 0;
  let background: Buffer | undefined;
  for (let b = 0; b < bands; b++) {
    context.signal?.throwIfAborted();
    const y = b * MCU_SIDE;
    const rows = Math.min(MCU_SIDE, height - y);
    const region = { x: 0, y, width, height: rows, scaleX, scaleY };
    const allBackground = content.renderer.regionKind(region) === 'background';
    if (!allBackground || !background) {
      content.renderer.render(region, rendered);
      // Pad to whole MCUs: the last column and row repeated.
      for (let r = 0; r < MCU_SIDE; r++) {
        const from = Math.min(r, rows - 1) * width * 3;
        rendered.copy(band, r * stride, from, from + width * 3);
        for (let x = width; x < paddedWidth; x++) rendered.copy(band, r * stride + x * 3, from + (width - 1) * 3, from + width * 3);
      }
    }
    for (let m = 0; m < mcusAcross; m += R) {
      let data: Buffer;
      if (allBackground) {
        // Every background interval is alike (and decodes alike: each starts afresh after its marker).
        background ??= encoder.interval(band, stride, 0, R);
        data = background;
      } else {
        data = encoder.interval(band, stride, m * MCU_SIDE, R);
      }
      if (count > 0) {
        pending.push(Buffer.from([0xff, 0xd0 + ((count - 1) % 8)]));
        position += 2;
        pendingBytes += 2;
      }
      mcuStarts.push(position);
      pending.push(data);
      position += data.length;
      pendingBytes += data.length;
      count++;
      context.chunkWritten();
    }
    if (pendingBytes >= FLUSH_BYTES) {
      await writer.append(Buffer.concat(pending));
      pending = [];
      pendingBytes = 0;
    }
  }
  pending.push(Buffer.from([0xff, 0xd9]));
  await writer.append(Buffer.concat(pending));
  return mcuStarts;
}

/** Sequential writer of NDPI images: strip, then out-of-line values, then the directory, each linked from the one before. */
class NdpiWriter {
  /** Where the previous link to the next directory (8 bytes) lies: the header's at first. */
  private link = 4;

  private constructor(
    private readonly handle: FileHandle,
    private position: number,
  ) {}

  /** A new file with its header; the first strip goes at `start` (bytes between are a hole). */
  static async create(file: string, start: number): Promise<NdpiWriter> {
    const handle = await open(file, 'w');
    const header = Buffer.alloc(16);
    header.write('II', 0, 'latin1');
    header.writeUInt16LE(42, 2);
    await handle.write(header, 0, 16, 0);
    return new NdpiWriter(handle, Math.max(16, start));
  }

  beginStrip(): Promise<number> {
    return Promise.resolve(this.position);
  }

  async append(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.position + done);
      done += bytesWritten;
    }
    this.position += bytes.length;
  }

  /** The image's directory, after its strip (from `stripStart` to here) and its values. */
  async endImage(stripStart: number, entries: Entry[]): Promise<void> {
    const all: Entry[] = [...entries, [273, TYPE.LONG, [stripStart % 2 ** 32]], [279, TYPE.LONG, [this.position - stripStart]]];
    all.sort((a, b) => a[0] - b[0]);
    const encoded = all.map(([tag, type, values]) => ({ tag, type, ...encodeValues(type, values) }));
    // Values too long for the entry go first, word-aligned.
    if (this.position % 2) await this.append(Buffer.alloc(1));
    // Offsets as 64-bit numbers: the entry keeps the low 32 bits, the word after the directory the high ones.
    const offsets = new Map<number, number>([[273, stripStart]]);
    for (const e of encoded) {
      if (e.bytes.length <= 4) continue;
      offsets.set(e.tag, this.position);
      await this.append(e.bytes.length % 2 ? Buffer.concat([e.bytes, Buffer.alloc(1)]) : e.bytes);
    }
    const ifdAt = this.position;
    const ifd = Buffer.alloc(2 + all.length * 12 + 8 + all.length * 4);
    ifd.writeUInt16LE(all.length, 0);
    encoded.forEach((e, i) => {
      const at = 2 + i * 12;
      ifd.writeUInt16LE(e.tag, at);
      ifd.writeUInt16LE(e.type, at + 2);
      ifd.writeUInt32LE(e.count, at + 4);
      const offset = offsets.get(e.tag);
      if (offset === undefined) e.bytes.copy(ifd, at + 8);
      else ifd.writeUInt32LE(offset % 2 ** 32, at + 8);
      ifd.writeUInt32LE(offset === undefined ? 0 : Math.floor(offset / 2 ** 32), 2 + all.length * 12 + 8 + i * 4);
    });
    await this.append(ifd);
    const link = Buffer.alloc(8);
    link.writeBigUInt64LE(BigInt(ifdAt));
    await this.handle.write(link, 0, 8, this.link);
    this.link = ifdAt + 2 + all.length * 12;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function encodeValues(type: number, values: number[] | string): { count: number; bytes: Buffer } {
  if (typeof values === 'string') {
    const bytes = Buffer.from(`${values}\0`, 'latin1');
    return { count: bytes.length, bytes };
  }
  const size = type === TYPE.SHORT ? 2 : type === TYPE.RATIONAL ? 8 : type === TYPE.BYTE ? 1 : 4;
  const bytes = Buffer.alloc(Math.max(4, values.length * size));
  values.forEach((v, i) => {
    if (type === TYPE.SHORT) bytes.writeUInt16LE(v, i * 2);
    else if (type === TYPE.LONG) bytes.writeUInt32LE(v, i * 4);
    else if (type === TYPE.SLONG) bytes.writeInt32LE(v, i * 4);
    else if (type === TYPE.FLOAT) bytes.writeFloatLE(v, i * 4);
    else if (type === TYPE.RATIONAL) {
      bytes.writeUInt32LE(Math.round(v * 1000), i * 8);
      bytes.writeUInt32LE(1000, i * 8 + 4);
    } else bytes.writeUInt8(v, i);
  });
  return { count: values.length, bytes: values.length * size < 4 ? bytes : bytes.subarray(0, values.length * size) };
}
