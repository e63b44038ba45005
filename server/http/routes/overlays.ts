import Router from '@koa/router';
import type { Context } from 'koa';
import type { SlideAccessPolicy } from '../../access/slide-access.js';
import { parseOverlayPath, type OverlaysService } from '../../tiles/overlays.service.js';
import type { TileResponse } from '../../tiles/tiles.service.js';
import { requireLevel } from '../middleware/permissions.js';

/**
 * Heat-map overlays of a slide (see overlays.service.ts): the list at
 * /tiles/<id>/overlays, a descriptor at /tiles/<id>/overlays/<name>.dzi and
 * its tiles at /tiles/<id>/overlays/<name>_files/<level>/<col>_<row>.png.
 * Access: as the slide's own tiles — L1, then the SlideAccessPolicy.
 * Mounted before tileRoutes, whose /tiles/ pattern would refuse these paths.
 */
export function overlayRoutes(overlays: OverlaysService, access: SlideAccessPolicy): Router {
  const router = new Router();
  router.get(/^\/tiles\/([^/]+)\/overlays(?:\/(.+))?$/, requireLevel('L1'), async (ctx) => {
    const [, slide = '', rest] = /^\/tiles\/([^/]+)\/overlays(?:\/(.+))?$/.exec(ctx.path)!;
    const request = parseOverlayPath(slide, rest);
    await access.assertCanView(ctx, request.slideId);
    switch (request.kind) {
      case 'list':
        ctx.set('Cache-Control', 'private, no-cache');
        ctx.body = { overlays: await overlays.list(request.slideId) };
        return;
      case 'descriptor':
        return send(ctx, await overlays.descriptor(request.slideId, request.name));
      case 'tile':
        return send(ctx, await overlays.tile(request.slideId, request.name, request.level, request.col, request.row));
    }
  });
  return router;
}

/** Access-controlled, so `private`; an overlay can be republished, so kept for five minutes and then revalidated by ETag. */
const CACHE_CONTROL = 'private, max-age=300';

function send(ctx: Context, response: TileResponse): void {
  ctx.set('ETag', response.etag);
  ctx.set('Cache-Control', CACHE_CONTROL);
  const match = ctx.get('If-None-Match');
  if (match && match.split(/\s*,\s*/).some((tag) => tag === response.etag || tag === '*')) {
    ctx.status = 304;
    return;
  }
  ctx.type = response.contentType;
  ctx.body = response.body;
}
