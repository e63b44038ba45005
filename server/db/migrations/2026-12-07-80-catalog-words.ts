import type { Knex } from 'knex';
import { CATALOG_WORD_COUNTS_TABLE, CATALOG_WORDS_TABLE, writeCatalogWords } from '../../catalog/catalog-words.repository.js';
import { MAX_WORD_LENGTH } from '../../catalog/catalog-words.js';
import { applyTableDefaults, type DialectName } from '../dialect.js';
import { serialisedOnMariadb } from './2026-11-29-06-audit.js';

/**
 * The catalog's word index (server/catalog/catalog-words.ts), which lets a
 * text search of 100,000 slides seek its slides instead of reading them all
 * (docs/scaling.md, "A large catalog"):
 *
 * - `catalog_words`: one row per word of a slide's name and pathology
 *   information, keyed (word, slide_id). The writers of slides write it (the
 *   database cannot split text into words the same way on SQLite and
 *   MariaDB); a slide's words go with it when it is deleted.
 * - `catalog_word_counts`: the published slides counted by word and by
 *   combination of facet values (as `catalog_counts` counts them, a missing
 *   value as ''), so that the facet counts of a search for a word are read,
 *   not grouped from every slide it matches. Triggers keep it: on
 *   `catalog_words` as words are written and removed, and on `slides` as a
 *   slide changes status or facet values or is deleted (its words are removed
 *   before it, so that they are counted out while its values are known). A
 *   count whose last slide went keeps its row at 0.
 *
 * Words are compared byte for byte on both databases: SQLite's BINARY
 * collation, and utf8mb4_bin on MariaDB (whose table default ignores case and
 * accents), so that a prefix range means the same on both. The words of the
 * slides already stored are written here, in id order, and counted once
 * before the triggers exist: run it with the application stopped, as every
 * migration. As for the catalog counts, a later migration that makes knex
 * rebuild `slides` on SQLite must create the triggers on it again
 * (`createCatalogWordTriggers`, with `countChanges`).
 */

/** Slides read per batch while filling the index. */
const FILL_BATCH = 1000;

const FACET_COLUMNS = [
  ['organ', 32],
  ['histology', 32],
  ['stain', 32],
  ['marker', 32],
  ['differentiation', 32],
  ['annotation_method', 32],
  ['dataset', 100],
  ['scanner_vendor', 64],
  ['original_format', 32],
] as const;
const COLUMNS = FACET_COLUMNS.map(([name]) => name);
const COLUMN_LIST = COLUMNS.join(', ');

export const CATALOG_WORD_TRIGGERS = {
  wordInsert: 'catalog_word_counts_after_word_insert',
  wordDelete: 'catalog_word_counts_after_word_delete',
  slideUpdate: 'catalog_word_counts_after_slide_update',
  slideDelete: 'catalog_words_before_slide_delete',
} as const;

export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (!(await knex.schema.hasTable(CATALOG_WORDS_TABLE))) {
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
  if (!(await knex.schema.hasTable(CATALOG_WORD_COUNTS_TABLE))) {
    await knex.schema.createTable(CATALOG_WORD_COUNTS_TABLE, (t) => {
      applyTableDefaults(t, dialect);
      const word = t.string('word', MAX_WORD_LENGTH).notNullable();
      if (dialect === 'mariadb') word.collate('utf8mb4_bin');
      for (const [name, length] of FACET_COLUMNS) t.string(name, length).notNullable().defaultTo('');
      t.integer('slides').notNullable().defaultTo(0);
      t.unique(['word', ...COLUMNS], { indexName: 'catalog_word_counts_unique' });
    });
    const coalesced = COLUMNS.map((c) => `COALESCE(s.${c}, '')`).join(', ');
    await knex.raw(
      `INSERT INTO ${CATALOG_WORD_COUNTS_TABLE} (word, ${COLUMN_LIST}, slides) SELECT w.word, ${coalesced}, COUNT(*) FROM ${CATALOG_WORDS_TABLE} w JOIN slides s ON s.id = w.slide_id WHERE s.status = 'published' GROUP BY w.word, ${coalesced}`,
    );
  }
  await createCatalogWordTriggers(knex, dialect);
}

/**
 * The triggers that keep `catalog_word_counts` equal to the published slides
 * counted by word and combination; with `countChanges` (from the
 * catalog-count-changes migration on), each also adds 1 to the `changes` of
 * every row it writes.
 */
