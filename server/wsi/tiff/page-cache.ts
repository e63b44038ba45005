import { loadAddon } from '../native-addon.js';

interface PageCacheAddon {
  readCached(fd: number, position: number, length: number): Buffer | undefined;
}

/** Reads up to this size are tried from the page cache on the calling thread; larger ones always go to the thread pool. */
export const PAGE_CACHE_READ_MAX = 256 * 1024;

/**
 * `length` bytes at `position` of the open file `fd`, copied on this thread,
 * when the kernel's page cache holds all of them (native/page-cache); otherwise
 * undefined, at once and without touching the disk, and the caller reads
 * asynchronously. Saves a stored tile the round trip through libuv's thread
 * pool, where it would wait behind the decoding queued there.
 */
export function readCached(fd: number, position: number, length: number): Buffer | undefined {
  // A closed handle has fd -1: its read fails the usual way, naming the closed handle.
  if (length > PAGE_CACHE_READ_MAX || fd < 0) return undefined;
  return addon()?.readCached(fd, position, length);
}

/** Why reads never come straight from the page cache here, or undefined when they can. */
export function pageCacheReadUnavailable(): string | undefined {
  return loadAddon<PageCacheAddon>('page-cache', 'page_cache.node').reason;
}

function addon(): PageCacheAddon | undefined {
  return loadAddon<PageCacheAddon>('page-cache', 'page_cache.node').addon;
}
