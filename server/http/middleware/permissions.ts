import type { Context, Middleware } from 'koa';
import { ANONYMOUS, assertAuthenticated, assertLevel, assertRole, assertStaff, type Requester } from '../../access/levels.js';
import type { Level, StaffRole } from '../../access/users.repository.js';
import { AppError } from '../../errors.js';

/**
 * Route declarations of who may call a route, e.g.
 *
 *     router.get('/api/slides', requireLevel('L1'), handler)
 *     router.get('/api/admin/users', requireAdmin, handler)
 *
 * Each reads the requester the authenticate middleware resolved (session or
 * bearer token; anonymous is L0) and applies the rules of access/levels.ts:
 * 401 when nobody is logged in, 403 when somebody is but may not.
 */

/** The requester of this request; anonymous when the authenticate middleware did not run, so miswiring fails closed. */
export function requesterOf(ctx: Context): Requester {
  return (ctx.state as { requester?: Requester }).requester ?? ANONYMOUS;
}

/** At least this level. Staff roles count as L1 (viewing) but never as L2 or L3 (downloads, export bundles). */
export function requireLevel(level: Level): Middleware {
  return (ctx, next) => {
    assertLevel(requesterOf(ctx), level);
    return next();
  };
}

/** Any of these staff roles. */
export function requireRole(...roles: StaffRole[]): Middleware {
  return (ctx, next) => {
    assertRole(requesterOf(ctx), roles);
    return next();
  };
}

/** Any staff role: admin, curator or pathologist. */
export function requireStaff(): Middleware {
  return (ctx, next) => {
    assertStaff(requesterOf(ctx));
    return next();
  };
}

export const requireAdmin: Middleware = requireRole('admin');

/** Anybody logged in, whatever the level. */
export function requireAuthenticated(): Middleware {
  return (ctx, next) => {
    assertAuthenticated(requesterOf(ctx));
    return next();
  };
}

/** A logged-in browser session, not a token: for what a stolen token must not do (make tokens, change the password). */
export function requireSession(): Middleware {
  return (ctx, next) => {
    const requester = requesterOf(ctx);
    assertAuthenticated(requester);
    if (requester.via !== 'session') throw new AppError(403, 'session_required', 'This needs a logged-in session; a token cannot do it');
    return next();
  };
}
