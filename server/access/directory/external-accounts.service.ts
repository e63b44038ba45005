import type { AuditActor, AuditLog } from '../../audit/audit-log.js';
import { isUniqueViolation, type Queryable } from '../../db/index.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import type { Level, StaffRole, User, UsersRepository } from '../users.repository.js';
import type { ExternalAccountsRepository } from './external-accounts.repository.js';
import type { GroupMapping } from './group-mapping.js';

/** Where an account comes from. */
export type AccountSource = 'local' | 'ldap' | `oidc:${string}`;

/** Someone the directory or a single sign-on provider vouched for, with what their groups give them here. */
export interface ExternalIdentity {
  source: Exclude<AccountSource, 'local'>;
  /** The directory entry's DN, or the provider's issuer and subject. */
  externalId: string;
  /** Lower case; empty when the directory or provider gave none. */
  email: string;
  name: string;
  /** The groups as the directory or provider named them, for the audit log. */
  groups: readonly string[];
  mapping: GroupMapping;
  /** The institutions this source's configuration manages (its institutionGroups): memberships of others are left alone. */
  managedInstitutions: readonly string[];
}

/** A directory or provider identity waiting to be linked to the local account with the same address: its owner must prove the local password too. */
export interface PendingLink {
  userId: number;
  email: string;
  identity: ExternalIdentity;
  /** Milliseconds since the epoch after which the link must be proven again. */
  expiresAt: number;
}

export type ExternalSignIn = { status: 'ok'; user: User } | { status: 'link_required'; pending: PendingLink };

/** Stores the level an account's agreements and memberships give (the agreements service). */
export interface LevelRefresh {
  applyLevel(userId: number, now: Date, trx: Queryable, actor: AuditActor, reason: string, options?: { lower?: boolean }): Promise<{ from: Level; to: Level } | undefined>;
}

/** How long a proven directory or provider identity waits for the local password that links it. */
export const PENDING_LINK_MINUTES = 10;

/**
 * Accounts of people the hospital's directory or single sign-on vouches for.
 * The first sign-in creates the account, confirmed (no mail: the directory
 * vouched for the address) and marked with its source; every sign-in sets
 * the staff roles and the institution memberships the person's groups give
 * now — a group that is gone takes its role with it. An address that already
 * has a local account is not taken over: the owner proves the local password
 * once and the accounts are linked (PendingLink). Every step is audited.
 */
export class ExternalAccountsService {
  constructor(
    private readonly deps: {
      users: UsersRepository;
      repository: ExternalAccountsRepository;
      audit: AuditLog;
      levels?: LevelRefresh;
      log: Logger;
      clock?: () => Date;
    },
  ) {}

  private now(): Date {
    return (this.deps.clock ?? (() => new Date()))();
  }

  /** Signs in an identity the directory or a provider proved: the account, made on the first sign-in, with its roles set afresh. */
  async signIn(identity: ExternalIdentity, actor: AuditActor): Promise<ExternalSignIn> {
    const { users, repository, audit } = this.deps;
    const now = this.now();
    if (identity.email === '') {
      await audit.record({ action: 'auth.login_failed', actorId: null, subjectType: 'user', ip: actor.ip ?? null, details: { source: identity.source, externalId: identity.externalId, reason: 'no_email' } });
      throw new AppError(403, 'no_email', `Your ${sourceLabel(identity.source)} account has no e-mail address, which Slidebank needs; ask the directory's administrators to add one`);
    }
    let userId = await repository.findBySource(identity.source, identity.externalId);
    if (userId === undefined) {
      const existing = await users.findByEmail(identity.email);
      if (existing) {
        if (existing.source === identity.source && identity.source === 'ldap') {
          // The same directory, the entry moved (a new DN for the same address): the directory is the authority on its own entries.
          await repository.setSource(existing.id, identity.source, identity.externalId, now);
          userId = existing.id;
        } else if (existing.source !== undefined && existing.source !== 'local') {
          await audit.record({ action: 'auth.login_failed', actorId: existing.id, subjectType: 'user', subjectId: existing.id, ip: actor.ip ?? null, details: { source: identity.source, reason: 'address_of_other_source', accountSource: existing.source } });
          throw new AppError(409, 'address_taken', `The address ${identity.email} belongs to an account that signs in another way (${sourceLabel(existing.source)}); ask an administrator`);
        } else {
          await audit.record({ action: 'auth.link_requested', actorId: existing.id, subjectType: 'user', subjectId: existing.id, ip: actor.ip ?? null, details: { source: identity.source } });
          return { status: 'link_required', pending: { userId: existing.id, email: existing.email, identity, expiresAt: now.getTime() + PENDING_LINK_MINUTES * 60_000 } };
        }
      } else {
        userId = await this.create(identity, actor, now);
      }
    }
    return { status: 'ok', user: await this.refresh(userId, identity, actor, now) };
  }

