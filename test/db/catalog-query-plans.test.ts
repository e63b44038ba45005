import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Knex } from 'knex';
import { AuditRepository } from '../../server/audit/index.js';
import { CATALOG_SORTS } from '../../server/catalog/catalog-query.js';
import { CatalogRepository, type CatalogCriteria } from '../../server/catalog/catalog.repository.js';
import { SlideStatusRepository } from '../../server/catalog/slide-status.repository.js';
import { IngestRepository } from '../../server/ingest/ingest.repository.js';
import type { Vocabulary } from '../../server/ingest/types.js';
import { packageRoot } from '../../server/package-info.js';
import { seedCatalogRows, type SeededCatalog } from '../support/catalog-rows.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';

/**
 * The query plans of the catalog's and the administration lists' queries, as
 * the repositories send them, on a seeded database (test/support/catalog-rows.ts):
 * each reads the big tables (slides, audit_log, ingest_records) through an
 * index — EXPLAIN QUERY PLAN on SQLite, EXPLAIN on MariaDB — and no page is
 * sorted after reading every row. A change that drops or bypasses one of the
 * indexes (see the catalog-counts migration) fails here. `catalog_counts` is
 * small and read whole on purpose. A text search reads the word index
 * (`catalog_words`, `catalog_word_counts`: see the catalog-words migration)
 * by ranges of words, never whole.
 */

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;
const WATCHED = ['slides', 'audit_log', 'ingest_records', 'catalog_words', 'catalog_word_counts'];
const WORD_TABLES = ['catalog_words', 'catalog_word_counts'];
/** The aliases the ingest list gives its tables. */
const ALIASES: Record<string, string> = { r: 'ingest_records', s: 'slides' };

let database: TestDatabase;
let seeded: SeededCatalog;

test.before(async () => {
  database = await createMigratedTestDatabase();
  seeded = await seedCatalogRows(database.db.knex, vocabulary, { slides: 4000, auditEvents: 40_000, users: 100 });
  await database.db.knex.raw(testDialect === 'mariadb' ? 'ANALYZE TABLE slides, audit_log, ingest_records, users' : 'ANALYZE');
});

test.after.always(async () => {
  await database?.drop();
});

interface Statement {
  sql: string;
  bindings: readonly unknown[];
}

/** The statements `work` sends (the tests run one at a time, so that only its own are seen). */
async function statementsOf(knex: Knex, work: () => Promise<unknown>): Promise<Statement[]> {
  const sent: Statement[] = [];
  const listener = (query: { sql: string; bindings?: readonly unknown[] }) => sent.push({ sql: query.sql, bindings: query.bindings ?? [] });
  knex.on('query', listener);
  try {
    await work();
  } finally {
    knex.removeListener('query', listener);
  }
  return sent;
}

interface PlanOptions {
  /** The statement must read its rows in the order asked for, without sorting them (no filter but the status, or none). */
  ordered: boolean;
  /** The table may be walked in its primary key's order (newest first, stopping at the page's end): SQLite calls this SCAN too. */
  keyOrder?: string;
  minimum?: number;
  /** The statement reading `slides` without `id IN (…)` (a page's ids) must find what it tests in the index it reads, without the rows. */
  indexAlone?: boolean;
}

