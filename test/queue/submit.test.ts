// Submitting is atomic: racing submissions never pass a user's quota of queued jobs, nor share a heat-map overlay name.
import test from 'ava';
import { openDatabase, type Database } from '../../server/db/index.js';
import { QueueRepository } from '../../server/queue/index.js';
import { testDialect } from '../support/database.js';
import { queueBench, type QueueBench } from './bench.js';

/** Separate connections on MariaDB; on SQLite (one writer, and connections of one process block each other) the test's own, which queues the transactions. */
function connections(bench: QueueBench, t: { teardown(fn: () => Promise<void>): void }, count: number): Database[] {
  if (testDialect === 'sqlite') return Array.from({ length: count }, () => bench.database.db);
  const opened = Array.from({ length: count }, () => openDatabase(bench.database.target, { poolMax: 2 }));
  t.teardown(async () => void (await Promise.all(opened.map((c) => c.close()))));
  return opened;
}

test(`eight racing submissions of one user with maxQueuedPerUser 3: three are queued, five refused (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const user = await bench.user();
  const outcomes = await Promise.all(
    connections(bench, t, 8).map((db) =>
      new QueueRepository(db.knex, db.dialect).submit({ type: 'tissue-mask', slideId: slide.id, parameters: {}, ownerId: user.id, maxAttempts: 3 }, { maxQueuedPerUser: 3 }),
    ),
  );
  t.is(outcomes.filter((o) => 'job' in o).length, 3);
  t.deepEqual(outcomes.filter((o) => !('job' in o)), Array.from({ length: 5 }, () => ({ refused: 'quota', queued: 3 })));
  t.is((await bench.repository.list({ ownerId: user.id })).length, 3, 'refused jobs leave no row');
});

test(`six users racing for one overlay name: one job holds it, the others are refused with nothing queued (${testDialect})`, async (t) => {
  const bench = await queueBench(t);
  const slide = await bench.slide();
  const users = [];
  for (let i = 0; i < 6; i++) users.push(await bench.user());
  const dbs = connections(bench, t, 6);
  const outcomes = await Promise.all(
    users.map((user, k) =>
      new QueueRepository(dbs[k]!.knex, dbs[k]!.dialect).submit(
        { type: 'heatmap', slideId: slide.id, parameters: { source: 1, name: 'tumour' }, ownerId: user.id, maxAttempts: 3 },
        { overlay: { name: 'tumour', takeOver: false } },
      ),
    ),
  );
  const accepted = outcomes.filter((o): o is Extract<typeof o, { job: unknown }> => 'job' in o);
  t.is(accepted.length, 1);
  const winner = accepted[0]!.job;
  for (const outcome of outcomes) {
    if ('job' in outcome) continue;
    t.like(outcome, { refused: 'overlay-name', holder: { name: 'tumour', ownerId: winner.ownerId, jobId: winner.id, publishedAt: null } });
  }
  t.is((await bench.repository.list({ type: 'heatmap' })).length, 1);
  // The holder may queue again under the name; once its jobs are cancelled, the name is free.
  const again = await bench.repository.submit({ ...winner, parameters: winner.parameters, ownerId: winner.ownerId }, { overlay: { name: 'tumour', takeOver: false } });
  t.true('job' in again);
  for (const job of await bench.repository.list({ type: 'heatmap' })) await bench.repository.requestCancel(job.id);
  const other = users.find((u) => u.id !== winner.ownerId)!;
  const freed = await bench.repository.submit({ type: 'heatmap', slideId: slide.id, parameters: { source: 1, name: 'tumour' }, ownerId: other.id, maxAttempts: 3 }, { overlay: { name: 'tumour', takeOver: false } });
  t.true('job' in freed);
});