  /** The owner proved the local password too: the local account now signs in through the directory or provider. */
  async confirmLink(pending: PendingLink, actor: AuditActor): Promise<User> {
    const { users, repository, audit } = this.deps;
    const now = this.now();
    if (pending.expiresAt < now.getTime()) throw new AppError(410, 'link_expired', 'Too much time has passed; sign in again to link the accounts');
    const user = await users.findById(pending.userId);
    if (!user || user.email !== pending.email || (user.source !== undefined && user.source !== 'local')) {
      throw new AppError(409, 'link_invalid', 'This account cannot be linked any more; sign in again');
    }
    const { identity } = pending;
    await repository.transaction(async (trx) => {
      await repository.setSource(user.id, identity.source, identity.externalId, now, trx);
      await audit.record({ action: 'user.linked', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: { source: identity.source, externalId: identity.externalId } }, trx);
    });
    return this.refresh(user.id, identity, actor, now);
  }

  /** A sign-in the provider's answer did not pass (the reasons the steps above record themselves are not recorded twice). */
  async recordRefusal(source: string, code: string, actor: AuditActor): Promise<void> {
    if (['account_disabled', 'no_email', 'address_taken'].includes(code)) return;
    await this.deps.audit.record({ action: 'auth.login_failed', actorId: null, subjectType: 'user', ip: actor.ip ?? null, details: { source, reason: code } });
  }

  /** Administrators turn the local password of a directory or single sign-on account off (or on again). */
  async setLocalLogin(userId: number, allowed: boolean, actor: AuditActor): Promise<User> {
    const { users, repository, audit } = this.deps;
    const user = await users.findById(userId);
    if (!user) throw new AppError(404, 'user_not_found', `No user ${userId}`);
    if (!allowed && (user.source ?? 'local') === 'local') {
      throw new AppError(409, 'local_account', 'This account has only its local password; local login can be turned off for directory and single sign-on accounts only');
    }
    const now = this.now();
    await repository.transaction(async (trx) => {
      await repository.setLocalLoginDisabled(userId, !allowed, now, trx);
      await audit.record({ action: allowed ? 'user.local_login_enabled' : 'user.local_login_disabled', actorId: actor.actorId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null }, trx);
    });
    return (await users.findById(userId))!;
  }

  private async create(identity: ExternalIdentity, actor: AuditActor, now: Date): Promise<number> {
    const { users, repository, audit } = this.deps;
    try {
      return await users.transaction(async (trx) => {
        const created = await users.create(
          { email: identity.email, name: identity.name, passwordHash: null, level: 'L1', roles: [], emailConfirmedAt: now },
          now,
          trx,
        );
        await repository.setSource(created.id, identity.source, identity.externalId, now, trx);
        await audit.record({ action: 'user.created', actorId: created.id, subjectType: 'user', subjectId: created.id, ip: actor.ip ?? null, details: { source: identity.source, externalId: identity.externalId } }, trx);
        return created.id;
      });
    } catch (error) {
      // Two first sign-ins at once: the other made the account.
      if (!isUniqueViolation(error)) throw error;
      const id = await repository.findBySource(identity.source, identity.externalId);
      if (id === undefined) throw new AppError(409, 'address_taken', `The address ${identity.email} has just been taken; sign in again`);
      return id;
    }
  }

  /** Roles, memberships and name as the groups and the directory say now; the login recorded. */
  private async refresh(userId: number, identity: ExternalIdentity, actor: AuditActor, now: Date): Promise<User> {
    const { users, repository, audit, levels } = this.deps;
    const before = await users.findById(userId);
    if (!before) throw new AppError(409, 'link_invalid', 'The account is gone; sign in again');
    if (before.disabledAt) {
      await audit.record({ action: 'auth.login_failed', actorId: userId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null, details: { source: identity.source, reason: 'disabled' } });
      throw new AppError(403, 'account_disabled', 'This account is disabled; ask an administrator');
    }
    const roles = identity.mapping.roles;
    await repository.transaction(async (trx) => {
      if (!sameRoles(before.roles, roles)) {
        await users.setRoles(userId, roles, now, trx);
        await audit.record({ action: 'user.roles_changed', actorId: userId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null, details: { from: before.roles, to: roles, reason: `groups in ${sourceLabel(identity.source)}` } }, trx);
      }
      if (identity.name !== '' && identity.name !== before.name) await repository.setName(userId, identity.name, now, trx);
      const memberships = await repository.syncMemberships(userId, identity.mapping.institutions, identity.managedInstitutions, now, trx);
      if (memberships.unknown.length > 0) this.deps.log.warn({ institutions: memberships.unknown, source: identity.source }, 'groups name institutions that do not exist; create them first');
      if (memberships.added.length + memberships.removed.length > 0) {
        await audit.record({ action: 'user.memberships_changed', actorId: userId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null, details: { ...memberships, reason: `groups in ${sourceLabel(identity.source)}` } }, trx);
        await levels?.applyLevel(userId, now, trx, actor, `groups in ${sourceLabel(identity.source)}`, { lower: true });
      }
    });
    await users.recordLogin(userId, now);
    await audit.record({ action: 'auth.login', actorId: userId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null, details: { source: identity.source, roles, groups: identity.groups.length } });
    return (await users.findById(userId))!;
  }
}

function sameRoles(a: readonly StaffRole[], b: readonly StaffRole[]): boolean {
  return a.length === b.length && a.every((role) => b.includes(role));
}

/** How a source is named to people: "directory", "single sign-on (hospital)". */
export function sourceLabel(source: string): string {
  if (source === 'ldap') return 'directory';
  if (source.startsWith('oidc:')) return `single sign-on (${source.slice(5)})`;
  return 'local';
}
