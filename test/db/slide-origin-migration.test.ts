// The migration that adds each slide's scanner vendor and original format fills them in for the
// slides published before it, from their ingest record's report where it names the original's
// format, else from the published file's vendor where that says it; the rest stay unknown.
import test from 'ava';
import * as slideOrigin from '../../server/db/migrations/2026-12-07-60-slide-origin.js';
import * as catalogCounts from '../../server/db/migrations/2026-12-07-72-catalog-counts.js';
import * as catalogWords from '../../server/db/migrations/2026-12-07-80-catalog-words.js';
import * as catalogCountChanges from '../../server/db/migrations/2026-12-07-90-catalog-count-changes.js';
import { toDbTime } from '../../server/db/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { dialectOf } from '../../server/db/dialect.js';

test(`slides published before are filled in from their ingest reports and vendors, on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const { knex } = db;
  // Back to before the origin columns: the later catalog words and counts (whose triggers read them) first.
  await catalogCountChanges.down(knex, dialectOf(knex));
  await catalogWords.down(knex);
  await catalogCounts.down(knex);
  await slideOrigin.down(knex);
  const now = toDbTime(new Date());
  const slides: [string, string, string | null][] = [
    ['S-NDPI', 'generic-tiff', JSON.stringify({ originalFormat: 'hamamatsu' })],
    ['S-TIFF', 'generic-tiff', JSON.stringify({ originalFormat: 'generic-tiff' })],
    ['S-SVS', 'aperio', null],
    ['S-DICOM', 'dicom', null],
    ['S-UNKNOWN', 'generic-tiff', 'not json'],
  ];
  for (const [name, vendor, report] of slides) {
    const [inserted] = await knex('slides')
      .insert({ name, file_path: `${name}.tif`, file_size: 1, vendor, width: 10, height: 10, level_count: 1, status: 'published', created_at: now, updated_at: now })
      .returning('id');
    const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
    if (report !== null) await knex('ingest_records').insert({ outcome: 'published', slide_id: id, report, source: 'cli', created_at: now });
  }
  await slideOrigin.up(knex);
  await catalogCounts.up(knex, dialectOf(knex));
  await catalogWords.up(knex, dialectOf(knex));
  await catalogCountChanges.up(knex, dialectOf(knex));
  const rows = (await knex('slides').orderBy('id').select('name', 'scanner_vendor', 'original_format')) as { name: string; scanner_vendor: string | null; original_format: string | null }[];
  t.deepEqual(
    rows.map((r) => `${r.name} ${r.scanner_vendor} ${r.original_format}`),
    ['S-NDPI hamamatsu ndpi', 'S-TIFF generic tiff', 'S-SVS aperio svs', 'S-DICOM dicom dicom', 'S-UNKNOWN null null'],
  );
});
