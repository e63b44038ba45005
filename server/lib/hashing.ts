import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface HashFileOptions {
  /** Only the first this many bytes (default: the whole file). */
  bytes?: number;
  /** Told the size of each chunk as it is hashed. */
  onChunk?: (bytes: number) => void;
}

/** A file's SHA-256 as lower-case hex, read as a stream. */
export async function sha256File(file: string, options: HashFileOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  await hashFileInto(hash, file, options);
  return hash.digest('hex');
}

/** Feed a file (or its first `bytes` bytes) into a hash that may already hold other data or take more. */
export async function hashFileInto(hash: Hash, file: string, { bytes = Infinity, onChunk }: HashFileOptions = {}): Promise<void> {
  if (bytes <= 0) return;
  const stream = createReadStream(file, { highWaterMark: 4 * 1024 * 1024, ...(Number.isFinite(bytes) ? { end: bytes - 1 } : {}) });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    onChunk?.(chunk.length);
  }
}
