import Router from '@koa/router';
import type { Middleware } from 'koa';
import { AppError } from '../../errors.js';
import type { IngestRecordsService } from '../../ingest/ingest-records.service.js';

/**
 * Curators' view of ingest: `GET /api/ingest/records?outcome=&limit=&offset=`
 * and `GET /api/ingest/slides/:id/report` (the de-identification report of a
 * published slide: what was removed, what was checked). Staff only.
 */
export function ingestRoutes(records: IngestRecordsService, requireStaff: Middleware): Router {
  const router = new Router({ prefix: '/api/ingest' });
  router.get('/records', requireStaff, async (ctx) => {
    ctx.body = await records.list(ctx.query);
  });
  router.get('/slides/:id/report', requireStaff, async (ctx) => {
    ctx.body = await records.forSlide(slideId(ctx.params.id));
  });
  return router;
}

function slideId(text: string | undefined): number {
  if (!text || !/^[1-9]\d{0,9}$/.test(text)) throw new AppError(404, 'report_not_found', 'no such slide');
  return Number(text);
}
