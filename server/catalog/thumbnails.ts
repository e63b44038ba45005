import path from 'node:path';

/** Thumbnails are made at ingest in two sizes: the catalog grid's and the slide page's. */
export const THUMBNAIL_SIZES = { small: 256, large: 1024 } as const;
export type ThumbnailSize = keyof typeof THUMBNAIL_SIZES;

export function thumbnailPath(folder: string, slideId: number, size: ThumbnailSize): string {
  return path.join(folder, `${slideId}-${size}.jpeg`);
}
