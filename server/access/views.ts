import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import type { AccessToken } from './access-tokens.repository.js';
import { effectiveLevel, LEVELS, STAFF_ROLES } from './levels.js';
import type { Level, StaffRole, User } from './users.repository.js';

const level = z.enum(LEVELS as [Level, ...Level[]]);
const role = z.enum(STAFF_ROLES as [StaffRole, ...StaffRole[]]);

/** What the API shows of an account to its owner. */
export const accountView = z
  .object({
    id: z.number().int(),
    email: z.string(),
    name: z.string(),
    institution: z.string(),
    level: level.meta({ description: 'The level in force now (an expired L2 shows as L1, an unconfirmed account as L0, staff at least L1)' }),
    storedLevel: level.meta({ description: 'The level as stored, before expiry and confirmation are applied' }),
    levelExpiresAt: timestamp.nullable(),
    roles: z.array(role),
    emailConfirmed: z.boolean(),
    source: z.string().meta({ description: 'Where the account comes from: `local` (registered here), `ldap` (the hospital directory) or `oidc:<provider>` (single sign-on)' }),
    createdAt: timestamp,
  })
  .meta({ id: 'Account' });
export type AccountView = z.infer<typeof accountView>;

/** Who is logged in, as login and `GET /api/auth/me` answer. */
export const meView = accountView
  .extend({
    via: z.enum(['anonymous', 'session', 'token']).meta({ description: 'How this request was authenticated' }),
    csrfToken: z.string().optional().meta({ description: "The session's token for the X-CSRF-Token header of writes (sessions only)" }),
    mustChangePassword: z.boolean().meta({
      description: 'The password was chosen by somebody else (the initial administrator\'s printed one): change it (POST /api/account/password) before anything else',
    }),
  })
  .meta({ id: 'Me' });
export type MeView = z.infer<typeof meView>;

/** What administrators see of an account. */
export const adminUserView = accountView
  .extend({
    emailConfirmedAt: timestamp.nullable(),
    disabled: z.boolean(),
    disabledAt: timestamp.nullable(),
    lastLoginAt: timestamp.nullable(),
    localLoginDisabled: z.boolean().meta({ description: 'An administrator turned the local password of this directory or single sign-on account off' }),
  })
  .meta({ id: 'AdminUser' });
export type AdminUserView = z.infer<typeof adminUserView>;

export const adminUserList = z
  .object({ items: z.array(adminUserView), total: z.number().int(), page: z.number().int(), pageSize: z.number().int() })
  .meta({ id: 'AdminUserList' });
export type AdminUserList = z.infer<typeof adminUserList>;

export const tokenView = z
  .object({
    id: z.number().int(),
    name: z.string(),
    prefix: z.string().meta({ description: 'The first characters of the token, to recognise it by' }),
    scope: z.enum(['all', 'read']),
    status: z.enum(['active', 'expired', 'revoked']),
    createdAt: timestamp,
    lastUsedAt: timestamp.nullable(),
    expiresAt: timestamp.nullable(),
    revokedAt: timestamp.nullable(),
  })
  .meta({ id: 'AccessToken' });
export type TokenView = z.infer<typeof tokenView>;

export const tokenList = z.object({ items: z.array(tokenView) }).meta({ id: 'AccessTokenList' });
export type TokenList = z.infer<typeof tokenList>;

/** A token just made: the token itself is shown this once, never stored. */
export const createdToken = tokenView.extend({ token: z.string().meta({ description: 'The token: shown this once, never stored' }) }).meta({ id: 'NewAccessToken' });
export type CreatedToken = z.infer<typeof createdToken>;

/** The answer to registration and to requests for links: the same whether or not the address has an account. */
export const accepted = z.object({ status: z.literal('accepted'), message: z.string() }).meta({ id: 'Accepted' });
export type Accepted = z.infer<typeof accepted>;

export function accountViewOf(user: User, now: Date): AccountView {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    institution: user.institution,
    level: effectiveLevel(user, now),
    storedLevel: user.level,
    levelExpiresAt: user.levelExpiresAt,
    roles: user.roles,
    emailConfirmed: user.emailConfirmedAt !== null,
    source: user.source ?? 'local',
    createdAt: user.createdAt,
  };
}

export function adminUserViewOf(user: User, now: Date): AdminUserView {
  return {
    ...accountViewOf(user, now),
    emailConfirmedAt: user.emailConfirmedAt,
    disabled: user.disabledAt !== null,
    disabledAt: user.disabledAt,
    lastLoginAt: user.lastLoginAt,
    localLoginDisabled: user.localLoginDisabled ?? false,
  };
}

export function tokenViewOf(token: AccessToken, now: Date): TokenView {
  const status = token.revokedAt ? 'revoked' : token.expiresAt && token.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    id: token.id,
    name: token.name,
    prefix: token.prefix,
    scope: token.scope,
    status,
    createdAt: token.createdAt,
    lastUsedAt: token.lastUsedAt,
    expiresAt: token.expiresAt,
    revokedAt: token.revokedAt,
  };
}
