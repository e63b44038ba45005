import { LRUCache } from 'lru-cache';
import { Slide } from './slide.js';
import { DecodedTileCache } from './tile-cache.js';

interface Entry {
  slide: Promise<Slide>;
  users: number;
  evicted: boolean;
}

/**
 * Open slides (parsed directories and a file handle each), kept for reuse up
 * to `maxOpen`. A slide pushed out while requests are using it is closed when
 * the last of them finishes. Failed opens are not kept.
 */
export class SlidePool {
  private readonly open: LRUCache<string, Entry>;
  readonly tileCache: DecodedTileCache;

  constructor({ maxOpen, decodedCacheBytes }: { maxOpen: number; decodedCacheBytes: number }) {
    this.tileCache = new DecodedTileCache(decodedCacheBytes);
    this.open = new LRUCache<string, Entry>({
      max: Math.max(1, maxOpen),
      dispose: (entry) => {
        entry.evicted = true;
        if (entry.users === 0) void closeQuietly(entry);
      },
    });
  }

  /** Run `work` with the open slide at `path`, opening it if needed. */
  async use<T>(path: string, work: (slide: Slide) => Promise<T>): Promise<T> {
    let entry = this.open.get(path);
    if (!entry) {
      entry = { slide: Slide.open(path, { tileCache: this.tileCache }), users: 0, evicted: false };
      this.open.set(path, entry);
      entry.slide.catch(() => {
        if (this.open.peek(path) === entry) this.open.delete(path);
      });
    }
    entry.users++;
    try {
      return await work(await entry.slide);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void closeQuietly(entry);
    }
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map(closeQuietly));
  }

  get openCount(): number {
    return this.open.size;
  }
}

async function closeQuietly(entry: Entry): Promise<void> {
  try {
    await (await entry.slide).close();
  } catch {
    // a slide that failed to open has nothing to close
  }
}
