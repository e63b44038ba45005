import { LRUCache } from 'lru-cache';
import type { RgbImage } from './decode/pixels.js';

/**
 * Decoded source tiles, shared by all open slides and bounded by bytes. A
 * Deep Zoom tile with overlap, or a lower Deep Zoom level, needs several
 * stored tiles, and neighbouring requests need the same ones. Tiles being
 * decoded are shared too, so concurrent requests never decode a tile twice.
 */
export class DecodedTileCache {
  private readonly cache: LRUCache<string, RgbImage>;
  private readonly pending = new Map<string, Promise<RgbImage>>();

  constructor(maxBytes: number) {
    this.cache = new LRUCache<string, RgbImage>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (img) => Math.max(1, img.data.length),
    });
  }

  /**
   * The tiles for `keys`, in order. Those neither cached nor already being
   * decoded are handed to `decode` in one batch (by their index in `keys`).
   * Failures are not cached.
   */
  getMany(keys: string[], decode: (missing: number[]) => Promise<RgbImage[]>): Promise<RgbImage[]> {
    const results: (RgbImage | Promise<RgbImage>)[] = [];
    const missing: number[] = [];
    keys.forEach((key, i) => {
      const found = this.cache.get(key) ?? this.pending.get(key);
      if (found) results[i] = found;
      else missing.push(i);
    });
    if (missing.length > 0) {
      const batch = decode(missing);
      missing.forEach((index, j) => {
        const key = keys[index]!;
        const one = batch.then(
          (images) => {
            this.pending.delete(key);
            this.cache.set(key, images[j]!);
            return images[j]!;
          },
          (error: unknown) => {
            this.pending.delete(key);
            throw error;
          },
        );
        this.pending.set(key, one);
        results[index] = one;
      });
    }
    return Promise.all(results);
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cache.calculatedSize };
  }
}
