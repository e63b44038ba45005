import Router from '@koa/router';
import type { Context } from 'koa';
import type { AuditActor } from '../../audit/audit-log.js';
import type { SlideStatusService } from '../../catalog/slide-status.service.js';
import { requesterOf, requireRole } from '../middleware/permissions.js';
import { noStore } from './auth.js';

/**
 * Slides of every status, for administrators and curators:
 * - `GET  /api/admin/slides?status=published|withdrawn&q=&limit=&offset=` → `{items, total, limit, offset}`
 * - `POST /api/admin/slides/:id/withdraw` `{reason}` → the slide (409 unless published)
 * - `POST /api/admin/slides/:id/publish` → the slide (409 unless withdrawn)
 * Quarantined ingests are not slides: see `GET /api/ingest/records?outcome=quarantined`.
 */
export function adminSlideRoutes(slides: SlideStatusService): Router {
  const router = new Router({ prefix: '/api/admin/slides' });
  router.use(noStore, requireRole('admin', 'curator'));
  router.get('/', async (ctx) => {
    ctx.body = await slides.list(ctx.query);
  });
  router.post('/:id/withdraw', async (ctx) => {
    ctx.body = await slides.withdraw(ctx.params.id, ctx.request.body, actor(ctx));
  });
  router.post('/:id/publish', async (ctx) => {
    ctx.body = await slides.publish(ctx.params.id, actor(ctx));
  });
  return router;
}

function actor(ctx: Context): AuditActor {
  return { actorId: requesterOf(ctx).user?.id ?? null, ip: ctx.ip || null };
}
