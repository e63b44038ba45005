// Abuse of the toolbox job queue against the real server and its worker: flooding the queue, jobs sized to run for months, starving other users, jobs that never end.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { createQueueWorker, QueueRepository, type JobView } from '../../server/queue/index.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface Refusal {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

async function setUp(t: Parameters<typeof startTestApp>[0], env: Record<string, string> = {}, size = { width: 1600, height: 1200 }) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-queue-abuse-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var'), ...env } });
  const { svs } = await makeSlide({ ...size, levels: 2, seed: 21, out: root });
  const slide = await registerSlide(app.database.db, svs);
  return { app, slide };
}

const submit = (client: Client, body: unknown) => client.post<{ job: JobView } & Refusal>('/api/jobs', body);
const worker = (app: TestApp) => createQueueWorker(app.config, app.database.db, memoryLogger().log);
const jobCount = (app: TestApp) => app.database.db.knex('queue_jobs').count({ n: '*' }).then((rows) => Number((rows[0] as { n: number | string }).n));

test(`one user cannot flood the queue: past queue.maxQueuedPerUser (default 20) a job is refused with 429 naming the limit; others still submit; a cancel frees a place (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t);
  t.is(app.config.queue.maxQueuedPerUser, 20);
  const mallory = await signedIn(app, { level: 'L2' });
  const bob = await signedIn(app, { level: 'L2' });
  const body = { type: 'tissue-mask', slideId: slide.id, parameters: {} };
  const accepted: number[] = [];
  for (let i = 0; i < 20; i++) {
    const answer = await submit(mallory.token, body);
    t.is(answer.status, 201, JSON.stringify(answer.body));
    accepted.push(answer.body.job.id);
  }
  const refused = await submit(mallory.token, body);
  t.is(refused.status, 429);
  t.is(refused.body.error.code, 'queue_quota');
  t.regex(refused.body.error.message, /You have 20 jobs waiting in the queue.*queue\.maxQueuedPerUser = 20/);
  t.is(await jobCount(app), 20, 'the refused job is not queued');
  t.is((await submit(bob.token, body)).status, 201, 'the quota is per user');
  t.is((await mallory.token.post(`/api/jobs/${accepted[0]}/cancel`)).status, 200);
  t.is((await submit(mallory.token, body)).status, 201, 'a cancelled job frees its place');
  t.is((await submit(mallory.token, body)).status, 429);
});

test('the reported patch job (size 8192, stride 1, level 0, no tissue threshold) is refused before it is queued: 413 naming the byte budget; too many grid positions and a patch larger than the level are refused too', async (t) => {
  const { app, slide } = await setUp(t, {}, { width: 8400, height: 8400 });
  const { token } = await signedIn(app, { level: 'L2' });
  const attack = await submit(token, { type: 'patches', slideId: slide.id, parameters: { size: 8192, stride: 1, level: 0, tissueThreshold: 0 } });
  t.is(attack.status, 413);
  t.is(attack.body.error.code, 'job_too_large');
  t.regex(attack.body.error.message, /^patches: level 0 \(8400×8400\) with size 8192 and stride 1 gives 43681 grid positions, about [\d.]+ TiB of results, over the limit of 16\.0 GiB per job \(queue\.maxOutputBytes\)/);
  t.like(attack.body.error.details, { limits: { maxOutputBytes: 17179869184 } });

  const dense = await submit(token, { type: 'patches', slideId: slide.id, parameters: { size: 16, stride: 1, tissueThreshold: 0 } });
  t.is(dense.status, 413);
  t.regex(dense.body.error.message, /gives 70308225 grid positions, over the limit of 1000000 per job \(queue\.maxOutputCount\)/);

  const level1 = await submit(token, { type: 'patches', slideId: slide.id, parameters: { size: 4096, level: 1 } });
  t.is(level1.status, 400);
  t.is(level1.body.error.code, 'invalid_request');
  t.regex(level1.body.error.message, /^parameters\.size 4096 is larger than level 1 \(2100×2100\)/);

  const stitch = await submit(token, { type: 'stitch', slideId: slide.id, parameters: { predictions: [{ x: 0, y: 0, size: 256, score: 1 }], downsample: 1 } });
  t.is(stitch.status, 201, 'an ordinary job of the same slide is accepted');
  t.is(await jobCount(app), 1, 'none of the refused jobs is queued');
});

test(`budgets come from configuration: a heat map whose overlay would exceed queue.maxOutputCount is refused with its tile count (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t, { SLIDEBANK_QUEUE_MAX_OUTPUT_COUNT: '20' });
  const { token } = await signedIn(app, { level: 'L2' });
  const mask = (await submit(token, { type: 'tissue-mask', slideId: slide.id, parameters: {} })).body.job;
  t.true(await worker(app).runOnce());
  const heat = await submit(token, { type: 'heatmap', slideId: slide.id, parameters: { source: mask.id } });
  t.is(heat.status, 413);
  t.regex(heat.body.error.message, /^heatmap: an overlay pyramid of \d+ tiles over the 1600×1200 slide, over the limit of 20 per job \(queue\.maxOutputCount\)/);
});

