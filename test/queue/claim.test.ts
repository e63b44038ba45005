// Claiming is atomic: several connections racing over one queue never get the same job.
import test from 'ava';
import { openDatabase } from '../../server/db/index.js';
import { QueueRepository } from '../../server/queue/index.js';
import { testDialect } from '../support/database.js';
import { queueBench } from './bench.js';

test(`four connections racing over 40 jobs each get distinct jobs, and all 40 are taken (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const created = [];
  for (let i = 0; i < 40; i++) created.push((await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 })).id);

  const connections = Array.from({ length: 4 }, () => openDatabase(bench.database.target, { poolMax: 2 }));
  t.teardown(() => Promise.all(connections.map((c) => c.close())));
  const claimed = await Promise.all(
    connections.map(async (db, k) => {
      const repository = new QueueRepository(db.knex, db.dialect);
      const mine: number[] = [];
      for (;;) {
        const now = new Date();
        const job = await repository.claim(`claimer-${k}`, now, new Date(now.getTime() + 60_000));
        if (!job) return mine;
        t.is(job.leaseOwner, `claimer-${k}`);
        mine.push(job.id);
      }
    }),
  );
  const all = claimed.flat();
  t.is(all.length, 40, `claims per connection: ${claimed.map((c) => c.length).join(', ')}`);
  t.deepEqual([...new Set(all)].sort((a, b) => a - b), created);
  const jobs = await bench.repository.list({ slideId: slide.id });
  t.true(jobs.every((j) => j.status === 'running' && j.attempts === 1), 'each job was claimed exactly once');
  // The owner recorded in the database is the claimer that was told it got the job.
  for (const [k, ids] of claimed.entries()) for (const id of ids) t.is(jobs.find((j) => j.id === id)!.leaseOwner, `claimer-${k}`);
});

test('a job is not claimed before its run-after time, and a cancelled queued job never is', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const now = new Date();
  const later = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 }, new Date(now.getTime() + 60_000));
  const cancelled = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts: 3 }, now);
  t.is((await bench.repository.requestCancel(cancelled.id))!.status, 'cancelled');
  t.is(await bench.repository.claim('w', now, new Date(now.getTime() + 1000)), undefined);
  const due = await bench.repository.claim('w', new Date(now.getTime() + 61_000), new Date(now.getTime() + 62_000));
  t.is(due?.id, later.id);
});

test('expired leases: requeued with back-off while attempts remain, failed with the reason after, cancelled when asked; the old owner can no longer write', async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const insert = (maxAttempts: number) => bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: null, maxAttempts });
  const again = await insert(3);
  const last = await insert(1);
  const cancel = await insert(3);
  const t0 = new Date();
  for (let i = 0; i < 3; i++) t.truthy(await bench.repository.claim('dead-worker', t0, new Date(t0.getTime() + 1000)));
  await bench.repository.requestCancel(cancel.id);
  // Still leased: nothing to recover.
  t.deepEqual(await bench.repository.recoverExpired(new Date(t0.getTime() + 500), () => 10_000), { requeued: [], failed: [], cancelled: [] });
  const later = new Date(t0.getTime() + 2000);
  const recovered = await bench.repository.recoverExpired(later, (attempts) => attempts * 10_000);
  t.deepEqual(recovered, { requeued: [again.id], failed: [last.id], cancelled: [cancel.id] });
  const requeued = (await bench.repository.findById(again.id))!;
  t.like(requeued, { status: 'queued', attempts: 1, leaseOwner: null });
  t.is(requeued.runAfter.getTime(), later.getTime() + 10_000);
  t.regex(requeued.error ?? '', /worker dead-worker stopped renewing its lease/);
  const failed = (await bench.repository.findById(last.id))!;
  t.is(failed.status, 'failed');
  t.regex(failed.error ?? '', /no attempts left \(1\)/);
  t.is((await bench.repository.findById(cancel.id))!.status, 'cancelled');
  // The dead worker wakes up: its heartbeat and its result are refused.
  t.deepEqual(await bench.repository.heartbeat(again.id, 'dead-worker', new Date(later.getTime() + 1000)), { owned: false, cancelRequested: false });
  t.false(await bench.repository.finish(again.id, 'dead-worker', { status: 'succeeded', results: [] }));
  // A second recoverer finds nothing left to do.
  t.deepEqual(await bench.repository.recoverExpired(later, () => 0), { requeued: [], failed: [], cancelled: [] });
});
