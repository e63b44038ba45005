import type { Context, Middleware } from 'koa';
import { assertAuthenticated, assertLevel, assertRole, assertStaff, hasLevel, isStaff, type Requester } from '../access/levels.js';
import type { Level, StaffRole } from '../access/users.repository.js';
import { AppError } from '../errors.js';
import { requesterOf } from './requester.js';

/**
 * Who may call a route, declared once on the route: the guard that enforces
 * it and the line the API description shows are both made from it.
 *
 * - `public`: anyone, logged in or not (L0);
 * - `authenticated`: any logged-in user, whatever the level; `session` only
 *   through a browser session, never a token (what a stolen token must not do);
 * - `level`: at least this level; staff count as L1 but never as L2 or L3,
 *   unless `orRoles` / `orStaff` admit them;
 * - `roles`: one of these staff roles; `staff`: any staff role;
 * - `operator`: a client address in `metrics.allow`, or an administrator.
 */
export type Access =
  | { kind: 'public' }
  | { kind: 'authenticated'; session?: true }
  | { kind: 'level'; level: Level; orRoles?: readonly StaffRole[]; orStaff?: true }
  | { kind: 'roles'; roles: readonly StaffRole[] }
  | { kind: 'staff' }
  | { kind: 'operator' };

export const publicAccess: Access = { kind: 'public' };
export const loggedIn: Access = { kind: 'authenticated' };
export const sessionOnly: Access = { kind: 'authenticated', session: true };
export const staffOnly: Access = { kind: 'staff' };
export const operatorOnly: Access = { kind: 'operator' };
export const adminOnly: Access = { kind: 'roles', roles: ['admin'] };

export function atLeast(level: Level, alternatives: { orRoles?: readonly StaffRole[]; orStaff?: true } = {}): Access {
  return { kind: 'level', level, ...alternatives };
}

export function anyRole(...roles: StaffRole[]): Access {
  return { kind: 'roles', roles };
}

/** The access as the API description and the docs state it, e.g. "L3 or admin". */
export function describeAccess(access: Access): string {
  switch (access.kind) {
    case 'public':
      return 'public';
    case 'authenticated':
      return access.session ? 'logged-in session' : 'logged in';
    case 'level': {
      const alternatives = [...(access.orRoles ?? []), ...(access.orStaff ? ['staff'] : [])];
      return [access.level, ...alternatives].join(' or ');
    }
    case 'roles':
      return access.roles.join(' or ');
    case 'staff':
      return 'staff';
    case 'operator':
      return 'operator';
  }
}

/** Whether a requester passes the declaration (the operator's address rule aside). */
export function admits(access: Access, requester: Requester): boolean {
  switch (access.kind) {
    case 'public':
      return true;
    case 'authenticated':
      return requester.user !== null && (!access.session || requester.via === 'session');
    case 'level':
      return (
        hasLevel(requester, access.level) ||
        (access.orRoles ?? []).some((role) => requester.roles.includes(role)) ||
        (access.orStaff === true && isStaff(requester))
      );
    case 'roles':
      return access.roles.some((role) => requester.roles.includes(role));
    case 'staff':
      return isStaff(requester);
    case 'operator':
      return requester.roles.includes('admin');
  }
}

export interface GuardOptions {
  /** For `operator`: whether the client address may read without logging in (`metrics.allow`). */
  operatorAddress(ip: string): boolean;
}

/** The middleware that enforces a declaration: 401 when nobody is logged in, 403 when somebody is but may not. */
export function accessGuard(access: Access, { operatorAddress }: GuardOptions): Middleware {
  if (access.kind === 'public') return (_ctx, next) => next();
  return (ctx: Context, next) => {
    const requester = requesterOf(ctx);
    if (access.kind === 'operator') {
      if (operatorAddress(ctx.ip) || admits(access, requester)) return next();
      throw new AppError(403, 'operator_only', 'This is for operators: call from an address in metrics.allow or as an administrator');
    }
    if (!admits(access, requester)) refuse(access, requester);
    return next();
  };
}

function refuse(access: Exclude<Access, { kind: 'public' } | { kind: 'operator' }>, requester: Requester): never {
  switch (access.kind) {
    case 'authenticated':
      assertAuthenticated(requester);
      throw new AppError(403, 'session_required', 'This needs a logged-in session; a token cannot do it');
    case 'level':
      assertLevel(requester, access.level);
      break;
    case 'roles':
      assertRole(requester, access.roles);
      break;
    case 'staff':
      assertStaff(requester);
      break;
  }
  throw new AppError(403, 'forbidden', 'You may not do this');
}