test(`a user with a backlog does not hold the worker: the next job claimed is another user's, in turns, and at most queue.maxRunningPerUser of one user's jobs run at once (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t, { SLIDEBANK_QUEUE_MAX_RUNNING_PER_USER: '1' });
  const mallory = await signedIn(app, { level: 'L2' });
  const bob = await signedIn(app, { level: 'L2' });
  const body = { type: 'tissue-mask', slideId: slide.id, parameters: {} };
  const backlog: number[] = [];
  for (let i = 0; i < 4; i++) backlog.push((await submit(mallory.token, body)).body.job.id);
  const bobs = (await submit(bob.token, body)).body.job.id;
  const one = worker(app);
  t.true(await one.runOnce());
  t.true(await one.runOnce());
  const status = async (client: Client, id: number) => (await client.get<{ job: JobView }>(`/api/jobs/${id}`)).body.job.status;
  t.is(await status(bob.token, bobs), 'succeeded', 'Bob\'s job ran second, not after Mallory\'s backlog');
  t.deepEqual(await Promise.all(backlog.map((id) => status(mallory.token, id))), ['succeeded', 'queued', 'queued', 'queued']);

  // Two workers at once: the second may not take another of Mallory's jobs while one of hers runs.
  const repository = new QueueRepository(app.database.db.knex, app.database.db.dialect);
  const now = new Date();
  const lease = new Date(now.getTime() + 60_000);
  t.is((await repository.claim('worker-a', now, lease, { maxRunningPerUser: 1 }))?.id, backlog[1]);
  t.is(await repository.claim('worker-b', now, lease, { maxRunningPerUser: 1 }), undefined, 'Mallory is at her limit and nobody else waits');
});

test(`a job that would run for months is stopped at queue.maxRunMinutes: failed with the reason, not retried, its partial results removed (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t, { SLIDEBANK_QUEUE_MAX_RUN_MINUTES: '0.01' }, { width: 6000, height: 4000 });
  const { token } = await signedIn(app, { level: 'L2' });
  const submitted = await submit(token, { type: 'patches', slideId: slide.id, parameters: { size: 16, tissueThreshold: 0, limit: 1_000_000 } });
  t.is(submitted.status, 201, JSON.stringify(submitted.body));
  t.true(await worker(app).runOnce());
  const job = (await token.get<{ job: JobView }>(`/api/jobs/${submitted.body.job.id}`)).body.job;
  t.is(job.status, 'failed', job.log ?? '');
  t.is(job.error, 'exceeded the run time limit of 0.01 minutes');
  t.is(job.attempts, 1, 'not retried');
  t.deepEqual(job.results, []);
  t.notRegex(job.log ?? '', /grid positions kept/, 'the task did not run to its end');
  t.regex(job.log ?? '', /failed: exceeded the run time limit of 0\.01 minutes; partial results removed/);
  t.deepEqual(await readdir(path.join(app.config.paths.data, 'results')), [], 'no partial patches are left');
});
