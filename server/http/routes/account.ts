import Router from '@koa/router';
import type { AccountsService } from '../../access/accounts.service.js';
import { requestMeta } from '../middleware/authenticate.js';
import { requesterOf, requireAuthenticated, requireSession } from '../middleware/permissions.js';
import { sessionOf } from '../middleware/session.js';
import { noStore } from './auth.js';

/**
 * The requester's own account (any logged-in user, by session or token):
 * - `GET   /api/account` → the profile
 * - `PATCH /api/account` `{name?, institution?}` → the profile
 * - `POST  /api/account/password` `{currentPassword, newPassword}` → 204; session only; other sessions end
 */
export function accountRoutes(accounts: AccountsService): Router {
  const router = new Router({ prefix: '/api/account' });
  router.use(noStore);
  router.get('/', requireAuthenticated(), async (ctx) => {
    ctx.body = await accounts.profile(requesterOf(ctx));
  });
  router.patch('/', requireAuthenticated(), async (ctx) => {
    ctx.body = await accounts.updateProfile(requesterOf(ctx), ctx.request.body);
  });
  router.post('/password', requireSession(), async (ctx) => {
    await accounts.changePassword(requesterOf(ctx), ctx.request.body, { ...requestMeta(ctx), keepSession: sessionOf(ctx)?.externalKey });
    ctx.status = 204;
  });
  return router;
}
