import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { AppliedPriority, BackgroundPriority } from './priority.js';

/** A slide whose catalog thumbnails are to be made. */
export interface ThumbnailWork {
  id: number;
  file: string;
}

export interface ThumbnailOutcome {
  made: number;
  failures: string[];
  /** What the process ran at. */
  priority: AppliedPriority;
}

/**
 * The process's entry: compiled JavaScript in production; in development the
 * TypeScript beside this file, which tsx (in process.execArgv) finds under the
 * .js name.
 */
const ENTRY = fileURLToPath(new URL('./thumbnails.process.js', import.meta.url));

/**
 * Make the thumbnails of `slides` in a process of their own at the workers'
 * lower CPU and I/O priority, so that the scheduled preprocessing, which runs
 * inside the web server, does not decode slides at the priority of the tiles
 * and downloads users wait for.
 */
export async function makeThumbnailsInBackground(slides: ThumbnailWork[], thumbnailsDir: string, priority: BackgroundPriority): Promise<ThumbnailOutcome> {
  const child = spawn(process.execPath, [...process.execArgv, ENTRY], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(JSON.stringify({ slides, thumbnailsDir, priority }));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new Error(`the thumbnail process ended with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`);
  return JSON.parse(stdout) as ThumbnailOutcome;
}
