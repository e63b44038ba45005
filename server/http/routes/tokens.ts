import Router from '@koa/router';
import type { TokensService } from '../../access/tokens.service.js';
import { requestMeta } from '../middleware/authenticate.js';
import { requesterOf, requireAuthenticated, requireSession } from '../middleware/permissions.js';
import { noStore } from './auth.js';

/**
 * Personal access tokens of the requester:
 * - `GET    /api/tokens` → `{items: [{id, name, prefix, scope, status, createdAt, lastUsedAt, expiresAt, revokedAt}]}`
 * - `POST   /api/tokens` `{name, scope?: "all"|"read", expiresInDays?: n|null}` → 201 with `token`, shown this once; session only
 * - `DELETE /api/tokens/:id` → 204
 */
export function tokenRoutes(tokens: TokensService): Router {
  const router = new Router({ prefix: '/api/tokens' });
  router.use(noStore);
  router.get('/', requireAuthenticated(), async (ctx) => {
    ctx.body = await tokens.list(requesterOf(ctx));
  });
  router.post('/', requireSession(), async (ctx) => {
    ctx.status = 201;
    ctx.body = await tokens.create(requesterOf(ctx), ctx.request.body, requestMeta(ctx));
  });
  router.delete('/:id', requireAuthenticated(), async (ctx) => {
    await tokens.revoke(requesterOf(ctx), ctx.params.id, requestMeta(ctx));
    ctx.status = 204;
  });
  return router;
}
