import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import type { Knex } from 'knex';
import { createAuditLog } from '../../server/audit/create.js';
import { CATALOG_SORTS } from '../../server/catalog/catalog-query.js';
import { CATALOG_WORD_COUNTS_TABLE, CATALOG_WORDS_TABLE, writeCatalogWords } from '../../server/catalog/catalog-words.repository.js';
import { CatalogRepository, type CatalogCriteria } from '../../server/catalog/catalog.repository.js';
import { CatalogService } from '../../server/catalog/catalog.service.js';
import { createSlideRelease } from '../../server/catalog/slide-release.js';
import { SlideStatusRepository } from '../../server/catalog/slide-status.repository.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import type { BagSlide } from '../../server/datasets/bag-contents.js';
import { ImportsRepository } from '../../server/datasets/imports.repository.js';
import { dialectOf } from '../../server/db/dialect.js';
import { toDbTime } from '../../server/db/index.js';
import * as catalogWords from '../../server/db/migrations/2026-12-07-80-catalog-words.js';
import * as catalogCountChanges from '../../server/db/migrations/2026-12-07-90-catalog-count-changes.js';
import type { SlideMetadata, Vocabulary } from '../../server/ingest/types.js';
import { packageRoot } from '../../server/package-info.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';

/**
 * The catalog's word index on a real database: every writer of slides keeps
 * it, the migration fills it for the slides already stored, and a text search
 * finds slides by words that start with its terms.
 */

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;
const FACTS = { vendor: 'aperio', width: 40_000, height: 30_000, levelCount: 4, mppX: 0.2527, mppY: 0.2527, objectivePower: 20 };

let database: TestDatabase;

test.before(async () => {
  database = await createMigratedTestDatabase();
});

test.after.always(async () => {
  await database?.drop();
});

const metadata = (pathologyInfo: string | null): SlideMetadata => ({
  organ: 'LV',
  histology: 'HCC',
  stain: 'HE',
  marker: null,
  differentiation: 'MD',
  pathologyInfo,
  annotationMethod: null,
  dataset: null,
});

async function ingested(name: string, pathologyInfo: string | null): Promise<number> {
  const slide = await new SlidesRepository(database.db.knex).create(
    { name, filePath: `${name}.svs`, fileSize: 1000, sha256: null, ...FACTS },
    new Date(),
    { metadata: metadata(pathologyInfo), originalSha256: `${name}-original`, annotationPath: null, annotationSummary: null },
  );
  return slide.id;
}

async function wordsOfSlide(id: number): Promise<string[]> {
  return ((await database.db.knex(CATALOG_WORDS_TABLE).where({ slide_id: id }).orderBy('word').select('word')) as { word: string }[]).map((row) => row.word);
}

/** catalog_word_counts, as the triggers keep it, against the published slides' words counted afresh. */
async function assertWordCounts(t: import('ava').ExecutionContext, knex: Knex = database.db.knex): Promise<void> {
  const columns = ['organ', 'histology', 'stain', 'marker', 'differentiation', 'annotation_method', 'dataset', 'scanner_vendor', 'original_format'];
  const key = (row: Record<string, unknown>) => [row.word, ...columns.map((c) => row[c] ?? '')].join('|');
  const kept = ((await knex(CATALOG_WORD_COUNTS_TABLE).where('slides', '>', 0).select('word', ...columns, 'slides')) as Record<string, unknown>[]).map((row) => `${key(row)} ${Number(row.slides)}`);
  const fresh = (
    (await knex(`${CATALOG_WORDS_TABLE} as w`)
      .join('slides as s', 's.id', 'w.slide_id')
      .where('s.status', 'published')
      .select('w.word', ...columns.map((c) => `s.${c}`))) as Record<string, unknown>[]
  ).map(key);
  const counted = new Map<string, number>();
  for (const k of fresh) counted.set(k, (counted.get(k) ?? 0) + 1);
  t.deepEqual(kept.sort(), [...counted].map(([k, n]) => `${k} ${n}`).sort(), 'catalog_word_counts counts the published slides by word and combination');
}

/** The ids of the published slides a one-term search (without codes) finds. */
async function found(text: string): Promise<number[]> {
  const criteria: CatalogCriteria = { facets: {}, terms: [{ text, codes: {} }] };
  const result = await new CatalogRepository(database.db.knex).search(criteria, CATALOG_SORTS.name, 0, 1000);
  return result.slides.map((slide) => slide.id);
}

