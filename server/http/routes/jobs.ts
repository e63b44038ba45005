import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { JobsService } from '../../jobs/jobs.service.js';
import { noStore } from './audit.js';

/**
 * The scheduled jobs for administrators, read-only:
 * `GET /api/admin/jobs` → `{items: [{name, description, schedule, runs: [{id, job, asOf, startedAt, finishedAt, status, trigger, summary}]}]}`
 * (the last runs of each job, newest first). Access: `requireAdmin`.
 */
export function jobRoutes(jobs: JobsService, requireAdmin: Middleware): Router {
  const router = new Router({ prefix: '/api/admin' });
  router.get('/jobs', requireAdmin, noStore, async (ctx) => {
    ctx.body = await jobs.list();
  });
  return router;
}
