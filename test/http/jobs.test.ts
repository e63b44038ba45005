import test from 'ava';
import { JobsRepository } from '../../server/jobs/index.js';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

interface JobsAnswer {
  items: { name: string; description: string; schedule: string; runs: { id: number; job: string; status: string; trigger: string; startedAt: string; finishedAt: string | null; summary: Record<string, unknown> | null }[] }[];
}

test(`GET /api/admin/jobs: every scheduled job with its recent runs, newest first; administrators only (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const runs = new JobsRepository(app.database.db.knex);
  const first = await runs.startRun('account-cleanup', new Date('2026-11-28T03:00:00Z'), 'schedule', 'running', new Date('2026-11-28T03:00:00Z'));
  await runs.finishRun(first, 'succeeded', { sessions: 4 }, new Date('2026-11-28T03:00:02Z'));
  const second = await runs.startRun('account-cleanup', new Date('2026-11-29T03:00:00Z'), 'cli', 'running', new Date('2026-11-29T03:00:00Z'));
  await runs.finishRun(second, 'failed', { error: 'database went away' }, new Date('2026-11-29T03:00:01Z'));

  const { session: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  const answer = await admin.get<JobsAnswer>('/api/admin/jobs');
  t.is(answer.status, 200);
  t.is(answer.headers.get('cache-control'), 'no-store');
  const names = answer.body.items.map((job) => job.name);
  t.deepEqual(names, ['inbox-ingest', 'dua-reminders', 'dua-expiry', 'account-cleanup', 'challenge-uploads', 'preprocess'], 'in the order cron list shows them');
  for (const job of answer.body.items) {
    t.true(job.description.length > 0, `${job.name} is described`);
    t.is(typeof job.schedule, 'string');
  }
  const cleanup = answer.body.items.find((job) => job.name === 'account-cleanup')!;
  t.is(cleanup.schedule, app.config.jobs.cleanupSchedule);
  t.deepEqual(
    cleanup.runs.map(({ id, status, trigger, summary }) => ({ id, status, trigger, summary })),
    [
      { id: second, status: 'failed', trigger: 'cli', summary: { error: 'database went away' } },
      { id: first, status: 'succeeded', trigger: 'schedule', summary: { sessions: 4 } },
    ],
  );
  t.is(cleanup.runs[1]!.finishedAt, '2026-11-28T03:00:02.000Z');
  t.deepEqual(answer.body.items.find((job) => job.name === 'inbox-ingest')!.runs, [], "another job's runs are not mixed in");

  t.is((await new Client(app).get('/api/admin/jobs')).status, 401, 'anonymous');
  const { session: curator } = await signedIn(app, { level: 'L1', roles: ['curator'] });
  t.is((await curator.get('/api/admin/jobs')).status, 403, 'staff, not admin');
  const { session: researcher } = await signedIn(app, { level: 'L2' });
  t.is((await researcher.get('/api/admin/jobs')).status, 403);
});
