import Router from '@koa/router';
import type { Context } from 'koa';
import type { Actor, UsersAdminService } from '../../access/users-admin.service.js';
import { requesterOf, requireAdmin } from '../middleware/permissions.js';
import { noStore } from './auth.js';

/**
 * User management, for administrators:
 * - `GET  /api/admin/users?q=&level=&role=&status=active|disabled|unconfirmed&page=&pageSize=` → `{items, total, page, pageSize}`
 * - `GET  /api/admin/users/:id`
 * - `PUT  /api/admin/users/:id/level` `{level: "L0"|"L1"|"L3", reason?}` (L2 comes with a DUA)
 * - `PUT  /api/admin/users/:id/roles` `{roles: ["admin"|"curator"|"pathologist", …]}`
 * - `POST /api/admin/users/:id/disable`, `POST /api/admin/users/:id/enable`
 * Each change is audited.
 */
export function adminUserRoutes(users: UsersAdminService): Router {
  const router = new Router({ prefix: '/api/admin/users' });
  router.use(noStore, requireAdmin);
  router.get('/', async (ctx) => {
    ctx.body = await users.search(ctx.query);
  });
  router.get('/:id', async (ctx) => {
    ctx.body = await users.get(ctx.params.id);
  });
  router.put('/:id/level', async (ctx) => {
    ctx.body = await users.setLevel(ctx.params.id, ctx.request.body, actor(ctx));
  });
  router.put('/:id/roles', async (ctx) => {
    ctx.body = await users.setRoles(ctx.params.id, ctx.request.body, actor(ctx));
  });
  router.post('/:id/disable', async (ctx) => {
    ctx.body = await users.disable(ctx.params.id, actor(ctx));
  });
  router.post('/:id/enable', async (ctx) => {
    ctx.body = await users.enable(ctx.params.id, actor(ctx));
  });
  return router;
}

function actor(ctx: Context): Actor {
  return { id: requesterOf(ctx).user?.id ?? null, ip: ctx.ip || null, via: 'http' };
}
