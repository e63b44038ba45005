import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Slide } from '../wsi/index.js';

/** Thumbnails are made at ingest in two sizes: the catalog grid's and the slide page's. */
export const THUMBNAIL_SIZES = { small: 256, large: 1024 } as const;
export type ThumbnailSize = keyof typeof THUMBNAIL_SIZES;

/** More pixels than this in the smallest level and the slide's own thumbnail image is used instead. */
const MAX_SOURCE_PIXELS = 32 * 1024 * 1024;

export function thumbnailPath(folder: string, slideId: number, size: ThumbnailSize): string {
  return path.join(folder, `${slideId}-${size}.jpeg`);
}

/**
 * Both thumbnails of a published slide, from the smallest pyramid level that
 * is still at least as large as the large thumbnail. Written under temporary
 * names and renamed, so a reader never sees half a JPEG.
 */
export async function writeThumbnails(slideFile: string, folder: string, slideId: number): Promise<void> {
  await storeThumbnails(await renderThumbnails(slideFile), folder, slideId);
}

/** Both thumbnails of a slide file as JPEG, in memory (ingest makes them while the copy is verified, and stores them once it is published). */
export async function renderThumbnails(slideFile: string): Promise<Map<ThumbnailSize, Buffer>> {
  const slide = await Slide.open(slideFile);
  try {
    const image = await overviewImage(slide);
    const rendered = new Map<ThumbnailSize, Buffer>();
    for (const [size, side] of Object.entries(THUMBNAIL_SIZES) as [ThumbnailSize, number][]) {
      rendered.set(
        size,
        await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
          .resize(side, side, { fit: 'inside', withoutEnlargement: true })
          .jpeg({ quality: 85, mozjpeg: false })
          .toBuffer(),
      );
    }
    return rendered;
  } finally {
    await slide.close();
  }
}

/** Rendered thumbnails under the slide's id, each through a temporary name. */
export async function storeThumbnails(rendered: Map<ThumbnailSize, Buffer>, folder: string, slideId: number): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (const [size, jpeg] of rendered) {
    const target = thumbnailPath(folder, slideId, size);
    const partial = `${target}.partial`;
    try {
      await writeFile(partial, jpeg);
      await rename(partial, target);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }
}

export async function removeThumbnails(folder: string, slideId: number): Promise<void> {
  for (const size of Object.keys(THUMBNAIL_SIZES) as ThumbnailSize[]) await rm(thumbnailPath(folder, slideId, size), { force: true });
}

async function overviewImage(slide: Slide) {
  const want = THUMBNAIL_SIZES.large;
  const levels = slide.levels;
  let level = levels.length - 1;
  // The smallest level that is still large enough (or level 0 when none is).
  while (level > 0 && Math.max(levels[level]!.width, levels[level]!.height) < want) level--;
  const { width, height } = levels[level]!;
  if (width * height <= MAX_SOURCE_PIXELS) return slide.readRegion(level, 0, 0, width, height);
  if (slide.associatedImages.includes('thumbnail')) return slide.readAssociated('thumbnail');
  throw new Error(`the smallest level is ${width}×${height} and the slide has no thumbnail image to use instead`);
}
