import { stat } from 'node:fs/promises';
import path from 'node:path';
import { readSlideFacts, type SlideFacts } from '../../server/catalog/slide-facts.js';
import { SlidesRepository, type SlideRecord } from '../../server/catalog/slides.repository.js';
import type { Database } from '../../server/db/index.js';

/** Put a slide file into the catalog as ingest will, reading its facts from the file itself. */
export async function registerSlide(db: Database, file: string, name = path.basename(file)): Promise<SlideRecord> {
  let facts: SlideFacts;
  try {
    facts = await readSlideFacts(file);
  } catch {
    // Damaged files are registered too, to test how the server answers for them.
    const fileSize = await stat(file).then((s) => s.size, () => 0);
    facts = { fileSize, vendor: 'unknown', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null };
  }
  return new SlidesRepository(db.knex).create({ name, filePath: file, sha256: null, ...facts });
}
