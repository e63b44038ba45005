import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';
import { serialisedOnMariadb } from './2026-11-29-06-audit.js';

/**
 * What keeps a catalog of 100,000 slides and an audit log of millions of
 * events quick (docs/scaling.md, "A large catalog"):
 *
 * - `catalog_counts`: the published slides counted by each combination of
 *   facet values (and what they came from), so that a search's facet counts
 *   and total are sums over a few thousand combinations instead of scans of
 *   every slide. A missing value is stored as '' (a unique key treats NULLs as
 *   distinct). Triggers on `slides` keep it current for every writer; a
 *   combination whose last slide went keeps its row at 0.
 * - `audit_action_counts`: the audit events counted by action, kept by a
 *   trigger on `audit_log` (which is append-only), so that the audit page's
 *   total is not a count of every event.
 * - indexes that let each sort of the catalog and each list read its page
 *   in order from an index instead of sorting the table.
 *
 * On SQLite, a later migration that makes knex rebuild `slides` (dropping or
 * altering a column) drops its triggers with the old table and must create
 * them again (`createCatalogCountTriggers`, with `countChanges`). The counts are filled in before
 * the triggers exist: run migrations with the application stopped, as for
 * every migration.
 */

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

const SLIDE_INDEXES = {
  slides_status_created_index: ['status', 'created_at', 'id'],
  slides_status_size_index: ['status', 'file_size', 'id'],
  slides_status_name_index: ['status', 'name', 'id'],
} as const;
const INGEST_INDEX = 'ingest_records_outcome_id_index';

export const CATALOG_COUNT_TRIGGERS = { insert: 'catalog_counts_after_insert', update: 'catalog_counts_after_update', delete: 'catalog_counts_after_delete' } as const;
const AUDIT_COUNT_TRIGGER = 'audit_action_counts_after_insert';

export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  for (const [name, columns] of Object.entries(SLIDE_INDEXES)) {
    if (!(await hasIndex(knex, dialect, 'slides', name))) await knex.schema.alterTable('slides', (t) => t.index([...columns], name));
  }
  if (!(await hasIndex(knex, dialect, 'ingest_records', INGEST_INDEX))) await knex.schema.alterTable('ingest_records', (t) => t.index(['outcome', 'id'], INGEST_INDEX));

  if (!(await knex.schema.hasTable('catalog_counts'))) {
    await knex.schema.createTable('catalog_counts', (t) => {
      applyTableDefaults(t, dialect);
      for (const [name, length] of FACET_COLUMNS) t.string(name, length).notNullable().defaultTo('');
      t.integer('slides').notNullable().defaultTo(0);
      t.unique([...COLUMNS], { indexName: 'catalog_counts_combination_unique' });
    });
    const coalesced = COLUMNS.map((c) => `COALESCE(${c}, '')`).join(', ');
    await knex.raw(`INSERT INTO catalog_counts (${COLUMN_LIST}, slides) SELECT ${coalesced}, COUNT(*) FROM slides WHERE status = 'published' GROUP BY ${coalesced}`);
  }
  await createCatalogCountTriggers(knex, dialect);

  if (!(await knex.schema.hasTable('audit_action_counts'))) {
    await knex.schema.createTable('audit_action_counts', (t) => {
      applyTableDefaults(t, dialect);
      t.string('action', 64).notNullable().primary();
      t.bigInteger('events').notNullable().defaultTo(0);
    });
    await knex.raw('INSERT INTO audit_action_counts (action, events) SELECT action, COUNT(*) FROM audit_log GROUP BY action');
  }
  await serialisedOnMariadb(knex, dialect, async (conn) => {
    await conn.raw(
      dialect === 'mariadb'
        ? `CREATE TRIGGER IF NOT EXISTS ${AUDIT_COUNT_TRIGGER} AFTER INSERT ON audit_log FOR EACH ROW INSERT INTO audit_action_counts (action, events) VALUES (NEW.action, 1) ON DUPLICATE KEY UPDATE events = events + 1`
        : `CREATE TRIGGER IF NOT EXISTS ${AUDIT_COUNT_TRIGGER} AFTER INSERT ON audit_log BEGIN INSERT INTO audit_action_counts (action, events) VALUES (NEW.action, 1) ON CONFLICT (action) DO UPDATE SET events = events + 1; END`,
    );
  });
}

