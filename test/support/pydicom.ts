import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImplementationFn } from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { testNeeding } from './requirements.js';

/**
 * pydicom as the reference decoder of DICOM frames, through Debian's
 * python3-pydicom (`/usr/bin/python3`, not the python3 first on PATH), which
 * CI installs. OpenSlide 3.4.1, the other reference reader, does not read DICOM.
 */
const PYTHON = '/usr/bin/python3';

/** Why pydicom cannot be asked here, or undefined when it can. */
export const pydicomProblem = ((): string | undefined => {
  try {
    execFileSync(PYTHON, ['-c', 'import pydicom, numpy, PIL'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import pydicom (apt-get install python3-pydicom)`;
  }
})();

export interface PydicomFrames {
  transferSyntax: string;
  photometric: string;
  frames: number;
  rows: number;
  columns: number;
  totalColumns: number;
  totalRows: number;
  /** The frames asked for, decoded to RGB (rows × columns × 3), in the order asked. */
  pixels: Buffer[];
}

/** Frames of one DICOM file (0-based indices), decoded by pydicom to RGB by the rules of test/support/pydicom_oracle.py. */
export async function askPydicom(file: string, frames: number[]): Promise<PydicomFrames> {
  const outdir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-pydicom-'));
  try {
    const script = path.join(packageRoot, 'test', 'support', 'pydicom_oracle.py');
    const { stdout } = await promisify(execFile)(PYTHON, [script, file, outdir, JSON.stringify(frames)], { maxBuffer: 16 * 1024 * 1024 });
    const { files, ...rest } = JSON.parse(stdout) as Omit<PydicomFrames, 'pixels'> & { files: string[] };
    return { ...rest, pixels: await Promise.all(files.map((f) => readFile(f))) };
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

/** A test that asks pydicom and reads the fixtures: see `testNeeding` (./requirements.ts) for where it skips and where it fails. */
export function pydicomTest(problems: (string | undefined)[], title: string, implementation: ImplementationFn<[]>): void {
  testNeeding([...problems, pydicomProblem], title, implementation);
}
