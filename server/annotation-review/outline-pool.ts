import os from 'node:os';
import type { ComparedOutlines } from './comparison.js';
import type { OutlineSource, OutlineWork, PreparedOutline } from './outline-work.js';
import { WorkerPool } from './worker-pool.js';

/** The threads the server gives outline work: one less than the cores, at most two, at least one. */
export function outlineThreads(): number {
  return Math.max(1, Math.min(2, os.availableParallelism() - 1));
}

/** OutlineWork on worker threads: parsing, checking and rasterising outlines never hold up the event loop. */
export function pooledOutlineWork(threads = outlineThreads()): OutlineWork {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './outline.worker.ts' : './outline.worker.js', import.meta.url);
  const pool = new WorkerPool(entry, threads);
  return {
    prepare: (source: OutlineSource, slide: { width: number; height: number }, check: boolean) => pool.run<PreparedOutline>('prepare', [source, slide, check]),
    release: (file: string) => pool.run('release', [file]),
    geoJson: (file: string) => pool.run('geoJson', [file]),
    compare: (fileA: string, fileB: string, slide: { width: number; height: number }, downsample?: number) => pool.run<ComparedOutlines>('compare', [fileA, fileB, slide, downsample]),
    close: () => pool.close(),
  };
}