/**
 * The triggers that keep `catalog_counts` equal to the published slides
 * counted by combination; with `countChanges` (from the catalog-count-changes
 * migration on), each also adds 1 to the `changes` of every row it writes.
 */
export async function createCatalogCountTriggers(knex: Knex, dialect: DialectName, options: { countChanges?: boolean } = {}): Promise<void> {
  const values = (row: 'NEW' | 'OLD') => COLUMNS.map((c) => `COALESCE(${row}.${c}, '')`).join(', ');
  const same = (row: 'NEW' | 'OLD') => COLUMNS.map((c) => `${c} = COALESCE(${row}.${c}, '')`).join(' AND ');
  const [changed, inserted, plusOne] = options.countChanges ? [', changes = changes + 1', ', changes', ', 1'] : ['', '', ''];
  const decrement = `UPDATE catalog_counts SET slides = slides - 1${changed} WHERE ${same('OLD')}`;
  await serialisedOnMariadb(knex, dialect, async (conn) => {
    if (dialect === 'mariadb') {
      const increment = `INSERT INTO catalog_counts (${COLUMN_LIST}, slides${inserted}) VALUES (${values('NEW')}, 1${plusOne}) ON DUPLICATE KEY UPDATE slides = slides + 1${changed}`;
      const unchanged = ['status', ...COLUMNS].map((c) => `OLD.${c} <=> NEW.${c}`).join(' AND ');
      await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.insert} AFTER INSERT ON slides FOR EACH ROW BEGIN IF NEW.status = 'published' THEN ${increment}; END IF; END`);
      await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.delete} AFTER DELETE ON slides FOR EACH ROW BEGIN IF OLD.status = 'published' THEN ${decrement}; END IF; END`);
      await conn.raw(
        `CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.update} AFTER UPDATE ON slides FOR EACH ROW BEGIN IF NOT (${unchanged}) THEN ` +
          `IF OLD.status = 'published' THEN ${decrement}; END IF; IF NEW.status = 'published' THEN ${increment}; END IF; END IF; END`,
      );
      return;
    }
    const upsert = `ON CONFLICT (${COLUMN_LIST}) DO UPDATE SET slides = slides + 1${changed}`;
    await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.insert} AFTER INSERT ON slides WHEN NEW.status = 'published' BEGIN INSERT INTO catalog_counts (${COLUMN_LIST}, slides${inserted}) VALUES (${values('NEW')}, 1${plusOne}) ${upsert}; END`);
    await conn.raw(`CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.delete} AFTER DELETE ON slides WHEN OLD.status = 'published' BEGIN ${decrement}; END`);
    await conn.raw(
      `CREATE TRIGGER IF NOT EXISTS ${CATALOG_COUNT_TRIGGERS.update} AFTER UPDATE OF status, ${COLUMN_LIST} ON slides BEGIN ` +
        `${decrement} AND OLD.status = 'published'; ` +
        `INSERT INTO catalog_counts (${COLUMN_LIST}, slides${inserted}) SELECT ${values('NEW')}, 1${plusOne} WHERE NEW.status = 'published' ${upsert}; END`,
    );
  });
}

export async function hasIndex(knex: Knex, dialect: DialectName, table: string, name: string): Promise<boolean> {
  if (dialect === 'mariadb') {
    const [rows] = (await knex.raw(`SHOW INDEX FROM \`${table}\` WHERE Key_name = ?`, [name])) as [unknown[]];
    return rows.length > 0;
  }
  const rows = (await knex.raw(`SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?`, [name])) as unknown[];
  return rows.length > 0;
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TRIGGER IF EXISTS ${AUDIT_COUNT_TRIGGER}`);
  for (const name of Object.values(CATALOG_COUNT_TRIGGERS)) await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
  await knex.schema.dropTableIfExists('audit_action_counts');
  await knex.schema.dropTableIfExists('catalog_counts');
  await knex.schema.alterTable('ingest_records', (t) => t.dropIndex(['outcome', 'id'], INGEST_INDEX));
  await knex.schema.alterTable('slides', (t) => {
    for (const [name, columns] of Object.entries(SLIDE_INDEXES)) t.dropIndex([...columns], name);
  });
}
