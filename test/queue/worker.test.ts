// The worker in this process against a real database and real slides: results, retries with back-off, bad input, cancellation.
import { access, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { setTimeout as sleep } from 'node:timers/promises';
import { PARAMETER_SCHEMAS } from '../../server/queue/tasks/index.js';
import { resultsDir, resultsRoot, TASKS_FOR_TESTS } from './tasks.js';
import { queueBench } from './bench.js';

const exists = (file: string) => access(file).then(() => true, () => false);

test('a tissue-mask job runs to succeeded with its PNG and sidecar as results', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const owner = await bench.user();
  const job = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: { method: 'grey' }, ownerId: owner.id, maxAttempts: 3 });
  t.true(await bench.worker().runOnce());
  const done = (await bench.repository.findById(job.id))!;
  t.is(done.status, 'succeeded', done.error ?? '');
  t.is(done.progress, 1);
  t.is(done.attempts, 1);
  t.is(done.leaseOwner, null);
  t.deepEqual(done.results!.map((r) => r.name), ['tissue-mask.json', 'tissue-mask.png']);
  const dir = resultsDir(resultsRoot(bench.config), job.id);
  const png = await sharp(path.join(dir, 'tissue-mask.png')).metadata();
  t.is(png.format, 'png');
  t.is(done.results!.find((r) => r.name === 'tissue-mask.png')!.size, (await stat(path.join(dir, 'tissue-mask.png'))).size);
  t.regex(done.log ?? '', /attempt 1 of 3/);
  t.regex(done.log ?? '', /% tissue/);
  // Nothing but the final folder is left behind.
  t.deepEqual(await readdir(resultsRoot(bench.config)), [String(job.id)]);
  t.false(await bench.worker().runOnce(), 'nothing else is due');
});

test('a job that fails for a reason outside its input is retried with doubling back-off, then fails after maxAttempts', async (t) => {
  const bench = await queueBench(t, { SLIDEBANK_QUEUE_RETRY_SECONDS: '30', SLIDEBANK_QUEUE_MAX_ATTEMPTS: '3' });
  const slide = await bench.slide();
  // The file vanishes from the store (a disk unmounted): worth trying again later.
  await rm(slide.svs);
  const job = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 });
  const worker = bench.worker();

  const before1 = Date.now();
  t.true(await worker.runOnce());
  const first = (await bench.repository.findById(job.id))!;
  t.is(first.status, 'queued');
  t.is(first.attempts, 1);
  t.regex(first.error ?? '', /cannot be read \(ENOENT\)/);
  t.true(first.runAfter.getTime() >= before1 + 30_000, 'first retry waits retrySeconds');
  // Not due yet.
  t.false(await worker.runOnce());

  const before2 = Date.now();
  t.true(await worker.runOnce(new Date(first.runAfter.getTime() + 1)));
  const second = (await bench.repository.findById(job.id))!;
  t.is(second.status, 'queued');
  t.is(second.attempts, 2);
  t.true(second.runAfter.getTime() >= before2 + 60_000, 'the second waits twice as long');
  t.true(second.runAfter.getTime() < before2 + 90_000 + 5000);

  t.true(await worker.runOnce(new Date(second.runAfter.getTime() + 1)));
  const last = (await bench.repository.findById(job.id))!;
  t.is(last.status, 'failed');
  t.is(last.attempts, 3);
  t.regex(last.error ?? '', /ENOENT.*gave up after 3 attempts/);
  t.regex(last.log ?? '', /retry in 30 s[\s\S]*retry in 60 s/);
  t.deepEqual(last.results, null);
  t.deepEqual(await readdir(resultsRoot(bench.config)), [], 'no partial results are left');
});

test('bad input fails at once with the reason, without retries and without results', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  // A file that is no slide at all, under the catalog's name for it.
  await writeFile(slide.svs, 'this is not a TIFF file');
  const broken = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 });
  // A downsample larger than the slide passes the submit-time range but not the library's check against the slide.
  const good = await bench.slide({ seed: 4 });
  const tooCoarse = await bench.repository.insert({ type: 'tissue-mask', slideId: good.id, parameters: { downsample: 100_000 }, ownerId: null, maxAttempts: 3 });
  const worker = bench.worker();
  t.true(await worker.runOnce());
  t.true(await worker.runOnce());
  const a = (await bench.repository.findById(broken.id))!;
  t.is(a.status, 'failed');
  t.is(a.attempts, 1);
  t.regex(a.error ?? '', /^bad input: /);
  const b = (await bench.repository.findById(tooCoarse.id))!;
  t.is(b.status, 'failed');
  t.is(b.attempts, 1);
  t.regex(b.error ?? '', /^parameters\.downsample must be a number from 1 to 1600/);
  t.deepEqual(await readdir(resultsRoot(bench.config)), []);
});

test('cancelling a running job stops it at its next progress report and removes its partial results', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide({ width: 3000, height: 2000, seed: 5 });
  const owner = await bench.user();
  const parameters = PARAMETER_SCHEMAS.patches.parse({ size: 32, tissueThreshold: 0, limit: 1_000_000 });
  const job = await bench.repository.insert({ type: 'patches', slideId: slide.id, parameters, ownerId: owner.id, maxAttempts: 3 });
  let reports = 0;
  // The real patches task; the cancel is asked for (as the API does) while the job runs, before the task reports progress.
  const worker = bench.worker();
  (worker as unknown as { tasks: typeof TASKS_FOR_TESTS }).tasks = {
    ...TASKS_FOR_TESTS,
    patches: async (context) => {
      t.is((await bench.repository.requestCancel(job.id))!.status, 'running');
      // Past the worker's one-write-a-second bound, so that the first report asks the database.
      await sleep(1100);
      const progress = context.progress;
      context.progress = (fraction, message) => {
        reports++;
        progress(fraction, message);
      };
      await TASKS_FOR_TESTS.patches(context);
    },
  };
  t.true(await worker.runOnce());
  const done = (await bench.repository.findById(job.id))!;
  t.is(done.status, 'cancelled', done.error ?? '');
  t.true(done.cancelRequested);
  t.is(done.results, null);
  t.regex(done.log ?? '', /cancelled; partial results removed/);
  t.notRegex(done.log ?? '', /grid positions kept/, 'the task did not run to its end');
  t.true(reports > 0 && reports < 2000, `stopped after ${reports} progress reports of about 5900`);
  t.deepEqual(await readdir(resultsRoot(bench.config)), [], 'the partial patches are gone');
  t.false(await exists(resultsDir(resultsRoot(bench.config), job.id)));
});

test('cancelling a queued job cancels it at once; a finished job stays as it was', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const job = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 });
  const cancelled = (await bench.repository.requestCancel(job.id))!;
  t.is(cancelled.status, 'cancelled');
  t.truthy(cancelled.finishedAt);
  t.false(await bench.worker().runOnce());
  t.is((await bench.repository.requestCancel(job.id))!.status, 'cancelled');
});
