import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
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
  private readonly renderLimit: LimitFunction;

  /** `renderConcurrency` 0 means as many as libuv has threads (UV_THREADPOOL_SIZE, default 4). */
  constructor({ maxOpen, decodedCacheBytes, renderConcurrency = 0 }: { maxOpen: number; decodedCacheBytes: number; renderConcurrency?: number }) {
    this.tileCache = new DecodedTileCache(decodedCacheBytes);
    this.renderLimit = pLimit(renderConcurrency > 0 ? renderConcurrency : Number(process.env.UV_THREADPOOL_SIZE) || 4);
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
      entry = { slide: Slide.open(path, { tileCache: this.tileCache, renderLimit: this.renderLimit }), users: 0, evicted: false };
      // Every overview level of the Deep Zoom pyramid is drawn from the smallest stored
      // level: decode it now, in the background, so the viewer's first tiles find it ready.
      entry.slide.then((slide) => slide.warmOverview()).catch(() => undefined);
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
