import Router from '@koa/router';
import type { Context } from 'koa';
import type { OutlineSource } from '../../annotation-review/outline-work.js';
import type { Reviewer, ReviewService } from '../../annotation-review/review.service.js';
import { parseSlideId } from '../../catalog/catalog.service.js';
import type { SlideRelease } from '../../catalog/slide-release.js';
import { badRequest } from '../../errors.js';
import { requesterOf, requireLevel, requireRole, requireStaff } from '../middleware/permissions.js';

/**
 * The annotation review (issue 9), for staff:
 *
 * - `GET  /api/slides/:id/annotations/review` → the workflow, every version and event
 * - `POST /api/slides/:id/annotations/versions` `{method: "ai"|"manual", model?, note?, geojson? | xml?}` → a proposal (admin, curator, pathologist)
 * - `POST /api/slides/:id/annotations/edits` `{geojson, revision, note?}` → a pathologist's corrected version
 * - `POST /api/slides/:id/annotations/confirm` `{revision}`, `/approve` `{revision, comment?}`, `/return` `{revision, comment}` (pathologists)
 * - `GET  /api/slides/:id/annotations/versions/:version.geojson` and `.xml`
 * - `GET  /api/slides/:id/annotations/compare?a=&b=&downsample=` → IoU per layer, mIoU, edit statistics
 * - `GET  /api/annotations/worklist?state=…` → each slide's state (pathologists and admins)
 * - `GET  /api/annotations/statistics` → per organ, for every L1+ reader
 *
 * Researchers never edit: every write needs a staff role, and the review
 * service checks that edits and cross-checks come from pathologists.
 */
export function annotationReviewRoutes(review: ReviewService, release: Pick<SlideRelease, 'assertMayLeave'>): Router {
  const router = new Router();
  const staff = requireStaff();
  const proposer = requireRole('admin', 'curator', 'pathologist');
  const reviewer = requireRole('pathologist', 'admin');
  const slide = (ctx: Context) => parseSlideId(ctx.params.id);

  router.get('/api/slides/:id/annotations/review', staff, async (ctx) => {
    ctx.body = await review.review(slide(ctx));
  });
  router.post('/api/slides/:id/annotations/versions', proposer, async (ctx) => {
    const body = bodyOf(ctx);
    const method = body.method ?? 'ai';
    if (method !== 'ai' && method !== 'manual') throw badRequest('invalid_body', 'method must be "ai" or "manual"');
    ctx.status = 201;
    ctx.body = await review.propose(slide(ctx), { outline: outlineOf(body), method, model: text(body.model, 'model'), note: text(body.note, 'note') }, reviewerOf(ctx));
  });
  router.post('/api/slides/:id/annotations/edits', staff, async (ctx) => {
    const body = bodyOf(ctx);
    ctx.status = 201;
    ctx.body = await review.save(slide(ctx), { outline: outlineOf(body), revision: revisionOf(body), note: text(body.note, 'note') }, reviewerOf(ctx));
  });
  router.post('/api/slides/:id/annotations/confirm', staff, async (ctx) => {
    ctx.body = await review.confirm(slide(ctx), { revision: revisionOf(bodyOf(ctx)) }, reviewerOf(ctx));
  });
  router.post('/api/slides/:id/annotations/approve', staff, async (ctx) => {
    const body = bodyOf(ctx);
    ctx.body = await review.approve(slide(ctx), { revision: revisionOf(body), comment: text(body.comment, 'comment') }, reviewerOf(ctx));
  });
  router.post('/api/slides/:id/annotations/return', staff, async (ctx) => {
    const body = bodyOf(ctx);
    ctx.body = await review.returnForCorrection(slide(ctx), { revision: revisionOf(body), comment: text(body.comment, 'comment') ?? '' }, reviewerOf(ctx));
  });
  router.get(/^\/api\/slides\/(\d+)\/annotations\/versions\/(\d+)\.(geojson|xml)$/, staff, async (ctx) => {
    const [, id = '', version = '', format] = /^\/api\/slides\/(\d+)\/annotations\/versions\/(\d+)\.(geojson|xml)$/.exec(ctx.path)!;
    const slideId = parseSlideId(id);
    const versionId = Number(version);
    // A version file is the slide's annotation: sent only while the slide may leave.
    await release.assertMayLeave(slideId);
    if (format === 'geojson') {
      ctx.type = 'application/geo+json';
      ctx.body = await review.versionGeoJson(slideId, versionId);
    } else {
      ctx.type = 'application/xml';
      ctx.body = await review.versionXml(slideId, versionId);
    }
    ctx.set('Cache-Control', 'private, no-cache');
  });
  router.get('/api/slides/:id/annotations/compare', staff, async (ctx) => {
    const a = wholeQuery(ctx.query.a, 'a');
    const b = wholeQuery(ctx.query.b, 'b');
    const downsample = ctx.query.downsample === undefined ? undefined : wholeQuery(ctx.query.downsample, 'downsample');
    ctx.body = await review.compare(slide(ctx), a, b, downsample);
  });
  router.get('/api/annotations/worklist', reviewer, async (ctx) => {
    ctx.set('Cache-Control', 'private, no-store');
    ctx.body = await review.worklist(ctx.query);
  });
  router.get('/api/annotations/statistics', requireLevel('L1'), async (ctx) => {
    ctx.body = await review.statistics();
  });
  return router;
}

function reviewerOf(ctx: Context): Reviewer {
  const requester = requesterOf(ctx);
  return { id: requester.user?.id ?? null, roles: requester.roles, ip: ctx.ip || null };
}

function bodyOf(ctx: Context): Record<string, unknown> {
  const body = (ctx.request as { body?: unknown }).body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('invalid_body', 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The outline from `geojson` (an object or its text) or `xml` (Aperio XML text); the service reads it off the event loop. */
function outlineOf(body: Record<string, unknown>): OutlineSource {
  if (body.geojson !== undefined) return { geojson: body.geojson };
  if (typeof body.xml === 'string') return { xml: body.xml };
  throw badRequest('invalid_body', 'give the outline as geojson (a FeatureCollection) or xml (Aperio XML text)');
}

function revisionOf(body: Record<string, unknown>): number {
  const revision = body.revision;
  if (typeof revision !== 'number' || !Number.isInteger(revision) || revision < 0) throw badRequest('invalid_revision', 'revision must be the whole number the outline was loaded at');
  return revision;
}

function text(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw badRequest('invalid_body', `${name} must be text`);
  return value;
}

function wholeQuery(value: unknown, name: string): number {
  const n = typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1) throw badRequest('invalid_query', `${name} must be a whole number from 1`);
  return n;
}
