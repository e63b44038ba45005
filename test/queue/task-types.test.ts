// Each of the five job types through the worker, on a generated slide with its annotation.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import type { QueuedJob } from '../../server/queue/index.js';
import { PARAMETER_SCHEMAS } from '../../server/queue/tasks/index.js';
import { resultsDir, resultsRoot } from './tasks.js';
import { queueBench, type QueueBench } from './bench.js';

async function run(bench: QueueBench, type: QueuedJob['type'], slideId: number, raw: Record<string, unknown>): Promise<QueuedJob> {
  const parameters = PARAMETER_SCHEMAS[type].parse(raw);
  const job = await bench.repository.insert({ type, slideId, parameters, ownerId: null, maxAttempts: 1 });
  await bench.worker().runOnce();
  return (await bench.repository.findById(job.id))!;
}

test('xml-masks, patches (labelled, packed as tar), stitch, and a heat map of the stitched map', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide({ width: 2000, height: 1500, seed: 31 });
  await bench.database.db.knex('slides').where({ id: slide.id }).update({ annotation_path: slide.xml });

  const masks = await run(bench, 'xml-masks', slide.id, { downsample: 8, layers: 'paip2019' });
  t.is(masks.status, 'succeeded', masks.error ?? '');
  t.true(masks.results!.some((r) => r.name === 'xml-masks.json'));
  t.true(masks.results!.filter((r) => r.name.endsWith('.png')).length >= 1);

  const patches = await run(bench, 'patches', slide.id, { size: 128, labels: true, tissueThreshold: 0.3 });
  t.is(patches.status, 'succeeded', patches.error ?? '');
  t.deepEqual(patches.results!.map((r) => r.name), ['patches.csv', 'patches.json', 'patches.tar']);
  t.regex(patches.log ?? '', /grid positions kept, \d+ tumour/);
  t.deepEqual(await readdir(resultsDir(resultsRoot(bench.config), patches.id)), ['patches.csv', 'patches.json', 'patches.tar']);

  const predictions = [
    { x: 0, y: 0, size: 1000, score: 0.9 },
    { x: 1000, y: 0, size: 1000, score: 0.1 },
    { x: 0, y: 1000, size: 500, score: 0.5 },
  ];
  const stitched = await run(bench, 'stitch', slide.id, { predictions, downsample: 16, window: 'uniform' });
  t.is(stitched.status, 'succeeded', stitched.error ?? '');
  t.deepEqual(stitched.results!.map((r) => r.name), ['probability.json', 'probability.png']);
  const map = await sharp(path.join(resultsDir(resultsRoot(bench.config), stitched.id), 'probability.png')).metadata();
  t.like(map, { width: 125, height: 94, depth: 'ushort' });

  const heat = await run(bench, 'heatmap', slide.id, { source: stitched.id, cutoff: 0.2 });
  t.is(heat.status, 'succeeded', heat.error ?? '');
  // A job queued without a name publishes under a random one.
  const name = heat.results![0]!.name.replace(/\.json$/, '');
  t.regex(name, /^heatmap-[0-9a-f]{12}$/);
  t.deepEqual(heat.results!.map((r) => r.name), [`${name}.json`, `${name}.png`]);
  const published = path.join(bench.config.paths.cache, 'overlays', String(slide.id), name);
  t.true((await readdir(published)).includes(`${name}.dzi`));
  t.regex(heat.log ?? '', new RegExp(`published overlay ${name} at /tiles/${slide.id}/overlays/${name}\\.dzi`));
});

test('labels without an annotation, and predictions outside the slide, fail with the reason and no results', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide({ width: 1200, height: 900, seed: 32 });
  const noAnnotation = await run(bench, 'patches', slide.id, { labels: true });
  t.is(noAnnotation.status, 'failed');
  t.regex(noAnnotation.error ?? '', /parameters\.labels: slide \d+ has no annotation/);
  const outside = await run(bench, 'stitch', slide.id, { predictions: [{ x: 1100, y: 0, size: 256, score: 0.5 }] });
  t.is(outside.status, 'failed');
  t.regex(outside.error ?? '', /^parameters\.predictions entry 1: .*outside the 1200×900 slide/);
  const strideTooLarge = await run(bench, 'patches', slide.id, { size: 256, stride: 100_000 });
  t.is(strideTooLarge.status, 'failed');
  t.regex(strideTooLarge.error ?? '', /^parameters\.stride/);
  t.deepEqual(await readdir(resultsRoot(bench.config)), []);
});
