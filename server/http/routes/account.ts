import Router from '@koa/router';
import type { AccountsService } from '../../access/accounts.service.js';
import type { DownloadHistoryService } from '../../downloads/history.service.js';
import { requestMeta } from '../middleware/authenticate.js';
import { requesterOf, requireAuthenticated, requireSession } from '../middleware/permissions.js';
import { sessionOf } from '../middleware/session.js';
import { noStore, retryAfter } from './auth.js';

/**
 * The requester's own account (any logged-in user, by session or token):
 * - `GET   /api/account` → the profile
 * - `PATCH /api/account` `{name?, institution?}` → the profile
 * - `POST  /api/account/password` `{currentPassword, newPassword}` → 204; session only; other sessions end, access tokens are revoked
 * - `GET   /api/account/downloads?page=&pageSize=` → the requester's own downloads, newest first: `{items, total, page, pageSize}`
 */
export function accountRoutes(accounts: AccountsService, downloads: DownloadHistoryService): Router {
  const router = new Router({ prefix: '/api/account' });
  router.use(noStore, retryAfter);
  router.get('/', requireAuthenticated(), async (ctx) => {
    ctx.body = await accounts.profile(requesterOf(ctx));
  });
  router.patch('/', requireAuthenticated(), async (ctx) => {
    ctx.body = await accounts.updateProfile(requesterOf(ctx), ctx.request.body);
  });
  router.get('/downloads', requireAuthenticated(), async (ctx) => {
    ctx.body = await downloads.forUser(requesterOf(ctx).user!.id, ctx.query);
  });
  router.post('/password', requireSession(), async (ctx) => {
    await accounts.changePassword(requesterOf(ctx), ctx.request.body, { ...requestMeta(ctx), keepSession: sessionOf(ctx)?.externalKey });
    ctx.status = 204;
  });
  return router;
}
