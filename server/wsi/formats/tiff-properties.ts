import type { TiffDirectory } from '../tiff/directory.js';
import { Tag } from '../tiff/tags.js';

const TEXT_TAGS: [number, string][] = [
  [Tag.ImageDescription, 'ImageDescription'],
  [Tag.Make, 'Make'],
  [Tag.Model, 'Model'],
  [Tag.Software, 'Software'],
  [Tag.DateTime, 'DateTime'],
  [Tag.Artist, 'Artist'],
  [Tag.HostComputer, 'HostComputer'],
  [Tag.Copyright, 'Copyright'],
  [Tag.DocumentName, 'DocumentName'],
];

const UNIT_NAMES: Record<number, string> = { 1: 'none', 2: 'inch', 3: 'centimeter' };

/** `tiff.*` properties from the base directory, as OpenSlide names them. */
export function tiffProperties(base: TiffDirectory): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [tag, name] of TEXT_TAGS) {
    const value = base.tags.get(tag);
    if (typeof value === 'string') out[`tiff.${name}`] = value;
  }
  for (const [tag, name] of [[Tag.XResolution, 'XResolution'], [Tag.YResolution, 'YResolution']] as const) {
    const value = base.tags.get(tag);
    if (Array.isArray(value) && value[0] !== undefined) out[`tiff.${name}`] = String(value[0]);
  }
  const unit = base.tags.get(Tag.ResolutionUnit);
  out['tiff.ResolutionUnit'] = UNIT_NAMES[Array.isArray(unit) ? unit[0] ?? 2 : 2] ?? 'unknown';
  return out;
}

/** Microns per pixel from the resolution tags, when they are in centimetres (inch values are usually a screen default). */
export function mppFromResolution(base: TiffDirectory): { x: number; y: number } | undefined {
  const unit = base.tags.get(Tag.ResolutionUnit);
  const xres = base.tags.get(Tag.XResolution);
  const yres = base.tags.get(Tag.YResolution);
  if (!Array.isArray(unit) || unit[0] !== 3 || !Array.isArray(xres) || !Array.isArray(yres)) return undefined;
  const [x, y] = [xres[0], yres[0]];
  if (!x || !y) return undefined;
  return { x: 10_000 / x, y: 10_000 / y };
}
