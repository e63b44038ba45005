import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SlidesRepository, type SlideRecord } from '../../server/catalog/slides.repository.js';
import type { Database } from '../../server/db/index.js';
import { Slide } from '../../server/wsi/index.js';

/** Put a slide file into the catalog as ingest will, reading its facts from the file itself. */
export async function registerSlide(db: Database, file: string, name = path.basename(file)): Promise<SlideRecord> {
  let facts: Pick<SlideRecord, 'vendor' | 'width' | 'height' | 'levelCount' | 'mppX' | 'mppY' | 'objectivePower'>;
  try {
    const slide = await Slide.open(file);
    facts = {
      vendor: slide.vendor,
      width: slide.width,
      height: slide.height,
      levelCount: slide.levels.length,
      mppX: slide.mpp?.x ?? null,
      mppY: slide.mpp?.y ?? null,
      objectivePower: slide.objectivePower ?? null,
    };
    await slide.close();
  } catch {
    // Damaged files are registered too, to test how the server answers for them.
    facts = { vendor: 'unknown', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null };
  }
  const size = await stat(file).then((s) => s.size, () => 0);
  return new SlidesRepository(db.knex).create({ name, filePath: file, fileSize: size, sha256: null, ...facts });
}
