import { createReadStream } from 'node:fs';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { SlideAccessPolicy } from '../../access/slide-access.js';
import type { AnnotationsService } from '../../catalog/annotations.service.js';
import { parseSlideId, type CatalogService, type ThumbnailFile } from '../../catalog/catalog.service.js';
import { requireLevel } from '../middleware/permissions.js';

/**
 * The catalog: `GET /api/slides` (search with facets), `/api/slides/summary`,
 * `/api/slides/:id`, `/api/slides/:id/thumbnail?size=small|large` and
 * `/api/slides/:id/annotation.geojson` (the viewer's overlay).
 *
 * Access: the catalog is for L1+ or staff (DESIGN.md), declared on each
 * route; one slide and its thumbnail also ask the SlideAccessPolicy, like the
 * tiles.
 */
export function slideRoutes(catalog: CatalogService, access: SlideAccessPolicy, annotations: AnnotationsService): Router {
  const router = new Router({ prefix: '/api/slides' });
  const viewer = requireLevel('L1');
  const viewable = async (ctx: Context) => {
    const id = parseSlideId(ctx.params.id);
    await access.assertCanView(ctx, id);
    return id;
  };

  router.get('/', viewer, async (ctx) => {
    ctx.body = await catalog.search(ctx.query);
  });
  router.get('/summary', viewer, async (ctx) => {
    ctx.body = await catalog.summary();
  });
  router.get('/:id', viewer, async (ctx) => {
    ctx.body = await catalog.get(await viewable(ctx));
  });
  router.get('/:id/thumbnail', viewer, async (ctx) => {
    sendThumbnail(ctx, await catalog.thumbnail(await viewable(ctx), ctx.query));
  });
  router.get('/:id/annotation.geojson', viewer, async (ctx) => {
    ctx.body = await annotations.geoJson(await viewable(ctx));
    ctx.type = 'application/geo+json';
    ctx.set('Cache-Control', CACHE_CONTROL);
  });
  return router;
}

/** Access-controlled, so `private`; a thumbnail can be made again, so revalidated after an hour. */
const CACHE_CONTROL = 'private, max-age=3600';

function sendThumbnail(ctx: Context, thumbnail: ThumbnailFile): void {
  ctx.set('ETag', thumbnail.etag);
  ctx.set('Cache-Control', CACHE_CONTROL);
  const match = ctx.get('If-None-Match');
  // If-None-Match compares weakly: W/"x" matches "x".
  if (match && match.split(/\s*,\s*/).some((tag) => tag === '*' || tag.replace(/^W\//, '') === thumbnail.etag)) {
    ctx.status = 304;
    return;
  }
  ctx.type = 'image/jpeg';
  ctx.length = thumbnail.length;
  ctx.body = createReadStream(thumbnail.file);
}
