import type { AccessToken } from './access-tokens.repository.js';
import { effectiveLevel } from './levels.js';
import type { Level, StaffRole, User } from './users.repository.js';

/** What the API shows of an account to its owner. */
export interface AccountView {
  id: number;
  email: string;
  name: string;
  institution: string;
  /** The level in force now (an expired L2 shows as L1, an unconfirmed account as L0, staff at least L1). */
  level: Level;
  /** The level as stored, before expiry and confirmation are applied. */
  storedLevel: Level;
  levelExpiresAt: string | null;
  roles: StaffRole[];
  emailConfirmed: boolean;
  createdAt: string;
}

/** What administrators see of an account. */
export interface AdminUserView extends AccountView {
  emailConfirmedAt: string | null;
  disabled: boolean;
  disabledAt: string | null;
  lastLoginAt: string | null;
}

export interface TokenView {
  id: number;
  name: string;
  prefix: string;
  scope: AccessToken['scope'];
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export function accountView(user: User, now: Date): AccountView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    institution: user.institution,
    level: effectiveLevel(user, now),
    storedLevel: user.level,
    levelExpiresAt: iso(user.levelExpiresAt),
    roles: user.roles,
    emailConfirmed: user.emailConfirmedAt !== null,
    createdAt: user.createdAt.toISOString(),
  };
}

export function adminUserView(user: User, now: Date): AdminUserView {
  return {
    ...accountView(user, now),
    emailConfirmedAt: iso(user.emailConfirmedAt),
    disabled: user.disabledAt !== null,
    disabledAt: iso(user.disabledAt),
    lastLoginAt: iso(user.lastLoginAt),
  };
}

export function tokenView(token: AccessToken, now: Date): TokenView {
  const status = token.revokedAt ? 'revoked' : token.expiresAt && token.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    id: token.id,
    name: token.name,
    prefix: token.prefix,
    scope: token.scope,
    status,
    createdAt: token.createdAt.toISOString(),
    lastUsedAt: iso(token.lastUsedAt),
    expiresAt: iso(token.expiresAt),
    revokedAt: iso(token.revokedAt),
  };
}
