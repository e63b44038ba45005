import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { SlideAccessPolicy } from '../../access/slide-access.js';
import { AppError, notFound } from '../../errors.js';
import { mayUseToolbox, type QueueService } from '../../queue/index.js';
import { retryAfter, settleWhenDone } from '../deliver.js';
import { requesterOf, requireLevel } from '../middleware/permissions.js';
import { noStore } from './audit.js';
import '../context.js';

/**
 * Toolbox jobs (docs/api.md "Toolbox jobs"):
 *
 * - `POST /api/jobs` `{type, slideId, parameters}` → 201 `{job}`: L2, L3 or staff, on a slide they may view
 *   (429 past the user's quota of queued jobs, 413 past the output budget);
 * - `GET /api/jobs?slide=&status=` → `{items}`: the caller's jobs (administrators: everyone's), newest first;
 * - `GET /api/jobs/:id` → `{job}`; `POST /api/jobs/:id/cancel` → `{job}` (409 once finished);
 * - `GET /api/jobs/:id/results/:name`: a result file, audited as `job.result.download`.
 *
 * A job is visible to its owner and administrators only; to others it is a 404.
 */
export function queueRoutes(queue: QueueService, access: SlideAccessPolicy): Router {
  const router = new Router({ prefix: '/api/jobs' });
  router.use(noStore);
  router.post('/', requireToolboxUser, async (ctx) => {
    const slideId = (ctx.request.body as { slideId?: unknown } | undefined)?.slideId;
    if (typeof slideId === 'number' && Number.isInteger(slideId) && slideId > 0) await access.assertCanView(ctx, slideId);
    ctx.status = 201;
    ctx.body = { job: await queue.submit(requesterOf(ctx), ctx.request.body) };
  });
  router.get('/', requireLevel('L1'), async (ctx) => {
    ctx.body = await queue.list(requesterOf(ctx), { slide: ctx.query.slide, status: ctx.query.status });
  });
  router.get('/:id', requireLevel('L1'), async (ctx) => {
    ctx.body = { job: await queue.get(requesterOf(ctx), jobId(ctx)) };
  });
  router.post('/:id/cancel', requireLevel('L1'), async (ctx) => {
    ctx.body = { job: await queue.cancel(requesterOf(ctx), jobId(ctx)) };
  });
  router.get('/:id/results/:name', requireToolboxUser, retryAfter, async (ctx) => {
    const requester = requesterOf(ctx);
    const id = jobId(ctx);
    await access.assertCanView(ctx, await queue.slideOf(requester, id));
    const delivery = await queue.result(requester, id, ctx.params.name ?? '', ctx.ip || null);
    ctx.type = contentType(delivery.name);
    ctx.length = delivery.size;
    ctx.set('Content-Disposition', `attachment; filename="${delivery.name}"`);
    ctx.body = delivery.body;
    settleWhenDone(ctx, delivery.settle);
  });
  return router;
}

/** L2 or L3 (a DUA or a membership), or any staff role. */
const requireToolboxUser: Middleware = (ctx, next) => {
  const requester = requesterOf(ctx);
  if (!requester.user) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  if (!mayUseToolbox(requester)) {
    throw new AppError(403, 'level_required', `Toolbox jobs need access level L2 (an approved data use agreement) or a staff role; yours is ${requester.level}`);
  }
  return next();
};

function jobId(ctx: Context): number {
  const text = ctx.params.id;
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) throw notFound('job_not_found', `No job "${text ?? ''}"`);
  return Number(text);
}

function contentType(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return { png: 'image/png', json: 'application/json', csv: 'text/csv; charset=utf-8', tar: 'application/x-tar', tif: 'image/tiff', tiff: 'image/tiff' }[ext] ?? 'application/octet-stream';
}
