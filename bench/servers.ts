import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../server/package-info.js';
import { mulberry32 } from '../server/wsi/generate/tissue.js';
import type { DeepZoom, Slide } from '../server/wsi/index.js';
import { freePort } from '../test/support/cli.js';
import type { LoadTarget } from './load.js';

/** OpenSlide's Deep Zoom server (Debian's python-openslide-examples). */
export const DEEPZOOM_SERVER = '/usr/share/doc/python-openslide-examples/examples/deepzoom/deepzoom_server.py';

/**
 * Run `run` against a fresh Slidebank process (compiled, as in production)
 * on the benchmark's database and data folder, with the Deep Zoom grid given;
 * `env` adds settings. `BENCH_NODE_ARGS` passes Node options (to profile).
 */
export async function withSlidebank<T>(grid: string, databaseUrl: string, work: string, run: (base: string, server: ChildProcess) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  const port = await freePort();
  const server = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ') ?? []), path.join(packageRoot, 'bin', 'slidebank.js'), 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      SLIDEBANK_HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      SLIDEBANK_PATHS_DATA: work,
      SLIDEBANK_LOG_LEVEL: 'warn',
      SLIDEBANK_TILES_GRID: grid,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitFor(`http://127.0.0.1:${port}/healthz`, server);
    return await run(`http://127.0.0.1:${port}`, server);
  } finally {
    await stop(server);
  }
}

/** A deterministic random set of up to `count` distinct tiles: a level drawn uniformly, then a tile in it. */
export function tileTargets(deepZoom: DeepZoom, slide: Slide, url: (level: number, col: number, row: number) => string, count: number): LoadTarget[] {
  return randomTiles(deepZoom.levels, count).map(({ level, col, row }) => ({ url: url(level, col, row), group: levelKind(deepZoom.levels[level]!, slide) }));
}

/** Up to `count` distinct tiles of a Deep Zoom pyramid's levels, drawn by a seeded generator so that every run asks for the same ones. */
export function randomTiles(levels: readonly { cols: number; rows: number }[], count: number, seed = 0x9e3779b9): { level: number; col: number; row: number }[] {
  const random = mulberry32(seed);
  const seen = new Set<string>();
  const tiles: { level: number; col: number; row: number }[] = [];
  for (let attempt = 0; tiles.length < count && attempt < count * 20; attempt++) {
    const level = Math.floor(random() * levels.length);
    const l = levels[level]!;
    const col = Math.floor(random() * l.cols);
    const row = Math.floor(random() * l.rows);
    const key = `${level}/${col}/${row}`;
    if (seen.has(key)) continue;
    seen.add(key);
    tiles.push({ level, col, row });
  }
  return tiles;
}

/** native: a stored level at this resolution; overview: the whole slide in at most four tiles; resampled: the rest. */
export function levelKind(level: { width: number; height: number; cols: number; rows: number }, slide: Slide): string {
  if (level.cols * level.rows <= 4) return 'overview';
  if (slide.levels.some((s) => Math.abs(s.width - level.width) <= 1 && Math.abs(s.height - level.height) <= 1)) return 'native';
  return 'resampled';
}

export async function waitFor(url: string, child: ChildProcess, method = 'GET'): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url, { method });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 60 s`);
    await sleep(200);
  }
}

/** Peak resident set size of a running process, from /proc (VmHWM). */
export function peakRss(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
}
