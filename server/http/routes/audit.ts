import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { AuditActor } from '../../audit/audit-log.js';
import type { AuditService, CsvDownload } from '../../audit/audit.service.js';
import '../context.js';

/**
 * The audit log for administrators:
 * `GET /api/admin/audit?action=&actor=&subjectType=&subjectId=&from=&to=&page=&pageSize=` (JSON, newest first) and
 * `GET /api/admin/audit.csv?…` (the same filters, every match, oldest first, as a CSV download).
 *
 * Access: `requireAdmin` (the accounts work's authentication middleware) guards both.
 */
export function auditRoutes(audit: AuditService, requireAdmin: Middleware): Router {
  const router = new Router({ prefix: '/api/admin' });
  router.get('/audit', requireAdmin, noStore, async (ctx) => {
    ctx.body = await audit.search(ctx.query);
  });
  router.get('/audit.csv', requireAdmin, noStore, async (ctx) => {
    sendCsv(ctx, await audit.exportCsv(ctx.query, requestActor(ctx)));
  });
  return router;
}

/**
 * Who acts in this request, for the audit log: the user the authenticate
 * middleware resolved (`ctx.state.requester.user`, session or token; passport's
 * `ctx.state.user` as a fallback) and the client address (`ctx.ip`, which
 * honours X-Forwarded-For only when http.trustProxy is set).
 */
export function requestActor(ctx: Context): AuditActor {
  const state = ctx.state as { requester?: { user?: { id?: unknown } | null }; user?: { id?: unknown } };
  const id = state.requester?.user?.id ?? state.user?.id;
  return { actorId: typeof id === 'number' ? id : null, ip: ctx.ip || null };
}

/** Answers that hold personal or unpublished data stay out of shared caches and the browser's history. */
export const noStore: Middleware = async (ctx, next) => {
  await next();
  ctx.set('Cache-Control', 'no-store');
};

function sendCsv(ctx: Context, download: CsvDownload): void {
  ctx.set('Content-Disposition', `attachment; filename="${download.filename}"`);
  ctx.type = 'text/csv; charset=utf-8';
  // Once rows are flowing the status is sent; a failure can only cut the response, so it is logged here.
  download.stream.once('error', (error) => ctx.log.error({ err: error }, 'audit export failed part-way; the response was cut'));
  ctx.body = download.stream;
}
