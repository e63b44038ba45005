import { LRUCache } from 'lru-cache';

/**
 * Values computed from the catalog's count tables, each kept with the version
 * of those tables it was computed at (the sums of their `changes` columns,
 * which every write adds to: see the catalog-count-changes migration) and
 * used again only while the version read now is the same. The version is
 * read before the value, so a value is never older than its version; a
 * write in between makes it newer, and the next read's version replaces it.
 */
export class CountsCache<T> {
  private readonly entries: LRUCache<string, { version: string; value: T }>;

  constructor(max: number) {
    this.entries = new LRUCache({ max });
  }

  async get(key: string, version: string, compute: () => Promise<T>): Promise<T> {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.version === version) return entry.value;
    const value = await compute();
    this.entries.set(key, { version, value });
    return value;
  }
}
