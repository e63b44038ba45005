import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { AccountsService } from '../../access/accounts.service.js';
import { AppError } from '../../errors.js';
import { requestMeta, type Authentication } from '../middleware/authenticate.js';
import type { Csrf } from '../middleware/csrf.js';
import { requireAuthenticated } from '../middleware/permissions.js';

/** Answers about accounts are never cached. */
export const noStore: Middleware = async (ctx, next) => {
  ctx.set('Cache-Control', 'no-store');
  await next();
};

/** A refusal that says when to come back (429 throttling, 503 busy) carries it in Retry-After as well. */
export const retryAfter: Middleware = async (ctx, next) => {
  try {
    await next();
  } catch (error) {
    const seconds = error instanceof AppError ? (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds : undefined;
    if (typeof seconds === 'number') ctx.set('Retry-After', String(seconds));
    throw error;
  }
};

/**
 * Registration, confirmation, login and logout, password reset: open to
 * everyone (L0), except `GET /me`. Anonymous writes here carry the signed
 * CSRF token of `GET /csrf`.
 *
 * - `GET  /api/auth/csrf` → `{csrfToken}` for the X-CSRF-Token header of writes
 * - `POST /api/auth/register` `{name, institution, email, password}` → 202, a confirmation mail
 * - `POST /api/auth/confirm` `{token}` → the account, now L1
 * - `POST /api/auth/confirm/resend` `{email}` → 202
 * - `POST /api/auth/login` `{email, password}` → the account and a session cookie
 * - `POST /api/auth/logout` → 204
 * - `GET  /api/auth/me` → the account, its level in force, `via` session or token
 * - `POST /api/auth/password-reset` `{email}` → 202, a reset mail
 * - `POST /api/auth/password-reset/confirm` `{token, password}` → 204
 */
export function authRoutes(accounts: AccountsService, auth: Authentication, csrf: Pick<Csrf, 'tokenFor' | 'requireForAnonymous'>): Router {
  const router = new Router({ prefix: '/api/auth' });
  router.use(noStore, retryAfter, csrf.requireForAnonymous);
  router.get('/csrf', (ctx) => {
    ctx.body = { csrfToken: csrf.tokenFor(ctx) };
  });
  router.post('/register', async (ctx) => {
    ctx.status = 202;
    ctx.body = await accounts.register(ctx.request.body, requestMeta(ctx));
  });
  router.post('/confirm', async (ctx) => {
    ctx.body = await accounts.confirmEmail(ctx.request.body, requestMeta(ctx));
  });
  router.post('/confirm/resend', async (ctx) => {
    ctx.status = 202;
    ctx.body = await accounts.resendConfirmation(ctx.request.body, requestMeta(ctx));
  });
  router.post('/login', auth.login);
  router.post('/logout', auth.logout);
  router.get('/me', requireAuthenticated(), async (ctx) => {
    ctx.body = await auth.me(ctx);
  });
  router.post('/password-reset', async (ctx) => {
    ctx.status = 202;
    ctx.body = await accounts.requestPasswordReset(ctx.request.body, requestMeta(ctx));
  });
  router.post('/password-reset/confirm', async (ctx) => {
    await accounts.resetPassword(ctx.request.body, requestMeta(ctx));
    ctx.status = 204;
  });
  return router;
}
