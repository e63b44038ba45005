/**
 * A 16-bit grey PNG written row by row, so that an image far larger than
 * memory can be produced strip by strip (sharp needs the whole image at once).
 * Rows are deflated as they come (filter type 0) and flushed as IDAT chunks;
 * the file carries its final name only once IEND is written.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import zlib from 'node:zlib';
import sharp from 'sharp';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

export class GreyPng16Writer {
  private readonly file: WriteStream;
  private readonly deflate = zlib.createDeflate({ level: 6 });
  private readonly pending: Promise<void>;
  private rowsWritten = 0;

  private constructor(
    private readonly path: string,
    readonly width: number,
    readonly height: number,
  ) {
    const file = createWriteStream(`${path}.partial`);
    // A write still in flight when the writer is aborted fails with the stream
    // destroyed; without a listener that error would end the process.
    file.on('error', () => undefined);
    const deflate = this.deflate;
    this.file = file;
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 16; // bit depth
    ihdr[9] = 0; // grey
    this.file.write(SIGNATURE);
    this.file.write(chunk('IHDR', ihdr));
    this.pending = (async () => {
      for await (const data of deflate as AsyncIterable<Buffer>) {
        if (!file.write(chunk('IDAT', data))) await once(file, 'drain');
      }
    })();
    this.pending.catch(() => undefined); // awaited in finish()
  }

  static open(path: string, width: number, height: number): GreyPng16Writer {
    return new GreyPng16Writer(path, width, height);
  }

  /** Append rows: `values` holds whole rows of `width` samples, 0–65535. */
  async writeRows(values: Uint16Array): Promise<void> {
    const rows = values.length / this.width;
    if (!Number.isInteger(rows) || this.rowsWritten + rows > this.height) throw new Error(`writeRows: ${values.length} samples are not whole rows that fit`);
    const stride = 1 + 2 * this.width;
    const out = Buffer.alloc(rows * stride);
    for (let r = 0; r < rows; r++) {
      const base = r * stride + 1; // filter byte 0
      const offset = r * this.width;
      for (let i = 0; i < this.width; i++) out.writeUInt16BE(values[offset + i]!, base + 2 * i);
    }
    this.rowsWritten += rows;
    if (!this.deflate.write(out)) await once(this.deflate, 'drain');
  }

  /** Close the stream and give the file its name; throws when rows are missing. */
  async finish(): Promise<void> {
    if (this.rowsWritten !== this.height) throw new Error(`finish: ${this.rowsWritten} of ${this.height} rows written`);
    this.deflate.end();
    await this.pending;
    this.file.end(chunk('IEND', Buffer.alloc(0)));
    await once(this.file, 'finish');
    await rename(`${this.path}.partial`, this.path);
  }

  /** Give up: remove the partial file. */
  async abort(): Promise<void> {
    this.deflate.destroy();
    if (!this.file.closed) {
      const closed = new Promise<void>((resolve) => this.file.once('close', () => resolve()));
      this.file.destroy();
      await closed;
    }
    await rm(`${this.path}.partial`, { force: true });
  }
}

/** A grey image's samples: 8-bit (scale 255) or 16-bit (scale 65535), alpha dropped. */
export interface GreySamples {
  width: number;
  height: number;
  data: Uint8Array | Uint16Array;
  scale: 255 | 65535;
}

/**
 * Read a one-channel image (with or without alpha) at its own bit depth.
 * sharp's default raw output is 8-bit sRGB, so 16-bit images are read in the
 * grey16 colour space; anything with colour channels is refused by the caller
 * from `colourChannels`.
 */
export async function readGreyImage(file: string): Promise<GreySamples & { colourChannels: number }> {
  const meta = await sharp(file, { limitInputPixels: false }).metadata();
  const colourChannels = (meta.channels ?? 0) - (meta.hasAlpha ? 1 : 0);
  const sixteen = meta.depth === 'ushort';
  if (colourChannels !== 1) return { width: meta.width ?? 0, height: meta.height ?? 0, data: new Uint8Array(0), scale: 255, colourChannels };
  const { data, info } = await sharp(file, { limitInputPixels: false })
    .toColourspace(sixteen ? 'grey16' : 'b-w')
    .raw(sixteen ? { depth: 'ushort' } : {})
    .toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const channels = info.channels;
  const all = sixteen ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)) : new Uint8Array(data.buffer, data.byteOffset, data.length);
  let samples = all;
  if (channels > 1) {
    samples = sixteen ? new Uint16Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) samples[i] = all[i * channels]!;
  }
  return { width: info.width, height: info.height, data: samples, scale: sixteen ? 65535 : 255, colourChannels };
}
