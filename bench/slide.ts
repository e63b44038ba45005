import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../server/package-info.js';
import { makeSlide } from '../server/wsi/generate/index.js';

export const WIDTH = 60_000;
export const HEIGHT = 40_000;
const SEED = 1;

/** The benchmarks' slide: a generated 60000×40000 SVS with its XML, made once and kept in var/bench. Other sizes and seeds for other uses. */
export async function benchSlide(width = WIDTH, height = HEIGHT, seed = SEED): Promise<string> {
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `bench-${width}x${height}-seed${seed}`;
  const file = path.join(dir, `${name}.svs`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${width}×${height} slide (once; kept in ${dir}) … `);
  const t0 = performance.now();
  await makeSlide({ width, height, seed, out: dir, name });
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB\n`);
  return file;
}

/**
 * A generated NDPI of `width`×`height` (restart intervals of 256 pixels at
 * every level), made once and kept in var/bench under `prefix`: the ingest
 * and served-NDPI benchmarks share `bench-ndpi-ingest`.
 */
export async function benchNdpi(width: number, height: number, prefix: string): Promise<string> {
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `${prefix}-${width}x${height}-seed${SEED}`;
  const file = path.join(dir, `${name}.ndpi`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${width}×${height} NDPI (once; kept in ${dir}) … `);
  const t0 = performance.now();
  await makeSlide({ width, height, seed: SEED, out: dir, name, format: 'ndpi' });
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB\n`);
  return file;
}
