import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A catalog checksum as lower-case hex, or null when it is missing or not a SHA-256. */
export function normalizeSha256(value: string | null | undefined): string | null {
  if (!value) return null;
  const lower = value.trim().toLowerCase();
  return SHA256_HEX.test(lower) ? lower : null;
}

/**
 * SHA-256 of files the catalog holds no checksum for (the scrubbed
 * annotation XMLs: small, so hashing them when first asked is cheaper than a
 * migration). Remembered by file identity (path, inode, size, mtime), so a
 * file is read once per process unless it changes.
 */
export class FileChecksums {
  private readonly known = new LRUCache<string, string>({ max: 50_000 });

  /** The file's SHA-256 as lower-case hex; `handle` is read (positionally) instead of opening the file again. */
  async sha256(file: string, stats: Stats, handle?: FileHandle): Promise<string> {
    const identity = `${file}\0${stats.ino}\0${stats.size}\0${stats.mtimeMs}`;
    const cached = this.known.get(identity);
    if (cached !== undefined) return cached;
    const own = handle ? undefined : await open(file, 'r');
    try {
      const source = (handle ?? own)!;
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, stats.size)));
      for (let position = 0; position < stats.size; ) {
        const { bytesRead } = await source.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
      const hex = hash.digest('hex');
      this.known.set(identity, hex);
      return hex;
    } finally {
      await own?.close();
    }
  }
}