/** What is wrong with a statement's plan: a watched table read whole, or a page sorted after reading. */
async function planProblems(knex: Knex, statement: Statement, options: PlanOptions): Promise<string[]> {
  const problems: string[] = [];
  if (testDialect === 'sqlite') {
    const plan = (await knex.raw(`EXPLAIN QUERY PLAN ${statement.sql}`, statement.bindings as Knex.RawBinding[])) as { detail: string }[];
    for (const { detail } of plan) {
      const scanned = /^SCAN (\w+)(?: AS \w+)?$/.exec(detail);
      if (scanned && WATCHED.includes(scanned[1]!) && scanned[1] !== options.keyOrder) problems.push(`reads every row of ${scanned[1]} (${detail})`);
      if (options.ordered && /USE TEMP B-TREE FOR (ORDER BY|RIGHT PART OF ORDER BY)/.test(detail)) problems.push(`sorts its rows after reading them (${detail})`);
      if (options.indexAlone && !/in \(\?/.test(statement.sql) && /^SEARCH slides /.test(detail) && !/USING COVERING INDEX/.test(detail)) problems.push(`reads the slides' rows (${detail})`);
    }
    return problems.map((problem) => `${problem}\n  plan: ${plan.map((row) => row.detail).join(' | ')}`);
  }
  const [plan] = (await knex.raw(`EXPLAIN ${statement.sql}`, statement.bindings as Knex.RawBinding[])) as [{ table: string | null; type: string | null; key: string | null; Extra: string | null }[]];
  for (const row of plan) {
    const table = ALIASES[row.table ?? ''] ?? row.table ?? '';
    if (WATCHED.includes(table) && row.type === 'ALL') problems.push(`reads every row of ${row.table} (type ALL)`);
    if (options.ordered && /Using filesort/.test(row.Extra ?? '')) problems.push(`sorts its rows after reading them (${row.table}: ${row.Extra})`);
    if (options.indexAlone && !/in \(\?/.test(statement.sql) && table === 'slides' && !/Using index/.test(row.Extra ?? '')) problems.push(`reads the slides' rows (${row.table}: ${row.Extra})`);
  }
  return problems.map((problem) => `${problem}\n  plan: ${JSON.stringify(plan)}`);
}

async function assertIndexed(t: import('ava').ExecutionContext, work: () => Promise<unknown>, options: PlanOptions): Promise<void> {
  const knex = database.db.knex;
  const statements = (await statementsOf(knex, work)).filter((statement) => /^\s*select/i.test(statement.sql));
  t.true(statements.length >= (options.minimum ?? 1), 'the work sent its queries');
  for (const statement of statements) {
    // A read of catalog_counts alone is meant to read it whole.
    if (/from [`"]?catalog_counts[`"]?/i.test(statement.sql) && !/slides/.test(statement.sql)) continue;
    t.deepEqual(await planProblems(knex, statement, options), [], statement.sql);
  }
}

const everything: CatalogCriteria = { facets: {}, terms: [] };

for (const [name, sort] of Object.entries(CATALOG_SORTS)) {
  test.serial(`a catalog page sorted by ${name} is read in order from an index on ${testDialect}`, async (t) => {
    const catalog = new CatalogRepository(database.db.knex);
    await assertIndexed(t, () => catalog.page(everything, sort, 24 * 40, 24), { ordered: true });
    // Filtered, the database may as well find the rows by a facet's index and sort them.
    await assertIndexed(t, () => catalog.page({ facets: { organ: ['LV', 'CO'], stain: ['IHC'] }, terms: [] }, sort, 0, 24), { ordered: false });
    // Knowing that most slides match, the page is found in the sort's index, which holds the facets: no slide's row is read to test them.
    const common: CatalogCriteria = { facets: { organ: ['LV', 'CO', 'KI'] }, terms: [] };
    const { total } = await catalog.counts(common);
    await assertIndexed(t, () => catalog.page(common, sort, 24 * 10, 24, total), { ordered: true, indexAlone: true, minimum: 1 });
  });
}

test.serial(`a catalog search's total and facet counts read catalog_counts, not the slides, on ${testDialect}`, async (t) => {
  const catalog = new CatalogRepository(database.db.knex);
  const statements = await statementsOf(database.db.knex, () => catalog.counts({ facets: { organ: ['LV'] }, origins: { scannerVendor: ['aperio'] }, terms: [] }));
  t.deepEqual(
    statements.map((statement) => /from [`"]?(\w+)[`"]?/i.exec(statement.sql)?.[1]),
    ['catalog_counts', 'catalog_counts'],
    'the version of the counts (the sum of their changes), then the counts',
  );
});

test.serial(`a filter expression's slides (a manifest, a dataset) are found through indexes on ${testDialect}`, async (t) => {
  const catalog = new CatalogRepository(database.db.knex);
  await assertIndexed(t, () => catalog.publishedIds({ facets: { dataset: [seeded.datasets[0]!] }, terms: [] }, 10_000), { ordered: false });
});

test.serial(`the curators' slide list is read in name order from an index on ${testDialect}`, async (t) => {
  const slides = new SlideStatusRepository(database.db.knex);
  // The first page, as the list opens: a deep offset reads through the rows before it, and MariaDB may then rather sort.
  await assertIndexed(t, () => slides.list({ limit: 50, offset: 0 }), { ordered: true, minimum: 2 });
  await assertIndexed(t, () => slides.list({ status: 'withdrawn', limit: 50, offset: 0 }), { ordered: false, minimum: 2 });
});

test.serial(`the ingest records are read newest first from an index on ${testDialect}`, async (t) => {
  const ingest = new IngestRepository(database.db.knex);
  await assertIndexed(t, () => ingest.list({ limit: 50, offset: 1000 }), { ordered: true, keyOrder: 'ingest_records' });
  await assertIndexed(t, () => ingest.list({ outcome: 'quarantined', limit: 50, offset: 0 }), { ordered: true });
});

test.serial(`an audit page is read newest first from an index, its total from the counts per action, on ${testDialect}`, async (t) => {
  const audit = new AuditRepository(database.db.knex);
  await assertIndexed(t, () => audit.list({ limit: 50, offset: 5000 }), { ordered: true, keyOrder: 'audit_log' });
  // A family of actions is a LIKE on the action, matched while walking the log newest first.
  await assertIndexed(t, () => audit.list({ action: 'download.*', limit: 50, offset: 0 }), { ordered: true, keyOrder: 'audit_log' });
  await assertIndexed(t, () => audit.list({ actorId: seeded.userIds[0]!, limit: 50, offset: 0 }), { ordered: true, minimum: 2 });
  const counted = await statementsOf(database.db.knex, () => audit.list({ limit: 50, offset: 0 }));
  t.true(counted.some((statement) => /audit_action_counts/.test(statement.sql)), 'the total is summed from audit_action_counts');
  t.false(counted.some((statement) => /count\(\*\)/i.test(statement.sql) && /audit_log/.test(statement.sql)), 'no count of every event');
});

/** How each statement that reads a word table reads it: by a range of words in its index, or, within a chain of ranges, by slide. */
async function wordReads(knex: Knex, statement: Statement): Promise<{ ranges: number; problems: string[] }> {
  let ranges = 0;
  const problems: string[] = [];
  if (testDialect === 'sqlite') {
    const plan = (await knex.raw(`EXPLAIN QUERY PLAN ${statement.sql}`, statement.bindings as Knex.RawBinding[])) as { detail: string }[];
    for (const { detail } of plan) {
      const read = /^(?:SEARCH|SCAN) (catalog_words|catalog_word_counts)\b/.exec(detail);
      if (!read) continue;
      if (/^SEARCH \w+ USING (?:COVERING )?INDEX \w+ \(word>\? AND word<\?\)/.test(detail)) ranges++;
      else if (!/^SEARCH catalog_words USING (?:COVERING )?INDEX \w+ \((?:word>\? AND word<\? AND )?slide_id=\?\)/.test(detail)) problems.push(`${read[1]} is not read by a range of words (${detail})`);
    }
    return { ranges, problems: problems.map((problem) => `${problem}\n  plan: ${plan.map((row) => row.detail).join(' | ')}`) };
  }
  const [plan] = (await knex.raw(`EXPLAIN ${statement.sql}`, statement.bindings as Knex.RawBinding[])) as [{ table: string | null; type: string | null; key: string | null }[]];
  for (const row of plan) {
    if (!WORD_TABLES.includes(row.table ?? '')) continue;
    if (row.type === 'range' && ['PRIMARY', 'catalog_word_counts_unique', 'catalog_word_counts_word_changes_index'].includes(row.key ?? '')) ranges++;
    else if (!['ref', 'eq_ref'].includes(row.type ?? '')) problems.push(`${row.table} is not read by a range of words (type ${row.type}, key ${row.key})`);
  }
  return { ranges, problems: problems.map((problem) => `${problem}\n  plan: ${JSON.stringify(plan)}`) };
}

const TEXT_SEARCHES: [string, CatalogCriteria][] = [
  ['a word of the pathology text', { facets: {}, terms: [{ text: 'invasion', codes: {} }] }],
  ['the start of a word', { facets: {}, terms: [{ text: 'metast', codes: {} }] }],
  ['two words', { facets: {}, terms: [{ text: 'lymph', codes: {} }, { text: 'metastasis', codes: {} }] }],
  ['a word or an organ by its name', { facets: {}, terms: [{ text: 'liver', codes: { organ: ['LV'] } }] }],
  ['a word with a facet filter', { facets: { stain: ['HE'] }, terms: [{ text: 'cirrhosis', codes: {} }] }],
  ['a term with punctuation', { facets: {}, terms: [{ text: 'post-neoadjuvant', codes: {} }] }],
];

for (const [name, criteria] of TEXT_SEARCHES) {
  test.serial(`a text search (${name}) reads the word index by ranges of words, its page and counts through indexes, on ${testDialect}`, async (t) => {
    const knex = database.db.knex;
    const catalog = new CatalogRepository(knex);
    for (const [work, what] of [
      [() => catalog.page(criteria, CATALOG_SORTS['-created'], 0, 24), 'page'],
      [() => catalog.page(criteria, CATALOG_SORTS.name, 24 * 3, 24), 'a later page by name'],
      [() => catalog.counts(criteria), 'counts'],
    ] as const) {
      await assertIndexed(t, work, { ordered: false });
      const statements = (await statementsOf(knex, work)).filter((statement) => WORD_TABLES.some((table) => statement.sql.includes(table)));
      t.true(statements.length > 0, `the ${what} reads the word index`);
      let ranges = 0;
      for (const statement of statements) {
        const read = await wordReads(knex, statement);
        t.deepEqual(read.problems, [], statement.sql);
        ranges += read.ranges;
      }
      t.true(ranges > 0, `the ${what} seeks words by range`);
    }
  });
}
