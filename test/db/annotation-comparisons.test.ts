import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { inlineOutlineWork, ReviewRepository, ReviewService, type OutlineSource } from '../../server/annotation-review/index.js';
import { up as addComparisonFigures } from '../../server/db/migrations/2026-12-07-02-comparison-figures.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { RecordingAudit } from '../support/recording-audit.js';
import { makeSlide, registerSlide } from '../support/slides.js';

function square(x: number, size: number): OutlineSource {
  const ring = [
    [x, 100],
    [x + size, 100],
    [x + size, 100 + size],
    [x, 100 + size],
    [x, 100],
  ];
  return { geojson: { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] }, properties: { layerId: 1 } }] } };
}

/** A migrated database with one published slide and its review service (outline work in place). */
async function setUp(t: ExecutionContext) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-comparisons-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const made = await makeSlide({ width: 1600, height: 1200, seed: 2, out: dir, name: 'case' });
  const slide = await registerSlide(database.db, made.svs, 'case.svs');
  await database.db.knex('slides').where({ id: slide.id }).update({ organ: 'LV' });
  const dataDir = path.join(dir, 'var');
  const review = new ReviewService(new ReviewRepository(database.db.knex), new RecordingAudit(), inlineOutlineWork, { dataDir, slideStore: dir });
  const pathologist = { actorId: null, roles: [] };
  return { database, review, slideId: slide.id, pathologist, dataDir };
}

test(`a confirmation stores its agreement with the AI proposal before it; one without a proposal stores nothing (${testDialect})`, async (t) => {
  const { database, review, slideId, pathologist } = await setUp(t);
  await review.propose(slideId, { outline: square(100, 400), method: 'manual' }, pathologist);
  await review.confirm(slideId, { revision: 1 }, pathologist);
  t.is(Number(((await database.db.knex('annotation_comparisons').count({ n: '*' })) as [{ n: number }])[0].n), 0, 'a manual round has nothing to compare');
  await review.returnForCorrection(slideId, { revision: 2, comment: 'again' }, pathologist);

  await review.propose(slideId, { outline: square(100, 400), method: 'ai', model: 'unet' }, pathologist);
  await review.save(slideId, { outline: square(100, 500), revision: 4 }, pathologist);
  await review.confirm(slideId, { revision: 5 }, pathologist);
  const rows = (await database.db.knex('annotation_comparisons').select('round', 'miou', 'tumour_iou', 'downsample', 'failure')) as { round: number; miou: number; tumour_iou: number; downsample: number; failure: string | null }[];
  t.is(rows.length, 1);
  t.like(rows[0], { round: 2, downsample: 1, failure: null });
  t.true(Math.abs(rows[0]!.tumour_iou - 0.64) < 0.005, String(rows[0]!.tumour_iou));
  const stats = await review.statistics();
  t.like(stats.organs, [{ organ: 'LV', proposals: { compared: 1, pending: 0, byRound: [{ round: 2, compared: 1 }] } }]);
  t.is(stats.organs[0]!.proposals.meanMiou, rows[0]!.miou);
});

test(`confirmations made before figures were stored are added by the migration and compared once, when the statistics are first asked for (${testDialect})`, async (t) => {
  const { database, review, slideId, pathologist, dataDir } = await setUp(t);
  const knex = database.db.knex;
  await review.propose(slideId, { outline: square(100, 400), method: 'ai', model: 'unet' }, pathologist);
  await review.save(slideId, { outline: square(200, 400), revision: 1 }, pathologist);
  await review.confirm(slideId, { revision: 2 }, pathologist);
  const [computed] = (await knex('annotation_comparisons').select('miou')) as { miou: number }[];

  // As an installation upgraded from before: the confirmation is there, its figures are not.
  await knex('annotation_comparisons').del();
  await addComparisonFigures(knex, testDialect);
  await addComparisonFigures(knex, testDialect);
  const pending = (await knex('annotation_comparisons').select('miou', 'round')) as { miou: number | null; round: number }[];
  t.deepEqual(pending.map((r) => [r.miou, Number(r.round)]), [[null, 1]], 'one row per confirmation, however often the migration runs');

  const first = await review.statistics();
  t.like(first.organs[0]!.proposals, { compared: 0, pending: 1 });
  await review.fillComparisons();
  const second = await review.statistics();
  t.like(second.organs[0]!.proposals, { compared: 1, pending: 0 });
  t.true(Math.abs(second.organs[0]!.proposals.meanMiou! - computed!.miou) < 1e-12);

  // A confirmation whose version files are gone is recorded as failed, not retried, and not counted.
  await knex('annotation_comparisons').update({ miou: null });
  await rm(path.join(dataDir, 'annotations'), { recursive: true, force: true });
  await review.fillComparisons();
  const [failed] = (await knex('annotation_comparisons').select('failure')) as { failure: string | null }[];
  t.regex(failed!.failure ?? '', /cannot be read/);
  t.deepEqual((await review.statistics()).organs, [], 'no released outline and no comparison to count');
});
