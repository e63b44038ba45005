import { AppError } from '../errors.js';
import type { Level0Region } from '../wsi/index.js';
import type { IiifInfo } from './views.js';

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

/** The path segments of an image request, as text: `{region}/{size}/{rotation}/{quality}.{format}`. */
export interface IiifParts {
  region: string;
  size: string;
  rotation: string;
  quality: string;
  format: string;
}

export type IiifRegion = { kind: 'full' } | { kind: 'square' } | { kind: 'pixels'; x: number; y: number; width: number; height: number };

/** `max`, or a width and/or a height (the other kept in proportion); `upscale` for the `^` prefix. */
export type IiifSize = { upscale: boolean } & ({ kind: 'max' } | { kind: 'scaled'; width: number | null; height: number | null });

/**
 * An image request as its path states it, once its syntax and the features
 * it asks for are checked; what depends on the image (a region inside it, a
 * size the server renders) is checked by `resolveIiifRequest`.
 */
export interface IiifImageRequest {
  region: IiifRegion;
  size: IiifSize;
  format: IiifRequest['format'];
}

export interface IiifLimits {
  /** The most pixels an answer may have. */
  maxArea: number;
  /** The size `max` stands for: the largest the server renders of `region`; undefined when it cannot render the region at any size. */
  largest(region: Level0Region): { width: number; height: number } | undefined;
}

const FORMATS = { jpg: 'jpeg', png: 'png', webp: 'webp' } as const;

const bad = (message: string) => new AppError(400, 'invalid_iiif_request', message);

/** The path's parts read as IIIF says: a 400 that names the part for anything malformed or beyond level 1. */
export function parseIiifImagePath(parts: IiifParts): IiifImageRequest {
  const region = parseRegion(parts.region);
  const size = parseSize(parts.size);
  if (parts.rotation !== '0') throw new AppError(400, 'unsupported_iiif_feature', `Rotation "${parts.rotation}" is not supported; use 0`);
  if (parts.quality !== 'default' && parts.quality !== 'color') {
    throw new AppError(400, 'unsupported_iiif_feature', `Quality "${parts.quality}" is not supported; use default`);
  }
  const format = FORMATS[parts.format as keyof typeof FORMATS];
  if (!format) throw new AppError(400, 'unsupported_iiif_feature', `Format "${parts.format}" is not supported; use jpg, png or webp`);
  return { region, size, format };
}

/** The pixels a request names in this image, and the size they are rendered at; a 400 when the image does not have them or the server would not render them. */
export function resolveIiifRequest(request: IiifImageRequest, image: { width: number; height: number }, limits: IiifLimits): IiifRequest {
  const region = resolveRegion(request.region, image);
  const { width, height } = resolveSize(request.size, region, limits);
  return { region, width, height, format: request.format };
}

/** The request in the words of the IIIF path, canonical: equal requests give equal text. */
export function describeIiifRequest({ region, size, format }: IiifImageRequest): string {
  return `${regionText(region)}/${sizeText(size)}/0/default.${format === 'jpeg' ? 'jpg' : format}`;
}

function parseRegion(text: string): IiifRegion {
  if (text === 'full' || text === 'square') return { kind: text };
  const match = /^(\d{1,15}),(\d{1,15}),(\d{1,15}),(\d{1,15})$/.exec(text);
  if (!match) throw bad(`Region "${text}" is not full, square or x,y,w,h in pixels`);
  const [x, y, width, height] = match.slice(1).map(Number) as [number, number, number, number];
  if (width === 0 || height === 0) throw bad(`Region "${text}" is empty`);
  return { kind: 'pixels', x, y, width, height };
}

function resolveRegion(region: IiifRegion, image: { width: number; height: number }): Level0Region {
  if (region.kind === 'full') return { x: 0, y: 0, width: image.width, height: image.height };
  if (region.kind === 'square') {
    const side = Math.min(image.width, image.height);
    return { x: (image.width - side) >> 1, y: (image.height - side) >> 1, width: side, height: side };
  }
  const { x, y, width, height } = region;
  if (x >= image.width || y >= image.height) throw bad(`Region "${regionText(region)}" lies outside the ${image.width}×${image.height} image`);
  // A region reaching past the edge is cropped to the image, as the specification says.
  return { x, y, width: Math.min(width, image.width - x), height: Math.min(height, image.height - y) };
}

function parseSize(text: string): IiifSize {
  const upscale = text.startsWith('^');
  const body = upscale ? text.slice(1) : text;
  if (body === 'max') return { upscale, kind: 'max' };
  const match = /^(\d{0,15}),(\d{0,15})$/.exec(body);
  if (!match || (match[1] === '' && match[2] === '')) throw bad(`Size "${text}" is not max, w, ,h or w,h`);
  const width = match[1] === '' ? null : Number(match[1]);
  const height = match[2] === '' ? null : Number(match[2]);
  if (width === 0 || height === 0) throw bad(`Size "${text}" is empty`);
  return { upscale, kind: 'scaled', width, height };
}

function resolveSize(size: IiifSize, region: Level0Region, { maxArea, largest }: IiifLimits): { width: number; height: number } {
  let width: number;
  let height: number;
  if (size.kind === 'max') {
    const most = largest(region);
    if (!most) {
      throw new AppError(400, 'render_too_large', `Region ${region.x},${region.y},${region.width},${region.height} is too large to render from this slide's stored levels (tiles.maxRenderSourcePixels); ask for a smaller region`);
    }
    ({ width, height } = most);
  } else {
    width = size.width ?? Math.max(1, Math.round((region.width * size.height!) / region.height));
    height = size.height ?? Math.max(1, Math.round((region.height * size.width!) / region.width));
  }
  if (!size.upscale && (width > region.width || height > region.height)) {
    throw bad(`Size "${sizeText(size)}" is larger than the region; prefix it with ^ to upscale`);
  }
  if (width * height > maxArea) throw bad(`Size "${sizeText(size)}" exceeds the largest image served (${maxArea} pixels)`);
  return { width, height };
}

function regionText(region: IiifRegion): string {
  return region.kind === 'pixels' ? `${region.x},${region.y},${region.width},${region.height}` : region.kind;
}

function sizeText(size: IiifSize): string {
  return `${size.upscale ? '^' : ''}${size.kind === 'max' ? 'max' : `${size.width ?? ''},${size.height ?? ''}`}`;
}

/**
 * The image information document (info.json) for a slide: the tile scale
 * factors, whole-image sizes and largest area it will serve.
 */
export function iiifInfo(
  id: string,
  image: { width: number; height: number },
  { tileSize, scaleFactors, sizes, maxArea }: { tileSize: number; scaleFactors: number[]; sizes: { width: number; height: number }[]; maxArea: number },
): IiifInfo {
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
