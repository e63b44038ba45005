import { AppError } from '../errors.js';
import type { CapabilityClaims } from './tile-capability.js';
import type { Level, StaffRole, User } from './users.repository.js';

/**
 * The access rules (docs/domain.md, "Access levels"), in one place. Everything
 * that decides whether a requester may do something asks these functions:
 * the route declarations (http/access.ts), the slide access
 * policy the tile routes call, and the services.
 */

export const LEVELS: readonly Level[] = ['L0', 'L1', 'L2', 'L3'];
export const STAFF_ROLES: readonly StaffRole[] = ['admin', 'curator', 'pathologist'];

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

/**
 * The level a user has right now, checked on every request:
 * - an unconfirmed e-mail address is L0 whatever the stored level;
 * - a level past its `levelExpiresAt` (an L2 whose DUA ran out) counts as L1;
 * - staff roles see the catalog and the viewer, so staff are at least L1 —
 *   but a role never stands in for L2 or L3: downloads and export bundles
 *   need the level itself (a DUA, a membership).
 */
export function effectiveLevel(user: Pick<User, 'level' | 'levelExpiresAt' | 'emailConfirmedAt' | 'roles'>, now: Date): Level {
  let level: Level = user.emailConfirmedAt ? user.level : 'L0';
  if (user.levelExpiresAt && user.levelExpiresAt.getTime() <= now.getTime() && levelRank(level) > levelRank('L1')) level = 'L1';
  if (user.roles.length > 0 && levelRank(level) < levelRank('L1')) level = 'L1';
  return level;
}

/** Who is asking, resolved once per request from the session or the bearer token. */
export interface Requester {
  /** Null when nobody is logged in. */
  user: User | null;
  /** The effective level (see effectiveLevel); L0 when anonymous. */
  level: Level;
  roles: StaffRole[];
  via: 'anonymous' | 'session' | 'token' | 'capability';
  /** Set when `via` is `token`. */
  token?: { id: number; scope: TokenScope };
  /** Set when `via` is `capability`: the tile capability that admitted the request (its user, slide and expiry). */
  capability?: CapabilityClaims;
}

export type TokenScope = 'all' | 'read';

export const ANONYMOUS: Requester = Object.freeze({ user: null, level: 'L0', roles: [], via: 'anonymous' }) as Requester;

export function requesterFor(user: User, via: 'session' | 'token', now: Date, token?: Requester['token']): Requester {
  return { user, level: effectiveLevel(user, now), roles: user.roles, via, ...(token ? { token } : {}) };
}

/**
 * The requester of a request admitted by a tile capability: L1 for the one
 * slide it names, no roles, and no user row (nothing was read to admit it).
 */
export function capabilityRequester(claims: CapabilityClaims): Requester {
  return { user: null, level: 'L1', roles: [], via: 'capability', capability: claims };
}

export function hasLevel(requester: Requester, level: Level): boolean {
  return levelRank(requester.level) >= levelRank(level);
}

export function isStaff(requester: Requester): boolean {
  return requester.roles.length > 0;
}

/** 401 when nobody is logged in, so that clients know to log in; 403 when someone is, but may not. */
function refuse(requester: Requester, code: string, message: string): AppError {
  if (requester.via === 'anonymous') return new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return new AppError(403, code, message);
}

export function assertAuthenticated(requester: Requester): asserts requester is Requester & { user: User } {
  if (!requester.user) throw refuse(requester, 'unauthenticated', '');
}

export function assertLevel(requester: Requester, level: Level): void {
  if (!hasLevel(requester, level)) {
    throw refuse(requester, 'level_required', `This needs access level ${level}${levelHint(level)}; yours is ${requester.level}`);
  }
}

export function assertRole(requester: Requester, roles: readonly StaffRole[]): void {
  if (!requester.roles.some((role) => roles.includes(role))) {
    throw refuse(requester, 'role_required', `Only ${roles.join(' or ')} staff may do this`);
  }
}

export function assertStaff(requester: Requester): void {
  if (!isStaff(requester)) throw refuse(requester, 'staff_only', 'Only staff may do this');
}

function levelHint(level: Level): string {
  switch (level) {
    case 'L1':
      return ' (a confirmed e-mail address)';
    case 'L2':
      return ' (an approved data use agreement)';
    case 'L3':
      return ' (membership of a partner institution)';
    default:
      return '';
  }
}
