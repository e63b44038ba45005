import { open, type FileHandle } from 'node:fs/promises';
import { corrupt, WsiError } from '../errors.js';
import { readCached } from './page-cache.js';

/** Positional reads from a slide file that never read past its end. */
export class RandomAccessFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<RandomAccessFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new WsiError('not_found', `${path}: no such file`, { cause: error });
      throw new WsiError('unsupported_format', `${path}: cannot open (${code ?? (error as Error).message})`, { cause: error });
    }
    const { size } = await handle.stat();
    return new RandomAccessFile(path, handle, size);
  }

  /** Exactly `length` bytes from `offset`, or a `corrupt` error naming `what` was being read. */
  async read(offset: number, length: number, what: string): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw corrupt(`${this.path}: ${what} has an invalid position (offset ${offset}, length ${length})`);
    }
    if (offset + length > this.size) {
      throw corrupt(`${this.path}: ${what} lies past the end of the file (bytes ${offset}–${offset + length} of ${this.size}); the file is truncated or damaged`);
    }
    if (length === 0) return Buffer.alloc(0);
    const cached = readCached(this.handle.fd, offset, length);
    if (cached) return cached;
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buffer, done, length - done, offset + done);
      if (bytesRead === 0) throw corrupt(`${this.path}: ${what}: unexpected end of file`);
      done += bytesRead;
    }
    return buffer;
  }

  /** Up to `buffer.length` bytes from `offset` into `buffer` (fewer only at the end of the file); the bytes read. */
  async readInto(buffer: Buffer, offset: number): Promise<Buffer> {
    let done = 0;
    while (done < buffer.length && offset + done < this.size) {
      const { bytesRead } = await this.handle.read(buffer, done, Math.min(buffer.length, this.size - offset) - done, offset + done);
      if (bytesRead === 0) throw corrupt(`${this.path}: unexpected end of file at ${offset + done} of ${this.size}`);
      done += bytesRead;
    }
    return buffer.subarray(0, done);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
