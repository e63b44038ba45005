import { stat } from 'node:fs/promises';
import type { Slide } from '../../../wsi/index.js';
import { usageError } from '../../toolbox-flags.js';
import { translated } from './library-errors.js';

/** A tool's input files and output folder, checked before any work: a missing one is a usage error (exit code 2). */

export async function requireFile(what: string, file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (!info) {
    if (/^\d+$/.test(file)) throw usageError(`${what} ${file}: slide ids are not supported yet (they come with the toolbox jobs); give a slide file`);
    throw usageError(`${what} ${file} does not exist`);
  }
  if (!info.isFile()) throw usageError(`${what} ${file} is not a file`);
}

export async function prepareOut(out: string | undefined): Promise<string> {
  if (out === undefined || out === '') throw usageError('--out is required: the folder to write into');
  const info = await stat(out).catch(() => undefined);
  if (info && !info.isDirectory()) throw usageError(`--out must be a folder, but ${out} is a file`);
  return out;
}

export async function openSlide(file: string): Promise<Slide> {
  await requireFile('INPUT', file);
  const { Slide } = await import('../../../wsi/index.js');
  return translated(() => Slide.open(file));
}
