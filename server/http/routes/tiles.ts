import Router from '@koa/router';
import type { Context } from 'koa';
import type { SlideAccessPolicy } from '../../access/slide-access.js';
import { AppError } from '../../errors.js';
import { parseTilePath } from '../../tiles/tile-path.js';
import type { TileResponse, TilesService } from '../../tiles/tiles.service.js';
import { requireLevel } from '../middleware/permissions.js';

/**
 * Deep Zoom descriptors and tiles, and associated images, under /tiles/ (see
 * tile-path.ts for the shapes); the IIIF Image API under /iiif/.
 *
 * Access: L1 (a confirmed account) or staff, declared on each route; the
 * SlideAccessPolicy then decides per slide and per associated image (label
 * and macro: staff only).
 */
export function tileRoutes(tiles: TilesService, access: SlideAccessPolicy): Router {
  const router = new Router();
  const viewer = requireLevel('L1');
  router.get(/^\/tiles\/(.+)$/, viewer, async (ctx) => {
    const request = parseTilePath(ctx.path.slice('/tiles/'.length));
    await access.assertCanView(ctx, request.slideId);
    switch (request.kind) {
      case 'descriptor':
        return send(ctx, await tiles.descriptor(request.slideId));
      case 'tile': {
        const { slideId, level, col, row, format } = request;
        if (notModified(ctx, await tiles.tileEtag(slideId, level, col, row, format))) return;
        return send(ctx, await tiles.tile(slideId, level, col, row, format));
      }
      case 'associated':
        await access.assertCanViewAssociated(ctx, request.slideId, request.name);
        return send(ctx, await tiles.associated(request.slideId, request.name));
    }
  });
  router.get('/iiif/:slide', viewer, (ctx) => {
    ctx.status = 303;
    ctx.redirect(`/iiif/${ctx.params.slide}/info.json`);
  });
  router.get('/iiif/:slide/info.json', viewer, async (ctx) => {
    const slideId = parseTilePath(`${ctx.params.slide}.dzi`).slideId;
    await access.assertCanView(ctx, slideId);
    ctx.set('Cache-Control', 'private, max-age=3600');
    ctx.type = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"';
    ctx.body = await tiles.iiifInfo(slideId, `${ctx.protocol}://${ctx.host}/iiif/${slideId}`);
  });
  router.get('/iiif/:slide/:region/:size/:rotation/:file', viewer, async (ctx) => {
    const slideId = parseTilePath(`${ctx.params.slide}.dzi`).slideId;
    const file = /^([a-z]+)\.([a-z]+)$/.exec(ctx.params.file ?? '');
    if (!file) throw new AppError(400, 'invalid_iiif_request', `"${ctx.params.file}" is not {quality}.{format}`);
    await access.assertCanView(ctx, slideId);
    const { region = '', size = '', rotation = '' } = ctx.params;
    send(ctx, await tiles.iiifImage(slideId, { region, size, rotation, quality: file[1]!, format: file[2]! }, clientGone(ctx)));
  });
  return router;
}

/** Access-controlled, so `private`; a published slide never changes, so cacheable for a year. */
const CACHE_CONTROL = 'private, max-age=31536000, immutable';

/** Fires when the client closes the connection before the answer is sent, so that the render it asked for can stop. */
function clientGone(ctx: Context): AbortSignal {
  const controller = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function notModified(ctx: Context, etag: string): boolean {
  const match = ctx.get('If-None-Match');
  if (!match || !match.split(/\s*,\s*/).some((tag) => tag === etag || tag === '*')) return false;
  ctx.status = 304;
  ctx.set('ETag', etag);
  ctx.set('Cache-Control', CACHE_CONTROL);
  return true;
}

function send(ctx: Context, response: TileResponse): void {
  if (notModified(ctx, response.etag)) return;
  ctx.set('ETag', response.etag);
  ctx.set('Cache-Control', CACHE_CONTROL);
  if (response.made) ctx.set('X-Tile-Source', response.made);
  ctx.type = response.contentType;
  ctx.body = response.body;
}
