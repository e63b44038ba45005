import Router from '@koa/router';
import type { Middleware } from 'koa';
import { parsePageId, type PagesService } from '../../pages/pages.service.js';
import { noStore, requestActor } from './audit.js';

/**
 * News and the user guide.
 *
 * Public (L0, no login): `GET /api/news?page=&pageSize=`, `GET /api/news/:slug`,
 * `GET /api/guide`, `GET /api/guide/:slug` — published pages only, as sanitised HTML.
 *
 * Administrators (`requireAdmin`): `GET /api/admin/pages?kind=`, `GET /api/admin/pages/:id`,
 * `POST /api/admin/pages`, `PUT /api/admin/pages/:id`, `POST /api/admin/pages/:id/publish`,
 * `POST /api/admin/pages/:id/unpublish`, `DELETE /api/admin/pages/:id`; each write is audited.
 */
export function pageRoutes(pages: PagesService, requireAdmin: Middleware): Router {
  const router = new Router({ prefix: '/api' });

  router.get('/news', async (ctx) => {
    ctx.body = await pages.listNews(ctx.query);
  });
  router.get('/news/:slug', async (ctx) => {
    ctx.body = await pages.getPublished('news', ctx.params.slug);
  });
  router.get('/guide', async (ctx) => {
    ctx.body = await pages.listGuide(ctx.query);
  });
  router.get('/guide/:slug', async (ctx) => {
    ctx.body = await pages.getPublished('guide', ctx.params.slug);
  });

  router.get('/admin/pages', requireAdmin, noStore, async (ctx) => {
    ctx.body = await pages.listAll(ctx.query);
  });
  router.get('/admin/pages/:id', requireAdmin, noStore, async (ctx) => {
    ctx.body = await pages.get(parsePageId(ctx.params.id));
  });
  router.post('/admin/pages', requireAdmin, noStore, async (ctx) => {
    const page = await pages.create(ctx.request.body, requestActor(ctx));
    ctx.status = 201;
    ctx.set('Location', `/api/admin/pages/${page.id}`);
    ctx.body = page;
  });
  router.put('/admin/pages/:id', requireAdmin, noStore, async (ctx) => {
    ctx.body = await pages.update(parsePageId(ctx.params.id), ctx.request.body, requestActor(ctx));
  });
  router.post('/admin/pages/:id/publish', requireAdmin, noStore, async (ctx) => {
    ctx.body = await pages.publish(parsePageId(ctx.params.id), requestActor(ctx));
  });
  router.post('/admin/pages/:id/unpublish', requireAdmin, noStore, async (ctx) => {
    ctx.body = await pages.unpublish(parsePageId(ctx.params.id), requestActor(ctx));
  });
  router.delete('/admin/pages/:id', requireAdmin, async (ctx) => {
    await pages.delete(parsePageId(ctx.params.id), requestActor(ctx));
    ctx.status = 204;
  });
  return router;
}