test.serial(`an ingested slide's name and pathology information are indexed word by word on ${testDialect}`, async (t) => {
  const id = await ingested('LIV_HCC_0001', 'Edmondson-Steiner grade II, Gleason 3+4=7');
  t.deepEqual(await wordsOfSlide(id), ['0001', '3', '4', '7', 'edmondson', 'gleason', 'grade', 'hcc', 'ii', 'liv', 'steiner']);
  t.deepEqual(await found('HCC'), [id], 'a word of the name, in any case');
  t.deepEqual(await found('edmond'), [id], 'the start of a word');
  t.deepEqual(await found('mondson'), [], 'not the inside of a word');
  t.deepEqual(await found('3+4=7'), [id], 'a term with punctuation as typed');
  t.deepEqual(await found('4+3=7'), [], 'its words in another order do not match');
  t.deepEqual(await found('liv_hcc'), [id]);
  await assertWordCounts(t);
});

test.serial(`a slide imported from a partner's bag is indexed in the import's transaction on ${testDialect}`, async (t) => {
  const imports = new ImportsRepository(database.db.knex, createAuditLog(database.db));
  const slide = {
    name: 'SB1-CO-ADC-HE-WD-00-00-IMPORTED01',
    size: 1000,
    sha256: 'a'.repeat(64),
    metadata: { ...metadata('mucinous component'), organ: 'CO', histology: 'ADC' },
    annotationSummary: null,
  } as unknown as BagSlide;
  const ids = await imports.apply({
    add: [{ slide, filePath: 'imported01.svs', annotationPath: null, facts: FACTS }],
    annotations: [],
    withdraw: [],
    provenance: { site: 'partner', key: 'key', dataset: 'partner-set', version: '1.0.0', since: null, summary: {} },
  });
  const id = ids.get(slide.name)!;
  t.deepEqual(await found('mucin'), [id]);
  t.deepEqual(await found('imported01'), [id]);
  await assertWordCounts(t);
});

test.serial(`a renamed slide and edited pathology information replace the slide's words on ${testDialect}`, async (t) => {
  const id = await ingested('RENAME_BEFORE_0002', 'perineural invasion');
  t.deepEqual(await found('perineural'), [id]);
  await database.db.knex.transaction(async (trx) => {
    await trx('slides').where({ id }).update({ name: 'RENAME_AFTER_0002', pathology_info: 'necrosis about 20 percent' });
    await writeCatalogWords(trx, [{ id, name: 'RENAME_AFTER_0002', pathologyInfo: 'necrosis about 20 percent' }]);
  });
  t.deepEqual(await found('before'), []);
  t.deepEqual(await found('perineural'), []);
  t.deepEqual(await found('after'), [id]);
  t.deepEqual(await found('necrosis'), [id]);
  t.deepEqual(await wordsOfSlide(id), ['0002', '20', 'about', 'after', 'necrosis', 'percent', 'rename']);
  await assertWordCounts(t);
});

test.serial(`a withdrawn slide is no longer found, and a deleted slide's words go with it, on ${testDialect}`, async (t) => {
  const id = await ingested('WITHDRAWN_0003', 'regression grade 2');
  t.deepEqual(await found('regression'), [id]);
  t.true(await new SlideStatusRepository(database.db.knex).transition(id, 'published', 'withdrawn', new Date()));
  t.deepEqual(await found('regression'), []);
  const catalog = new CatalogRepository(database.db.knex);
  t.is((await catalog.counts({ facets: {}, terms: [{ text: 'regression', codes: {} }] })).total, 0);
  await assertWordCounts(t);
  t.true(await new SlideStatusRepository(database.db.knex).transition(id, 'withdrawn', 'published', new Date()));
  t.deepEqual(await found('regression'), [id], 'published again');
  await assertWordCounts(t);
  await database.db.knex('slides').where({ id }).del();
  t.deepEqual(await wordsOfSlide(id), []);
  t.deepEqual(await found('regression'), []);
  await assertWordCounts(t);
});

