/**
 * A binary mask (0 or 255 per pixel) over a whole slide at some downsample,
 * and writing it as an 8-bit grey PNG with a JSON sidecar.
 */
import { rename, writeFile } from 'node:fs/promises';
import sharp from 'sharp';

export interface Mask {
  width: number;
  height: number;
  /** One byte per pixel, row by row: 255 inside, 0 outside. */
  data: Uint8Array;
  /** Level-0 pixels per mask pixel along each axis: mask pixel (i, j) has its centre at ((i + ½)·x, (j + ½)·y) in level 0. */
  downsample: { x: number; y: number };
}

/** The largest mask built in memory (16384 × 16384 bytes = 256 MiB). */
export const MAX_MASK_PIXELS = 16384 * 16384;

/** How many pixels of the mask are set. */
export function countSet(mask: Pick<Mask, 'data'>): number {
  let count = 0;
  const data = mask.data;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) count++;
  return count;
}

/** Write `mask` as an 8-bit grey PNG (0/255), through a temporary name so that a half-written file never carries the final one. */
export async function writeMaskPng(mask: Mask, file: string): Promise<void> {
  const partial = `${file}.partial`;
  await sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 }, limitInputPixels: false })
    .toColourspace('b-w')
    .png({ compressionLevel: 6 })
    .toFile(partial);
  await rename(partial, file);
}

/** Write JSON (two-space indented, with a final newline) through a temporary name. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  const partial = `${file}.partial`;
  await writeFile(partial, `${JSON.stringify(value, null, 2)}\n`);
  await rename(partial, file);
}
