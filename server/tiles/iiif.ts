import { AppError } from '../errors.js';
import type { Level0Region } from '../wsi/index.js';

/**
 * IIIF Image API 3.0, compliance level 1: regions full, square and x,y,w,h;
 * sizes max, w, ,h and w,h (and ^ for upscaling); rotation 0; quality
 * default; formats jpg, png, webp.
 * https://iiif.io/api/image/3.0/
 */
export interface IiifRequest {
  region: Level0Region;
  width: number;
  height: number;
  format: 'jpeg' | 'png' | 'webp';
}

const FORMATS = { jpg: 'jpeg', png: 'png', webp: 'webp' } as const;

const bad = (message: string) => new AppError(400, 'invalid_iiif_request', message);

export function parseIiifRequest(
  parts: { region: string; size: string; rotation: string; quality: string; format: string },
  image: { width: number; height: number },
  maxArea: number,
): IiifRequest {
  const region = parseRegion(parts.region, image);
  const { width, height } = parseSize(parts.size, region, maxArea);
  if (parts.rotation !== '0') throw new AppError(400, 'unsupported_iiif_feature', `Rotation "${parts.rotation}" is not supported; use 0`);
  if (parts.quality !== 'default' && parts.quality !== 'color') {
    throw new AppError(400, 'unsupported_iiif_feature', `Quality "${parts.quality}" is not supported; use default`);
  }
  const format = FORMATS[parts.format as keyof typeof FORMATS];
  if (!format) throw new AppError(400, 'unsupported_iiif_feature', `Format "${parts.format}" is not supported; use jpg, png or webp`);
  return { region, width, height, format };
}

function parseRegion(text: string, image: { width: number; height: number }): Level0Region {
  if (text === 'full') return { x: 0, y: 0, width: image.width, height: image.height };
  if (text === 'square') {
    const side = Math.min(image.width, image.height);
    return { x: (image.width - side) >> 1, y: (image.height - side) >> 1, width: side, height: side };
  }
  const match = /^(\d+),(\d+),(\d+),(\d+)$/.exec(text);
  if (!match) throw bad(`Region "${text}" is not full, square or x,y,w,h in pixels`);
  const [x, y, w, h] = match.slice(1).map(Number) as [number, number, number, number];
  if (w === 0 || h === 0) throw bad(`Region "${text}" is empty`);
  if (x >= image.width || y >= image.height) throw bad(`Region "${text}" lies outside the ${image.width}×${image.height} image`);
  // A region reaching past the edge is cropped to the image, as the specification says.
  return { x, y, width: Math.min(w, image.width - x), height: Math.min(h, image.height - y) };
}

function parseSize(text: string, region: Level0Region, maxArea: number): { width: number; height: number } {
  const upscale = text.startsWith('^');
  const body = upscale ? text.slice(1) : text;
  let width: number;
  let height: number;
  if (body === 'max') {
    const scale = Math.min(1, Math.sqrt(maxArea / (region.width * region.height)));
    width = Math.max(1, Math.floor(region.width * scale));
    height = Math.max(1, Math.floor(region.height * scale));
  } else {
    const match = /^(\d*),(\d*)$/.exec(body);
    if (!match || (match[1] === '' && match[2] === '')) throw bad(`Size "${text}" is not max, w, ,h or w,h`);
    const w = match[1] === '' ? undefined : Number(match[1]);
    const h = match[2] === '' ? undefined : Number(match[2]);
    width = w ?? Math.max(1, Math.round((region.width * h!) / region.height));
    height = h ?? Math.max(1, Math.round((region.height * w!) / region.width));
  }
  if (width < 1 || height < 1) throw bad(`Size "${text}" is empty`);
  if (!upscale && (width > region.width || height > region.height)) {
    throw bad(`Size "${text}" is larger than the region; prefix it with ^ to upscale`);
  }
  if (width * height > maxArea) throw bad(`Size "${text}" exceeds the largest image served (${maxArea} pixels)`);
  return { width, height };
}

/** The image information document (info.json) for a slide. */
export function iiifInfo(id: string, image: { width: number; height: number }, tileSize: number, levels: number[], maxArea: number) {
  const scaleFactors = levels.length > 0 ? levels : [1];
  return {
    '@context': 'http://iiif.io/api/image/3/context.json',
    id,
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level1',
    width: image.width,
    height: image.height,
    maxArea,
    tiles: [{ width: tileSize, scaleFactors }],
    extraFormats: ['png', 'webp'],
    extraFeatures: ['sizeUpscaling'],
  };
}
