import type { Knex } from 'knex';
import { CATALOG_WORDS_TABLE, writeCatalogWords } from '../../catalog/catalog-words.repository.js';
import { MAX_WORD_LENGTH } from '../../catalog/catalog-words.js';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * The catalog's word index (server/catalog/catalog-words.ts): one row per
 * word of a slide's name and pathology information, keyed (word, slide_id),
 * so that a text search seeks the words starting with each searched word
 * instead of reading every slide (docs/scaling.md, "A large catalog").
 *
 * Words are compared byte for byte on both databases: SQLite's BINARY
 * collation, and utf8mb4_bin on MariaDB (whose table default ignores case
 * and accents), so that a prefix range means the same on both. The words of
 * the slides already stored are written here, in id order; the writers of
 * slides keep them from then on. Run it with the application stopped, as
 * every migration.
 */

/** Slides read per batch while filling the index. */
const FILL_BATCH = 1000;

export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (await knex.schema.hasTable(CATALOG_WORDS_TABLE)) return;
  await knex.schema.createTable(CATALOG_WORDS_TABLE, (t) => {
    applyTableDefaults(t, dialect);
    const word = t.string('word', MAX_WORD_LENGTH).notNullable();
    if (dialect === 'mariadb') word.collate('utf8mb4_bin');
    t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
    t.primary(['word', 'slide_id']);
    t.index(['slide_id'], 'catalog_words_slide_id_index');
  });
  let after = 0;
  for (;;) {
    const rows = (await knex('slides').where('id', '>', after).orderBy('id').limit(FILL_BATCH).select('id', 'name', 'pathology_info')) as { id: number; name: string; pathology_info: string | null }[];
    if (rows.length === 0) break;
    await writeCatalogWords(
      knex,
      rows.map((row) => ({ id: Number(row.id), name: row.name, pathologyInfo: row.pathology_info })),
    );
    after = Number(rows[rows.length - 1]!.id);
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists(CATALOG_WORDS_TABLE);
}
