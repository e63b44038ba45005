import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImplementationFn } from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { testNeeding } from './requirements.js';

/**
 * OpenSlide as the reference reader, through Debian's python3-openslide
 * (`/usr/bin/python3`, not the python3 first on PATH), which CI installs.
 */
const PYTHON = '/usr/bin/python3';

/** Why OpenSlide cannot be asked here, or undefined when it can. */
export const openslideProblem = ((): string | undefined => {
  try {
    execFileSync(PYTHON, ['-c', 'import openslide'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import openslide (apt-get install python3-openslide)`;
  }
})();

/** A test that asks OpenSlide: see `testNeeding` (./requirements.ts) for where it skips and where it fails. */
export function openslideTest(title: string, implementation: ImplementationFn<[]>): void {
  testNeeding([openslideProblem], title, implementation);
}

export interface OracleResult {
  vendor: string;
  properties: Record<string, string>;
  levels: [number, number, number][];
  associated: Record<string, [number, number]>;
  dz: { dims: [number, number][]; tiles: [number, number][] };
  tiles: { request: [number, number, number]; size: [number, number]; file: string }[];
  regions: { request: [number, number, number, number, number]; file: string }[];
  /** The associated images asked for, as RGB files. */
  associatedPixels: { name: string; size: [number, number]; file: string }[];
}

export async function askOpenSlide(
  slide: string,
  requests: { tiles?: [number, number, number][]; regions?: [number, number, number, number, number][]; associated?: string[] },
): Promise<OracleResult> {
  const outdir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-openslide-'));
  const script = path.join(packageRoot, 'test', 'support', 'openslide_oracle.py');
  const { stdout } = await promisify(execFile)(PYTHON, [script, slide, outdir, JSON.stringify(requests)], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as OracleResult;
}

/** Peak signal-to-noise ratio of two equally sized 8-bit buffers, in dB (Infinity when identical). */
export function psnr(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / sum);
}
