import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { parseAperioXml, toGeoJson, type AnnotationFeatureCollection } from '../annotations/index.js';
import { AppError, notFound } from '../errors.js';
import type { SlideRelease } from './slide-release.js';
import type { SlidesRepository } from './slides.repository.js';
import type { AnnotationGeoJson } from './views.js';

/**
 * A published slide's annotation as GeoJSON for the viewer's overlay
 * (`GET /api/slides/:id/annotation.geojson`), sent only while the slide may
 * leave (SlideRelease). The stored XML was scrubbed at
 * ingest; coordinates stay level-0 pixels, y down (see annotations/geojson.ts).
 * Conversions are kept by file identity, so a page reload does not parse again.
 */
export class AnnotationsService {
  private readonly slidesDir: string;
  private readonly converted = new LRUCache<string, AnnotationFeatureCollection>({ max: 200 });

  constructor(
    private readonly slides: SlidesRepository,
    slidesDir: string,
    private readonly release: Pick<SlideRelease, 'assertMayLeave'>,
  ) {
    this.slidesDir = path.resolve(slidesDir);
  }

  async geoJson(slideId: number): Promise<AnnotationGeoJson> {
    await this.release.assertMayLeave(slideId);
    const found = await this.slides.findPublishedAnnotationPath(slideId);
    if (!found) throw notFound('slide_not_found', `There is no published slide ${slideId}`);
    if (found.annotationPath === null) throw notFound('annotation_not_found', `Slide ${slideId} has no annotation`);
    const file = this.resolve(found.annotationPath, slideId);
    let identity: string;
    try {
      const stats = await stat(file);
      identity = `${file}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
    } catch (error) {
      throw new AppError(500, 'annotation_file_missing', `The annotation file of slide ${slideId} is missing from the slide store`, { expose: true, cause: error });
    }
    let collection = this.converted.get(identity);
    if (!collection) {
      try {
        collection = toGeoJson(parseAperioXml(await readFile(file, 'utf8')));
      } catch (error) {
        throw new AppError(500, 'annotation_unreadable', `The annotation file of slide ${slideId} cannot be read`, { expose: true, cause: error });
      }
      this.converted.set(identity, collection);
    }
    return collection;
  }

  /** Paths are stored relative to the slide store (absolute ones are kept as they are, as the downloads do). */
  private resolve(stored: string, slideId: number): string {
    if (path.isAbsolute(stored)) return stored;
    const full = path.resolve(this.slidesDir, stored);
    if (!full.startsWith(this.slidesDir + path.sep)) {
      throw new AppError(500, 'file_outside_store', `The annotation of slide ${slideId} is recorded outside the slide store`, { expose: true });
    }
    return full;
  }
}
