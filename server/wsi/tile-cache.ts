import { LRUCache } from 'lru-cache';
import type { RgbImage } from './decode/pixels.js';

/**
 * Decoded source tiles, shared by all open slides and bounded by bytes. A
 * Deep Zoom tile with overlap, or a lower Deep Zoom level, needs several
 * stored tiles, and neighbouring requests need the same ones.
 */
export class DecodedTileCache {
  private readonly cache: LRUCache<string, RgbImage>;
  private readonly pending = new Map<string, Promise<RgbImage>>();

  constructor(maxBytes: number) {
    this.cache = new LRUCache<string, RgbImage>({ maxSize: Math.max(1, maxBytes), sizeCalculation: (img) => Math.max(1, img.data.length) });
  }

  /** The cached tile, or the result of `decode` (run once however many callers ask at the same time). Failures are not cached. */
  get(key: string, decode: () => Promise<RgbImage>): Promise<RgbImage> {
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit);
    const running = this.pending.get(key);
    if (running) return running;
    const work = decode().then(
      (img) => {
        this.pending.delete(key);
        this.cache.set(key, img);
        return img;
      },
      (error: unknown) => {
        this.pending.delete(key);
        throw error;
      },
    );
    this.pending.set(key, work);
    return work;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cache.calculatedSize };
  }
}
