/**
 * A small Hamamatsu VMS slide for the tests of conversion at ingest: an index
 * file (`[Virtual Microscope Specimen]`, the keys OpenSlide's hamamatsu driver
 * reads), one baseline JPEG with restart markers (OpenSlide refuses a VMS
 * JPEG without them) written with the generator's encoder, and a map and a
 * macro JPEG written with sharp. The slide engine does not read VMS; OpenSlide
 * does, so ingest converts it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { BaselineJpegEncoder, MCU_SIDE } from '../../server/wsi/generate/baseline-jpeg.js';

export interface VmsSlide {
  /** The index file. */
  index: string;
  /** The JPEG files beside it. */
  jpegs: string[];
  width: number;
  height: number;
  /** Identifying values written into the index, which must not reach the published file. */
  identifiers: { barcode: string; reference: string; created: string };
}

/** RGB pixels with structure at every scale, so that a shifted or blurred conversion shows in the PSNR. */
export function vmsPixels(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const tissue = Math.hypot(x - width / 2, y - height / 2) < Math.min(width, height) * 0.4;
      data[i] = tissue ? 200 - ((x * 3 + y) % 90) : 240;
      data[i + 1] = tissue ? 120 + ((x >> 4) % 2) * 40 : 238;
      data[i + 2] = tissue ? 180 + ((y >> 5) % 2) * 30 : 242;
    }
  }
  return data;
}

/** A baseline JPEG (4:4:4) with a restart marker after every row of MCUs. */
export function restartJpeg(pixels: Buffer, width: number, height: number, quality = 95): Buffer {
  if (width % MCU_SIDE !== 0 || height % MCU_SIDE !== 0) throw new Error('the test JPEG needs sides that are multiples of 8');
  const encoder = new BaselineJpegEncoder(quality);
  const mcusPerRow = width / MCU_SIDE;
  const parts: Buffer[] = [encoder.header(width, height, mcusPerRow)];
  const stride = width * 3;
  const rows = height / MCU_SIDE;
  for (let row = 0; row < rows; row++) {
    const band = pixels.subarray(row * MCU_SIDE * stride, (row + 1) * MCU_SIDE * stride);
    parts.push(encoder.interval(band, stride, 0, mcusPerRow));
    if (row < rows - 1) parts.push(Buffer.from([0xff, 0xd0 + (row % 8)]));
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}

/** Writes `<name>.vms` and its JPEGs into `dir`. */
export async function writeVms(dir: string, name: string, options: { width?: number; height?: number; withMap?: boolean } = {}): Promise<VmsSlide> {
  const width = options.width ?? 1024;
  const height = options.height ?? 768;
  await mkdir(dir, { recursive: true });
  const pixels = vmsPixels(width, height);
  const image = `${name}.jpg`;
  const map = `${name}_map.jpg`;
  const macro = `${name}_macro.jpg`;
  await writeFile(path.join(dir, image), restartJpeg(pixels, width, height));
  // OpenSlide reads the map as a level too: it needs restart markers as well.
  const mapWidth = Math.floor(width / 64) * 8;
  const mapHeight = Math.floor(height / 64) * 8;
  const mapPixels = await sharp(pixels, { raw: { width, height, channels: 3 } }).resize(mapWidth, mapHeight).raw().toBuffer();
  await writeFile(path.join(dir, map), restartJpeg(mapPixels, mapWidth, mapHeight));
  await sharp({ create: { width: 300, height: 100, channels: 3, background: { r: 30, g: 30, b: 30 } } }).jpeg().toFile(path.join(dir, macro));
  const identifiers = { barcode: 'BC-20261207-77341', reference: 'REF-HOSPITAL-0042', created: '2026/11/03 14:22:51' };
  const index = [
    '[Virtual Microscope Specimen]',
    'NoLayers=1',
    'NoJpegColumns=1',
    'NoJpegRows=1',
    `ImageFile=${image}`,
    ...(options.withMap === false ? [] : [`MapFile=${map}`]),
    `MacroImage=${macro}`,
    // Nanometres: 0.5 µm per pixel.
    `PhysicalWidth=${width * 500}`,
    `PhysicalHeight=${height * 500}`,
    'SourceLens=20',
    `SlideId=${identifiers.barcode}`,
    `Reference=${identifiers.reference}`,
    `Created=${identifiers.created}`,
    'Creator=NanoZoomer',
    '',
  ].join('\r\n');
  const file = path.join(dir, `${name}.vms`);
  await writeFile(file, index);
  return { index: file, jpegs: [image, map, macro].map((f) => path.join(dir, f)), width, height, identifiers };
}
