import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Knex } from 'knex';
import { writeCatalogWords } from '../../server/catalog/catalog-words.repository.js';
import { CATALOG_SORTS } from '../../server/catalog/catalog-query.js';
import { CatalogRepository, type CatalogCriteria } from '../../server/catalog/catalog.repository.js';
import type { Vocabulary } from '../../server/ingest/types.js';
import { packageRoot } from '../../server/package-info.js';
import { seedCatalogRows } from '../support/catalog-rows.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';

/**
 * The catalog keeps a search's counts while the count tables it summed them
 * from are unchanged (server/catalog/counts-cache.ts). Each test changes
 * slides as any writer would (another process, another node: plain SQL, the
 * triggers doing the rest) and compares the kept counts with those of a new
 * repository, which has kept nothing.
 */

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;

let database: TestDatabase;

test.before(async () => {
  database = await createMigratedTestDatabase();
  await seedCatalogRows(database.db.knex, vocabulary, { slides: 600, auditEvents: 0, users: 2 });
});

test.after.always(async () => {
  await database?.drop();
});

/** The tables each statement `work` sends reads first. */
async function tablesRead(knex: Knex, work: () => Promise<unknown>): Promise<string[]> {
  const tables: string[] = [];
  const listener = (query: { sql: string }) => tables.push(/from [`"]?(\w+)[`"]?/i.exec(query.sql)?.[1] ?? '?');
  knex.on('query', listener);
  try {
    await work();
  } finally {
    knex.removeListener('query', listener);
  }
  return tables;
}

async function publishedWith(knex: Knex, where: Record<string, string>): Promise<number> {
  const row = (await knex('slides').where({ status: 'published', ...where }).orderBy('id').first('id')) as { id: number } | undefined;
  if (!row) throw new Error(`no published slide with ${JSON.stringify(where)}`);
  return Number(row.id);
}

const LIVER: CatalogCriteria = { facets: { organ: ['LV'] }, terms: [] };
const INVASION: CatalogCriteria = { facets: {}, terms: [{ text: 'invasion', codes: {} }] };

test.serial(`kept counts are read again only when a slide's status or facets change, and then equal fresh ones, on ${testDialect}`, async (t) => {
  const knex = database.db.knex;
  const catalog = new CatalogRepository(knex);
  const first = await catalog.counts(LIVER);
  t.true(first.total > 0);
  t.deepEqual(await tablesRead(knex, () => catalog.counts(LIVER)), ['catalog_counts'], 'unchanged: only the version is read');
  t.deepEqual(await catalog.counts(LIVER), first);

  const liver = await publishedWith(knex, { organ: 'LV' });
  await knex('slides').where({ id: liver }).update({ status: 'withdrawn' });
  const withdrawn = await catalog.counts(LIVER);
  t.is(withdrawn.total, first.total - 1, 'a withdrawn slide is no longer counted');
  t.deepEqual(withdrawn, await new CatalogRepository(knex).counts(LIVER));

  await knex('slides').where({ id: liver }).update({ status: 'published', organ: 'CO' });
  t.is((await catalog.counts(LIVER)).total, first.total - 1, 'published again under another organ');
  t.deepEqual(await catalog.counts({ facets: {}, terms: [] }), await new CatalogRepository(knex).counts({ facets: {}, terms: [] }));

  await knex('slides').where({ id: liver }).update({ organ: 'LV' });
  t.deepEqual(await catalog.counts(LIVER), first, 'back as it was');
});

test.serial(`kept counts of a text search follow its words: written, removed, and their slides withdrawn, on ${testDialect}`, async (t) => {
  const knex = database.db.knex;
  const catalog = new CatalogRepository(knex);
  const first = await catalog.counts(INVASION);
  t.true(first.total > 0);
  t.deepEqual(await tablesRead(knex, () => catalog.counts(INVASION)), ['catalog_counts'], 'unchanged: only the versions are read (one statement)');
  // The same word with a facet: a search of its own, from the word's kept combinations.
  const filtered = (organ: string): CatalogCriteria => ({ ...INVASION, facets: { organ: [organ] } });
  const organs = first.facets.organ.map((entry) => entry.value);
  t.deepEqual(await tablesRead(knex, () => catalog.counts(filtered(organs[0]!))), ['catalog_counts'], "the word's combinations kept from the search without the facet");
  for (const organ of organs) t.deepEqual(await catalog.counts(filtered(organ)), await new CatalogRepository(knex).counts(filtered(organ)), organ);

  const without = (await knex('slides').where({ status: 'published' }).whereNull('pathology_info').orderBy('id').first('id', 'name')) as { id: number; name: string };
  await knex('slides').where({ id: without.id }).update({ pathology_info: 'angiolymphatic invasion' });
  await writeCatalogWords(knex, [{ id: Number(without.id), name: without.name, pathologyInfo: 'angiolymphatic invasion' }]);
  const added = await catalog.counts(INVASION);
  t.is(added.total, first.total + 1, 'a slide given the word is counted');
  t.deepEqual(added, await new CatalogRepository(knex).counts(INVASION));
  for (const organ of organs) t.deepEqual(await catalog.counts(filtered(organ)), await new CatalogRepository(knex).counts(filtered(organ)), `${organ}, after the word was written`);
  const withOrgan = await catalog.counts(filtered(String((await knex('slides').where({ id: without.id }).first('organ')).organ)));
  t.true(withOrgan.total > 0);

  await knex('slides').where({ id: without.id }).update({ status: 'withdrawn' });
  t.deepEqual(await catalog.counts(INVASION), first, 'withdrawn, it is counted out');

  await knex('slides').where({ id: without.id }).update({ status: 'published' });
  await knex('slides').where({ id: without.id }).update({ pathology_info: null });
  await writeCatalogWords(knex, [{ id: Number(without.id), name: without.name, pathologyInfo: null }]);
  t.deepEqual(await catalog.counts(INVASION), first, 'its words removed, it is counted out');
});

test.serial(`a page found knowing how many match is the page found without, for every sort, on ${testDialect}`, async (t) => {
  const knex = database.db.knex;
  const catalog = new CatalogRepository(knex);
  const dataset = ((await knex('slides').where({ status: 'published' }).whereNotNull('dataset').first('dataset')) as { dataset: string }).dataset;
  // A combination few slides have: on SQLite its page is read through a facet's index and sorted, not walked.
  const rare = (await knex('slides')
    .where({ status: 'published' })
    .whereNotNull('marker')
    .select('organ', 'marker')
    .count({ n: '*' })
    .groupBy('organ', 'marker')
    .orderBy('n')
    .first()) as { organ: string; marker: string; n: number | string };
  t.true(Number(rare.n) <= 10, `a rare combination: ${JSON.stringify(rare)}`);
  const sortedPages: string[] = [];
  const listener = (query: { sql: string }) => {
    if (/order by \+/i.test(query.sql)) sortedPages.push(query.sql);
  };
  knex.on('query', listener);
  t.teardown(() => void knex.removeListener('query', listener));
  const filters: CatalogCriteria[] = [
    { facets: { organ: [rare.organ], marker: [rare.marker] }, terms: [] },
    LIVER,
    { facets: { organ: ['LV', 'CO'], stain: ['IHC'] }, terms: [] },
    { facets: { dataset: [dataset], stain: ['HE'] }, terms: [] },
    { facets: { organ: ['PR'], dataset: [dataset] }, terms: [] },
    INVASION,
  ];
  for (const criteria of filters) {
    const { total } = await catalog.counts(criteria);
    for (const [name, sort] of Object.entries(CATALOG_SORTS)) {
      for (const offset of [0, 24, Math.max(0, total - 5), total]) {
        const known = await catalog.page(criteria, sort, offset, 24, total);
        t.deepEqual(
          known.map((slide) => slide.id),
          (await catalog.page(criteria, sort, offset, 24)).map((slide) => slide.id),
          `${JSON.stringify(criteria)} by ${name} from ${offset}`,
        );
      }
    }
  }
  if (testDialect === 'sqlite') t.true(sortedPages.length > 0, 'the rare combination was read and sorted');
  else t.deepEqual(sortedPages, [], 'MariaDB is left to its planner');
  t.deepEqual(await tablesRead(knex, () => catalog.page(LIVER, CATALOG_SORTS.name, 10, 24, 10)), [], 'a page past the matches is not looked for');
});
