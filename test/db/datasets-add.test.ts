import { readFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CatalogRepository } from '../../server/catalog/catalog.repository.js';
import { CatalogService } from '../../server/catalog/catalog.service.js';
import { createSlideRelease } from '../../server/catalog/slide-release.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { DatasetError, DatasetsService } from '../../server/datasets/datasets.service.js';
import { DatasetsRepository } from '../../server/datasets/datasets.repository.js';
import type { Vocabulary } from '../../server/ingest/types.js';
import { packageRoot } from '../../server/package-info.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

/**
 * Adding slides to a dataset by catalog filter: the published slides the
 * catalog search shows for it, read the way the search reads it, and no more
 * than one add takes.
 */

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;

async function start(t: ExecutionContext, maxAddedByFilter: number) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const { knex } = database.db;
  const slides = new SlidesRepository(knex);
  const slide = async (name: string, organ: string, histology: string, status = 'published') => {
    const created = await slides.create({ name, filePath: `${name}.svs`, fileSize: 10, sha256: null, vendor: 'aperio', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null, status });
    await knex('slides').where({ id: created.id }).update({ organ, histology });
    return created.id;
  };
  const ids = {
    liverB: await slide('SB1-LV-HCC-B', 'LV', 'HCC'),
    liverA: await slide('SB1-LV-HCC-A', 'LV', 'HCC'),
    liverWithdrawn: await slide('SB1-LV-HCC-C', 'LV', 'HCC', 'withdrawn'),
    colon: await slide('SB1-CO-ADC-A', 'CO', 'ADC'),
  };
  const release = createSlideRelease(database.db);
  const catalog = new CatalogService(new CatalogRepository(knex), vocabulary, '/nonexistent', release);
  const repository = new DatasetsRepository(knex);
  const datasets = new DatasetsService(repository, catalog, release, { slidesDir: '/nonexistent', releasesDir: '/nonexistent', maxAddedByFilter });
  await datasets.create('set');
  const members = async () => repository.memberIds((await datasets.get('set')).id);
  return { datasets, ids, members };
}

test(`a filter adds the published slides the search shows for it: codes in any case, words by vocabulary names, on ${testDialect}`, async (t) => {
  const { datasets, ids, members } = await start(t, 10);
  t.deepEqual(await datasets.add('set', { filter: { organ: ['lv'] } }), { added: 2, total: 2 });
  t.deepEqual((await members()).sort(), [ids.liverA, ids.liverB].sort(), 'never the withdrawn one');
  t.deepEqual(await datasets.add('set', { filter: { q: 'adenocarcinoma' } }), { added: 1, total: 3 }, 'the colon ADC, by the name of its histology');
  await t.throwsAsync(datasets.add('set', { filter: { organ: ['PR'] } }), { instanceOf: DatasetError, message: /nothing was selected/ });
});

test(`an add by filter takes at most its bound of slides, and refuses more without adding any, on ${testDialect}`, async (t) => {
  const { datasets, ids, members } = await start(t, 2);
  await t.throwsAsync(datasets.add('set', { filter: {} }), { instanceOf: DatasetError, message: 'the filter matches 3 slides; one add takes at most 2: narrow the filter and add in parts; nothing was added' });
  t.deepEqual(await members(), []);
  t.deepEqual(await datasets.add('set', { filter: { organ: ['LV'] } }), { added: 2, total: 2 }, 'exactly the bound');
  t.deepEqual((await members()).sort(), [ids.liverA, ids.liverB].sort());
});
