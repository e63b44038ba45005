import type { Knex } from 'knex';
import { CATALOG_WORD_COUNTS_TABLE } from '../../catalog/catalog-words.repository.js';
import type { DialectName } from '../dialect.js';
import { CATALOG_COUNT_TRIGGERS, createCatalogCountTriggers, hasIndex } from './2026-12-07-72-catalog-counts.js';
import { CATALOG_WORD_TRIGGERS, createCatalogWordTriggers } from './2026-12-07-80-catalog-words.js';

/**
 * What makes every catalog page cheap at 100,000 slides (docs/scaling.md,
 * "A large catalog"):
 *
 * - A `changes` column on `catalog_counts` and `catalog_word_counts`: every
 * trigger that writes a row of either adds 1 to it, and a combination's row
 * is never deleted, so the sum of `changes` over a table (or over a word's
 * range) grows with every change to the counts it covers. The catalog keeps
 * what it summed from the counts while those sums stay the same
 * (server/catalog/counts-cache.ts), instead of reading thousands of rows for
 * every page. A version kept in one row would do the same with one read, but
 * every writer of slides, on every node of a cluster, would write that row.
 *   Indexes of `changes` (by word, for the words) let the sums be read
 *   from the indexes alone.
 * - The catalog's sort indexes hold every facet column after the sort's key,
 *   so that a filtered page is found by walking the sort's index and testing
 *   each entry there, without reading the slide's row (wide: the pathology
 *   text, the annotation summary). They replace the indexes of the sort keys
 *   alone.
 */

const TABLES = ['catalog_counts', CATALOG_WORD_COUNTS_TABLE] as const;
const WORD_CHANGES_INDEX = 'catalog_word_counts_word_changes_index';
const COUNT_CHANGES_INDEX = 'catalog_counts_changes_index';
const FACETS = ['organ', 'histology', 'stain', 'marker', 'differentiation', 'annotation_method', 'dataset', 'scanner_vendor', 'original_format'];
const SORT_INDEXES = [
  { name: 'slides_catalog_created_index', key: 'created_at', replaces: 'slides_status_created_index' },
  { name: 'slides_catalog_size_index', key: 'file_size', replaces: 'slides_status_size_index' },
  { name: 'slides_catalog_name_index', key: 'name', replaces: 'slides_status_name_index' },
] as const;
const RECREATED = [CATALOG_COUNT_TRIGGERS.insert, CATALOG_COUNT_TRIGGERS.update, CATALOG_COUNT_TRIGGERS.delete, CATALOG_WORD_TRIGGERS.wordInsert, CATALOG_WORD_TRIGGERS.wordDelete, CATALOG_WORD_TRIGGERS.slideUpdate];

export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  for (const table of TABLES) {
    if (!(await knex.schema.hasColumn(table, 'changes'))) await knex.schema.alterTable(table, (t) => t.bigInteger('changes').notNullable().defaultTo(0));
  }
  if (!(await hasIndex(knex, dialect, 'catalog_counts', COUNT_CHANGES_INDEX))) await knex.schema.alterTable('catalog_counts', (t) => t.index(['changes'], COUNT_CHANGES_INDEX));
  if (!(await hasIndex(knex, dialect, CATALOG_WORD_COUNTS_TABLE, WORD_CHANGES_INDEX))) {
    await knex.schema.alterTable(CATALOG_WORD_COUNTS_TABLE, (t) => t.index(['word', 'changes'], WORD_CHANGES_INDEX));
  }
  for (const name of RECREATED) await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
  await createCatalogCountTriggers(knex, dialect, { countChanges: true });
  await createCatalogWordTriggers(knex, dialect, { countChanges: true });
  for (const index of SORT_INDEXES) {
    if (!(await hasIndex(knex, dialect, 'slides', index.name))) await knex.schema.alterTable('slides', (t) => t.index(['status', index.key, 'id', ...FACETS], index.name));
    if (await hasIndex(knex, dialect, 'slides', index.replaces)) await knex.schema.alterTable('slides', (t) => t.dropIndex([], index.replaces));
  }
}

export async function down(knex: Knex, dialect: DialectName): Promise<void> {
  for (const index of SORT_INDEXES) {
    await knex.schema.alterTable('slides', (t) => t.index(['status', index.key, 'id'], index.replaces));
    await knex.schema.alterTable('slides', (t) => t.dropIndex([], index.name));
  }
  await knex.schema.alterTable(CATALOG_WORD_COUNTS_TABLE, (t) => t.dropIndex([], WORD_CHANGES_INDEX));
  await knex.schema.alterTable('catalog_counts', (t) => t.dropIndex([], COUNT_CHANGES_INDEX));
  for (const name of RECREATED) await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
  await createCatalogCountTriggers(knex, dialect);
  await createCatalogWordTriggers(knex, dialect);
  // Not knex's dropColumn, which rebuilds the table on SQLite, where the triggers on slides name it.
  for (const table of TABLES) await knex.raw(`ALTER TABLE ${table} DROP COLUMN changes`);
}
