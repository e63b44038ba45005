// The scheduled `preprocess` job: a tissue mask for each published slide without one, and missing thumbnails.
import { access } from 'node:fs/promises';
import os from 'node:os';
import test from 'ava';
import { thumbnailPath } from '../../server/catalog/thumbnails.js';
import { createJobs, JobsRepository, runJob } from '../../server/jobs/index.js';
import { memoryLogger } from '../support/logs.js';
import { queueBench } from './bench.js';

const exists = (file: string) => access(file).then(() => true, () => false);

test('preprocess queues one tissue-mask job per published slide that has none, makes missing thumbnails, and is idempotent', async (t) => {
  const bench = await queueBench(t);
  const { log } = memoryLogger();
  const a = await bench.slide({ seed: 21 });
  const b = await bench.slide({ seed: 22 });
  const hidden = await bench.slide({ seed: 23 });
  await bench.database.db.knex('slides').where({ id: hidden.id }).update({ status: 'withdrawn' });
  // b already has a mask job (succeeded earlier); a failed one does not count.
  const earlier = await bench.repository.insert({ type: 'tissue-mask', slideId: b.id, parameters: {}, ownerId: null, maxAttempts: 3 });
  await bench.database.db.knex('queue_jobs').where({ id: earlier.id }).update({ status: 'succeeded' });
  const failed = await bench.repository.insert({ type: 'tissue-mask', slideId: a.id, parameters: {}, ownerId: null, maxAttempts: 3 });
  await bench.database.db.knex('queue_jobs').where({ id: failed.id }).update({ status: 'failed' });

  const job = createJobs(bench.config, bench.database.db, log).find((j) => j.name === 'preprocess')!;
  t.is(job.schedule, '*/10 * * * *');
  const outcome = await runJob(job, new JobsRepository(bench.database.db.knex), { trigger: 'cli', log });
  t.is(outcome.status, 'succeeded', JSON.stringify(outcome.summary));
  t.like(outcome.summary, { tissueMaskJobs: 1, thumbnails: 1 });
  // Made in a process of their own at the workers' priority (queue.workerNice 10, queue.workerIoPriority idle), not in this one.
  t.like(outcome.summary, { thumbnailPriority: { nice: Math.max(10, os.getPriority()), ...(process.platform === 'linux' ? { io: 'idle' } : {}) } });
  const queued = await bench.repository.list({ status: 'queued' });
  t.deepEqual(queued.map((j) => [j.type, j.slideId, j.ownerId]), [['tissue-mask', a.id, null]]);
  t.true(await exists(thumbnailPath(bench.config.paths.thumbnails, a.id, 'large')));
  t.true(await exists(thumbnailPath(bench.config.paths.thumbnails, a.id, 'small')));
  t.false(await exists(thumbnailPath(bench.config.paths.thumbnails, hidden.id, 'large')));

  const again = await runJob(job, new JobsRepository(bench.database.db.knex), { trigger: 'cli', log });
  t.like(again.summary, { tissueMaskJobs: 0, thumbnails: 0 });
  t.is((await bench.repository.list({ status: 'queued' })).length, 1);

  // The queued job runs like any other.
  t.true(await bench.worker().runOnce());
  t.is((await bench.repository.findById(queued[0]!.id))!.status, 'succeeded');
});

test('an empty preprocessSchedule switches the job off', async (t) => {
  const bench = await queueBench(t, { SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '' });
  const job = createJobs(bench.config, bench.database.db, memoryLogger().log).find((j) => j.name === 'preprocess')!;
  t.is(job.schedule, '');
});
