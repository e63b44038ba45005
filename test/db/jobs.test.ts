import test from 'ava';
import type { Knex } from 'knex';
import { JobsRepository, NODE_ID, runJob, type ScheduledJob } from '../../server/jobs/index.js';
import { tickOf } from '../../server/jobs/scheduler.js';
import { JobsService, RECENT_RUNS } from '../../server/jobs/jobs.service.js';
import { toDbTime } from '../../server/db/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

async function repository(t: { teardown(fn: () => Promise<void>): void }) {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  return new JobsRepository(db.knex);
}

const at = (iso: string) => new Date(iso);

test(`a lease is held by one node until it expires or is released on ${testDialect}`, async (t) => {
  const jobs = await repository(t);
  t.true(await jobs.acquireLease('reminders', 'node-a', at('2027-01-01T00:00:00Z'), at('2027-01-01T01:00:00Z')));
  t.false(await jobs.acquireLease('reminders', 'node-b', at('2027-01-01T00:30:00Z'), at('2027-01-01T01:30:00Z')), 'node b waits');
  t.true(await jobs.acquireLease('other-job', 'node-b', at('2027-01-01T00:30:00Z'), at('2027-01-01T01:30:00Z')), 'leases are per job');
  t.true(await jobs.acquireLease('reminders', 'node-b', at('2027-01-01T01:00:01Z'), at('2027-01-01T02:00:00Z')), 'an expired lease is taken over');
  await jobs.releaseLease('reminders', 'node-a');
  t.false(await jobs.acquireLease('reminders', 'node-a', at('2027-01-01T01:10:00Z'), at('2027-01-01T02:10:00Z')), 'a stale holder cannot release the new holder’s lease');
  await jobs.releaseLease('reminders', 'node-b');
  t.true(await jobs.acquireLease('reminders', 'node-a', at('2027-01-01T01:10:00Z'), at('2027-01-01T02:10:00Z')));
});

test(`runJob records each run, passes the clock it was given, and skips while another node holds the lease on ${testDialect}`, async (t) => {
  const jobs = await repository(t);
  const { log } = memoryLogger();
  const seen: Date[] = [];
  const job: ScheduledJob = {
    name: 'probe',
    description: 'records the clock',
    schedule: '',
    async run({ now }) {
      seen.push(now);
      return { checked: 3 };
    },
  };
  const now = at('2028-02-29T12:00:00Z');
  const first = await runJob(job, jobs, { now, trigger: 'cli', log });
  t.like(first, { status: 'succeeded', summary: { checked: 3 } });
  t.deepEqual(seen, [now]);

  t.true(await jobs.acquireLease('probe', 'another-node', new Date(), new Date(Date.now() + 60_000)));
  const second = await runJob(job, jobs, { now, trigger: 'schedule', log });
  t.is(second.status, 'skipped');
  t.is(seen.length, 1, 'the job did not run while another node held it');
  await jobs.releaseLease('probe', 'another-node');

  const failing: ScheduledJob = { ...job, async run() { throw new Error('mail server down'); } };
  const third = await runJob(failing, jobs, { now, trigger: 'cli', log });
  t.like(third, { status: 'failed', summary: { error: 'mail server down' } });
  t.true(await jobs.acquireLease('probe', NODE_ID, new Date(), new Date(Date.now() + 1000)), 'a failed run releases its lease');

  const runs = await jobs.recentRuns('probe');
  t.deepEqual(runs.map((r) => r.status), ['failed', 'skipped', 'succeeded']);
  t.deepEqual(runs.map((r) => r.asOf.toISOString()), Array(3).fill(now.toISOString()));
  t.true(runs.every((r) => r.finishedAt !== null));
});

