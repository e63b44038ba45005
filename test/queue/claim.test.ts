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

test(`claims take turns between owners: one owner's backlog does not hold back another's later jobs; ownerless jobs count as one more owner (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const [alice, bob] = [await bench.user(), await bench.user()];
  const t0 = new Date();
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
  const insert = (ownerId: number | null, seconds: number) => bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId, maxAttempts: 3 }, at(seconds));
  const a = [await insert(alice.id, 0), await insert(alice.id, 1), await insert(alice.id, 2), await insert(alice.id, 3)];
  const b = [await insert(bob.id, 4), await insert(bob.id, 5)];
  const scheduler = await insert(null, 6);
  // One worker, each job finished before the next claim.
  const order: number[] = [];
  for (let k = 0; k < 7; k++) {
    const job = await bench.repository.claim('w', at(10 + k), at(100 + k));
    t.truthy(job, `claim ${k}`);
    order.push(job!.id);
    t.true(await bench.repository.finish(job!.id, 'w', { status: 'succeeded', results: [] }, at(10 + k)));
  }
  t.deepEqual(order, [a[0]!.id, b[0]!.id, scheduler.id, a[1]!.id, b[1]!.id, a[2]!.id, a[3]!.id]);
});

test(`an owner at maxRunningPerUser gets nothing more claimed until one of theirs ends; others' jobs go first (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const [alice, bob] = [await bench.user(), await bench.user()];
  const now = new Date();
  const lease = new Date(now.getTime() + 60_000);
  const insert = (ownerId: number) => bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId, maxAttempts: 3 }, now);
  const a = [await insert(alice.id), await insert(alice.id), await insert(alice.id)];
  const b = await insert(bob.id);
  const claim = () => bench.repository.claim('w', now, lease, { maxRunningPerUser: 1 });
  t.is((await claim())?.id, a[0]!.id);
  t.is((await claim())?.id, b.id, 'Alice is at her limit');
  t.is(await claim(), undefined, 'nothing else may run');
  t.true(await bench.repository.finish(a[0]!.id, 'w', { status: 'succeeded', results: [] }));
  t.is((await claim())?.id, a[1]!.id);
  t.is((await bench.repository.claim('w', now, lease, { maxRunningPerUser: 0 }))?.id, a[2]!.id, '0 is no bound');
});

test(`four connections racing under maxRunningPerUser 2 hand each job out once and never run three of one owner's jobs (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const owners = [await bench.user(), await bench.user(), await bench.user()];
  for (let i = 0; i < 10; i++) {
    for (const owner of owners) await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: owner.id, maxAttempts: 3 });
  }
  const connections = Array.from({ length: 4 }, () => openDatabase(bench.database.target, { poolMax: 2 }));
  t.teardown(() => Promise.all(connections.map((c) => c.close())));
  const claimed = await Promise.all(
    connections.map(async (db, k) => {
      const repository = new QueueRepository(db.knex, db.dialect);
      const mine: number[] = [];
      for (let round = 0; round < 10; round++) {
        const now = new Date();
        const job = await repository.claim(`claimer-${k}`, now, new Date(now.getTime() + 60_000), { maxRunningPerUser: 2 });
        if (job) mine.push(job.id);
      }
      return mine;
    }),
  );
  const all = claimed.flat();
  t.is(new Set(all).size, all.length, 'no job was handed out twice');
  const running = await bench.repository.list({ status: 'running' });
  t.is(running.length, 6, `two of each owner's: ${all.join(', ')}`);
  for (const owner of owners) t.is(running.filter((j) => j.ownerId === owner.id).length, 2);
});