export async function createCatalogWordTriggers(knex: Knex, dialect: DialectName, options: { countChanges?: boolean } = {}): Promise<void> {
  const coalesced = (row: string) => COLUMNS.map((c) => `COALESCE(${row}.${c}, '')`).join(', ');
  const same = (row: string) => COLUMNS.map((c) => `${CATALOG_WORD_COUNTS_TABLE}.${c} = COALESCE(${row}.${c}, '')`).join(' AND ');
  const [inserted, plusOne] = options.countChanges ? [', changes', ', 1'] : ['', ''];
  const changed = (table: string) => (options.countChanges ? `, changes = ${table}changes + 1` : '');
  const upsert =
    dialect === 'mariadb'
      ? `ON DUPLICATE KEY UPDATE slides = ${CATALOG_WORD_COUNTS_TABLE}.slides + 1${changed(`${CATALOG_WORD_COUNTS_TABLE}.`)}`
      : `ON CONFLICT (word, ${COLUMN_LIST}) DO UPDATE SET slides = slides + 1${changed('')}`;
  // A word written: counted under its slide's combination when the slide is published.
  const countWord = `INSERT INTO ${CATALOG_WORD_COUNTS_TABLE} (word, ${COLUMN_LIST}, slides${inserted}) SELECT NEW.word, ${coalesced('s')}, 1${plusOne} FROM slides s WHERE s.id = NEW.slide_id AND s.status = 'published' ${upsert}`;
  const uncountWord = `UPDATE ${CATALOG_WORD_COUNTS_TABLE} SET slides = slides - 1${changed('')} WHERE word = OLD.word AND EXISTS (SELECT 1 FROM slides s WHERE s.id = OLD.slide_id AND s.status = 'published' AND ${same('s')})`;
  // A slide's status or values changed: each of its words moves from the old combination to the new.
  const uncountSlide = `UPDATE ${CATALOG_WORD_COUNTS_TABLE} SET slides = slides - 1${changed('')} WHERE ${same('OLD')} AND word IN (SELECT word FROM ${CATALOG_WORDS_TABLE} WHERE slide_id = OLD.id)`;
  const countSlide = `INSERT INTO ${CATALOG_WORD_COUNTS_TABLE} (word, ${COLUMN_LIST}, slides${inserted}) SELECT word, ${coalesced('NEW')}, 1${plusOne} FROM ${CATALOG_WORDS_TABLE} WHERE slide_id = NEW.id ${upsert}`;
  const removeWords = `DELETE FROM ${CATALOG_WORDS_TABLE} WHERE slide_id = OLD.id`;
  const t = CATALOG_WORD_TRIGGERS;
  await serialisedOnMariadb(knex, dialect, async (conn) => {
    if (dialect === 'mariadb') {
      const unchanged = ['status', ...COLUMNS].map((c) => `OLD.${c} <=> NEW.${c}`).join(' AND ');
      await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.wordInsert} AFTER INSERT ON ${CATALOG_WORDS_TABLE} FOR EACH ROW ${countWord}`);
      await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.wordDelete} AFTER DELETE ON ${CATALOG_WORDS_TABLE} FOR EACH ROW ${uncountWord}`);
      await conn.raw(
        `CREATE TRIGGER IF NOT EXISTS ${t.slideUpdate} AFTER UPDATE ON slides FOR EACH ROW BEGIN IF NOT (${unchanged}) THEN ` +
          `IF OLD.status = 'published' THEN ${uncountSlide}; END IF; IF NEW.status = 'published' THEN ${countSlide}; END IF; END IF; END`,
      );
      // MariaDB runs no trigger for the rows a foreign key's cascade deletes: the words go first, by this trigger.
      await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.slideDelete} BEFORE DELETE ON slides FOR EACH ROW ${removeWords}`);
      return;
    }
    await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.wordInsert} AFTER INSERT ON ${CATALOG_WORDS_TABLE} BEGIN ${countWord}; END`);
    await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.wordDelete} AFTER DELETE ON ${CATALOG_WORDS_TABLE} BEGIN ${uncountWord}; END`);
    await conn.raw(
      `CREATE TRIGGER IF NOT EXISTS ${t.slideUpdate} AFTER UPDATE OF status, ${COLUMN_LIST} ON slides BEGIN ` +
        `${uncountSlide} AND OLD.status = 'published'; ` +
        `INSERT INTO ${CATALOG_WORD_COUNTS_TABLE} (word, ${COLUMN_LIST}, slides${inserted}) SELECT word, ${coalesced('NEW')}, 1${plusOne} FROM ${CATALOG_WORDS_TABLE} WHERE slide_id = NEW.id AND NEW.status = 'published' ${upsert}; END`,
    );
    await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${t.slideDelete} BEFORE DELETE ON slides BEGIN ${removeWords}; END`);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const name of Object.values(CATALOG_WORD_TRIGGERS)) await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
  await knex.schema.dropTableIfExists(CATALOG_WORD_COUNTS_TABLE);
  await knex.schema.dropTableIfExists(CATALOG_WORDS_TABLE);
}
