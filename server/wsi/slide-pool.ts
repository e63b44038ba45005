import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
import { Slide } from './slide.js';
import { DecodedTileCache } from './tile-cache.js';

interface Entry {
  slide: Slide;
  users: number;
  evicted: boolean;
}

/**
 * Open slides (parsed directories and a file handle each), kept for reuse up
 * to `maxOpen`. A slide pushed out while requests are using it is closed when
 * the last of them finishes. A file that fails to open takes no place.
 */
export class SlidePool {
  private readonly open: LRUCache<string, Entry>;
  private readonly opening = new Map<string, Promise<Entry>>();
  readonly tileCache: DecodedTileCache;
  private readonly renderLimit: LimitFunction;

  private readonly maxRenderSourcePixels: number | undefined;

  /**
   * `renderConcurrency` 0 means as many as libuv has threads (UV_THREADPOOL_SIZE, default 4);
   * `maxRenderSourcePixels` bounds every render of every slide (see OpenSlideOptions).
   */
  constructor({ maxOpen, decodedCacheBytes, renderConcurrency = 0, maxRenderSourcePixels }: { maxOpen: number; decodedCacheBytes: number; renderConcurrency?: number; maxRenderSourcePixels?: number }) {
    this.tileCache = new DecodedTileCache(decodedCacheBytes);
    this.renderLimit = pLimit(renderConcurrency > 0 ? renderConcurrency : renderThreads());
    this.maxRenderSourcePixels = maxRenderSourcePixels;
    this.open = new LRUCache<string, Entry>({
      max: Math.max(1, maxOpen),
      dispose: (entry) => {
        entry.evicted = true;
        if (entry.users === 0) void closeQuietly(entry.slide);
      },
    });
  }

  /** Run `work` with the open slide at `path`, opening it if needed. */
  async use<T>(path: string, work: (slide: Slide) => Promise<T>): Promise<T> {
    const entry = this.open.get(path) ?? (await this.openEntry(path));
    entry.users++;
    try {
      return await work(entry.slide);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void closeQuietly(entry.slide);
    }
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map((entry) => closeQuietly(entry.slide)));
  }

  get openCount(): number {
    return this.open.size;
  }

  /** One open per file however many requests arrive together. */
  private openEntry(path: string): Promise<Entry> {
    let opening = this.opening.get(path);
    if (!opening) {
      opening = Slide.open(path, { tileCache: this.tileCache, renderLimit: this.renderLimit, maxRenderSourcePixels: this.maxRenderSourcePixels })
        .then((slide) => {
          const entry: Entry = { slide, users: 0, evicted: false };
          this.open.set(path, entry);
          // Every overview level of the Deep Zoom pyramid is drawn from the smallest stored
          // level: decode it now, in the background, so the viewer's first tiles find it ready.
          slide.warmOverview().catch(() => undefined);
          return entry;
        })
        .finally(() => this.opening.delete(path));
      this.opening.set(path, opening);
    }
    return opening;
  }
}

/** The threads of libuv's pool, which decodes and file reads share (UV_THREADPOOL_SIZE, default 4). */
export function renderThreads(): number {
  return Number(process.env.UV_THREADPOOL_SIZE) || 4;
}

async function closeQuietly(slide: Slide): Promise<void> {
  try {
    await slide.close();
  } catch {
    // already closed
  }
}