test(`a scheduled tick that one node has run is skipped by a node whose timer fired later; runs by hand are not deduplicated, on ${testDialect}`, async (t) => {
  const jobs = await repository(t);
  const { log } = memoryLogger();
  let runs = 0;
  const job: ScheduledJob = { name: 'tick-probe', description: 'counts', schedule: '*/3 * * * * *', run: async () => ({ run: ++runs }) };
  const tick = at('2027-03-01T10:00:03Z');
  t.is((await runJob(job, jobs, { now: tick, trigger: 'schedule', log })).status, 'succeeded');
  const late = await runJob(job, jobs, { now: tick, trigger: 'schedule', log });
  t.is(late.status, 'skipped');
  t.deepEqual(late.summary, { reason: 'another node ran this tick' });
  t.is((await runJob(job, jobs, { now: at('2027-03-01T10:00:06Z'), trigger: 'schedule', log })).status, 'succeeded', 'the next tick runs');
  t.is((await runJob(job, jobs, { now: tick, trigger: 'cli', log })).status, 'succeeded', 'cron run by hand runs whatever the schedule did');
  t.is(runs, 3);
  // The lease was given back on the skip: the job can run again at once.
  t.true(await jobs.acquireLease('tick-probe', 'node-z', new Date(), new Date(Date.now() + 1000)));
});

test('tickOf gives the latest whole second at or before now that the schedule matches', (t) => {
  const everyThree = { match: (d: Date) => d.getUTCSeconds() % 3 === 0 };
  t.deepEqual(tickOf(everyThree, at('2027-03-01T10:00:04.900Z')), at('2027-03-01T10:00:03Z'));
  t.deepEqual(tickOf(everyThree, at('2027-03-01T10:00:06.001Z')), at('2027-03-01T10:00:06Z'));
  const hourly = { match: (d: Date) => d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0 };
  t.deepEqual(tickOf(hourly, at('2027-03-01T10:00:05Z')), at('2027-03-01T10:00:00Z'), 'a timer five seconds late');
});

test(`the overview reads each job's last runs through an index, without sorting all its runs, on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const started = toDbTime(at('2027-01-01T00:00:00Z'));
  const rows = Array.from({ length: 2000 }, (_, i) => ({ job: i % 2 ? 'often' : 'other', as_of: started, started_at: started, finished_at: started, status: 'succeeded', trigger: 'schedule', summary: '{}' }));
  await db.knex.batchInsert('job_runs', rows, 200);
  if (testDialect === 'mariadb') await db.knex.raw('ANALYZE TABLE job_runs');

  const queries: { sql: string; bindings: readonly Knex.RawBinding[] }[] = [];
  const listen = (q: { sql: string; bindings?: readonly Knex.RawBinding[] }) => queries.push({ sql: q.sql, bindings: q.bindings ?? [] });
  db.knex.on('query', listen);
  const service = new JobsService([{ name: 'often', description: '', schedule: '' }, { name: 'other', description: '', schedule: '' }], new JobsRepository(db.knex));
  const { items } = await service.list();
  db.knex.off('query', listen);
  t.deepEqual(items.map((job) => job.runs.length), [RECENT_RUNS, RECENT_RUNS]);
  t.is(queries.length, 2, 'one query per job, whatever the number of runs');

  for (const { sql, bindings } of queries) {
    if (testDialect === 'sqlite') {
      const plan = (await db.knex.raw(`EXPLAIN QUERY PLAN ${sql}`, bindings)) as { detail: string }[];
      const details = plan.map((step) => step.detail).join('; ');
      t.regex(details, /USING (COVERING )?INDEX job_runs_job_id_index/, details);
      t.notRegex(details, /TEMP B-TREE/, `no sort of all the job's runs: ${details}`);
    } else {
      const [plan] = (await db.knex.raw(`EXPLAIN ${sql}`, bindings)) as [{ key: string | null; Extra: string | null }[]];
      t.is(plan[0]?.key, 'job_runs_job_id_index', JSON.stringify(plan));
      t.notRegex(plan[0]?.Extra ?? '', /filesort/, JSON.stringify(plan));
    }
  }
});
