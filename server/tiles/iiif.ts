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

/** The path segments of an image request: `{region}/{size}/{rotation}/{quality}.{format}`. */
export interface IiifParts {
  region: string;
  size: string;
  rotation: string;
  quality: string;
  format: string;
}

export interface IiifLimits {
  /** The most pixels an answer may have. */
  maxArea: number;
  /** The size `max` stands for: the largest the server renders of `region`; undefined when it cannot render the region at any size. */
  largest(region: Level0Region): { width: number; height: number } | undefined;
}

const FORMATS = { jpg: 'jpeg', png: 'png', webp: 'webp' } as const;

const bad = (message: string) => new AppError(400, 'invalid_iiif_request', message);

export function parseIiifRequest(parts: IiifParts, image: { width: number; height: number }, limits: IiifLimits): IiifRequest {
  const region = parseRegion(parts.region, image);
  const { width, height } = parseSize(parts.size, region, limits);
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

function parseSize(text: string, region: Level0Region, { maxArea, largest }: IiifLimits): { width: number; height: number } {
  const upscale = text.startsWith('^');
  const body = upscale ? text.slice(1) : text;
  let width: number;
  let height: number;
  if (body === 'max') {
    const size = largest(region);
    if (!size) {
      throw new AppError(400, 'render_too_large', `Region ${region.x},${region.y},${region.width},${region.height} is too large to render from this slide's stored levels (tiles.maxRenderSourcePixels); ask for a smaller region`);
    }
    ({ width, height } = size);
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

/**
 * The image information document (info.json) for a slide: the tile scale
 * factors, whole-image sizes and largest area it will serve.
 */
export function iiifInfo(
  id: string,
  image: { width: number; height: number },
  { tileSize, scaleFactors, sizes, maxArea }: { tileSize: number; scaleFactors: number[]; sizes: { width: number; height: number }[]; maxArea: number },
) {
  return {
    '@context': 'http://iiif.io/api/image/3/context.json',
    id,
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level1',
    width: image.width,
    height: image.height,
    maxArea,
    sizes,
    ...(scaleFactors.length > 0 ? { tiles: [{ width: tileSize, scaleFactors }] } : {}),
    extraFormats: ['png', 'webp'],
    extraFeatures: ['sizeUpscaling'],
  };
}