test.serial(`a slide's changed facet values move its words' counts on ${testDialect}`, async (t) => {
  const id = await ingested('FACETS_0006', 'background cirrhosis');
  const catalog = new CatalogRepository(database.db.knex);
  const cirrhosis: CatalogCriteria = { facets: {}, terms: [{ text: 'cirrhosis', codes: {} }] };
  t.deepEqual((await catalog.counts(cirrhosis)).facets.annotationMethod, []);
  // As the annotation review sets the method of a reviewed slide.
  await database.db.knex('slides').where({ id }).update({ annotation_method: 'manual' });
  t.deepEqual((await catalog.counts(cirrhosis)).facets.annotationMethod, [{ value: 'manual', count: 1 }]);
  await database.db.knex('slides').where({ id }).update({ annotation_method: 'manual', stain: 'HE' });
  t.deepEqual((await catalog.counts(cirrhosis)).facets.annotationMethod, [{ value: 'manual', count: 1 }], 'an update that changes nothing counts nothing');
  await assertWordCounts(t);
});

test.serial(`a search's total and facet counts are those of the slides its words and codes match on ${testDialect}`, async (t) => {
  const service = new CatalogService(new CatalogRepository(database.db.knex), vocabulary, '/nonexistent', createSlideRelease(database.db));
  const budding = await ingested('COUNTS_0004', 'tumour budding high');
  // 'hepatocellular' is a histology's display name: every slide with code HCC matches, whatever its words.
  const result = await service.search({ filter: { q: 'hepatocellular budding' }, sort: CATALOG_SORTS.name, offset: 0, limit: 100 });
  t.deepEqual(
    result.items.map((item) => item.id),
    [budding],
  );
  t.is(result.total, 1);
  t.deepEqual(
    result.facets.histology.map(({ value, count }) => [value, count]),
    [['HCC', 1]],
  );
  const liver = await service.search({ filter: { q: 'hepatocellular' }, sort: CATALOG_SORTS.name, offset: 0, limit: 100 });
  const hcc = (await database.db.knex('slides').where({ status: 'published', histology: 'HCC' }).count({ n: '*' })) as { n: number | string }[];
  t.is(liver.total, Number(hcc[0]!.n));
  t.true(liver.total > 1);
  await assertWordCounts(t);
});

test.serial(`the migration indexes the slides stored before it on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const { knex } = db;
  // The migration after it, which builds on its tables, is undone first and done again after.
  await catalogCountChanges.down(knex, dialectOf(knex));
  await catalogWords.down(knex);
  const now = toDbTime(new Date());
  const ids: number[] = [];
  for (const [name, pathologyInfo] of [
    ['OLD_SLIDE_A', 'lymph node metastasis'],
    ['OLD_SLIDE_B', null],
  ] as const) {
    const [inserted] = await knex('slides')
      .insert({ name, file_path: `${name}.svs`, file_size: 1, vendor: 'aperio', width: 10, height: 10, level_count: 1, status: 'published', pathology_info: pathologyInfo, created_at: now, updated_at: now })
      .returning('id');
    ids.push(typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number));
  }
  await catalogWords.up(knex, dialectOf(knex));
  await catalogCountChanges.up(knex, dialectOf(knex));
  const words = async (id: number) => ((await knex(CATALOG_WORDS_TABLE).where({ slide_id: id }).orderBy('word').select('word')) as { word: string }[]).map((row) => row.word);
  t.deepEqual(await words(ids[0]!), ['a', 'lymph', 'metastasis', 'node', 'old', 'slide']);
  t.deepEqual(await words(ids[1]!), ['b', 'old', 'slide']);
  const criteria = (text: string): CatalogCriteria => ({ facets: {}, terms: [{ text, codes: {} }] });
  t.deepEqual((await new CatalogRepository(knex).search(criteria('metast'), CATALOG_SORTS.name, 0, 10)).slides.map((slide) => slide.id), [ids[0]]);
  t.is((await new CatalogRepository(knex).counts(criteria('metastasis'))).total, 1);
  await assertWordCounts(t, knex);
});

/** Words compare byte for byte on both databases: a prefix range is the same set of words on each. */
test.serial(`words compare by code point, not by the table's collation, on ${testDialect}`, async (t) => {
  const knex: Knex = database.db.knex;
  const id = await ingested('COLLATION_0005', 'Größe Ångström résumé');
  t.deepEqual(await wordsOfSlide(id), ['0005', 'collation', 'größe', 'résumé', 'ångström']);
  t.deepEqual(await found('gröss'), []);
  t.deepEqual(await found('GRÖ'), [id]);
  t.deepEqual(await found('resume'), [], 'accents are not folded');
  t.deepEqual(await found('rés'), [id]);
  t.deepEqual(await found('ång'), [id]);
  t.is(((await knex(CATALOG_WORDS_TABLE).where('word', 'angstrom').select('word')) as unknown[]).length, 0);
});
