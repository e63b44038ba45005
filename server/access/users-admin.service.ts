import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation, type Queryable } from '../db/index.js';
import { AppError } from '../errors.js';
import type { AccessTokensRepository } from './access-tokens.repository.js';
import { hashPassword } from './password.js';
import { passwordProblems } from './password-policy.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { Level, StaffRole, User, UserSearch, UsersRepository } from './users.repository.js';
import type { AuthTokensRepository } from './auth-tokens.repository.js';
import { adminUserViewOf, type AdminUserList, type AdminUserView } from './views.js';

/** An L2 given by `user add --level L2` is an administrative DUA approval: one year, then the expiry rules apply. */
export const ADMINISTRATIVE_L2_DAYS = 365;

/** An account made L2 by an administrator gets an approval on record, valid a year, so expiry and reports apply to it as to anyone. */
export interface AdministrativeApproval {
  grantAdministrativeApproval(userId: number, actor: AuditActor, now: Date, trx: Queryable): Promise<Date>;
}

/** Which accounts, and which page of them. */
export interface UserQuery extends Omit<UserSearch, 'limit' | 'offset'> {
  page: number;
  pageSize: number;
}

/** A confirmed account as an operator makes it; the e-mail address in lower case. */
export interface NewAccount {
  email: string;
  password: string;
  level: Level;
  roles: StaffRole[];
  name?: string;
  institution?: string;
}

export interface LevelChange {
  level: Level;
  /** Why, for the audit log. */
  reason?: string;
}

/**
 * What administrators do to accounts — list and search, set the level, set
 * staff roles, disable and enable — and what operators do from the CLI.
 * Every change is audited in the transaction that makes it.
 *
 * L2 is not set here: it comes with an approved data use agreement (the DUA
 * work), or, for scripts and first set-up, from `user add --level L2`, which
 * records a one-year administrative grant in `levelExpiresAt`.
 */
export class UsersAdminService {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
    private readonly tokens: AccessTokensRepository,
    private readonly links: AuthTokensRepository,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
    /** Records the administrative DUA approval behind an account created at L2 (the agreements service). */
    private readonly administrativeApproval?: AdministrativeApproval,
  ) {}

  async search({ page, pageSize, ...criteria }: UserQuery): Promise<AdminUserList> {
    const { items, total } = await this.users.search({ ...criteria, limit: pageSize, offset: (page - 1) * pageSize });
    const now = this.clock();
    return { items: items.map((user) => adminUserViewOf(user, now)), total, page, pageSize };
  }

  async get(id: number): Promise<AdminUserView> {
    return adminUserViewOf(await this.find(id), this.clock());
  }

  async all(): Promise<AdminUserView[]> {
    const now = this.clock();
    return (await this.users.all()).map((user) => adminUserViewOf(user, now));
  }

  async getByEmail(email: string): Promise<AdminUserView> {
    const user = await this.users.findByEmail(email.trim());
    if (!user) throw new AppError(404, 'user_not_found', `There is no account for ${email}`);
    return adminUserViewOf(user, this.clock());
  }

  /** A confirmed account, for `slidebank user add`. */
  async add(body: NewAccount, actor: AuditActor): Promise<AdminUserView> {
    const problems = passwordProblems(body.password, body.email);
    if (problems.length > 0) throw new AppError(400, 'weak_password', `The password ${problems.join('; ')}`);
    const now = this.clock();
    const levelExpiresAt = body.level === 'L2' ? new Date(now.getTime() + ADMINISTRATIVE_L2_DAYS * 86_400_000) : null;
    const passwordHash = await hashPassword(body.password);
    try {
      const user = await this.users.transaction(async (trx) => {
        const created = await this.users.create(
          {
            email: body.email,
            name: body.name ?? '',
            institution: body.institution ?? '',
            passwordHash,
            level: body.level,
            levelExpiresAt,
            roles: [...new Set(body.roles)],
            emailConfirmedAt: now,
          },
          now,
          trx,
        );
        const details = { email: created.email, level: created.level, roles: created.roles, levelExpiresAt: levelExpiresAt?.toISOString() ?? null, via: via(actor) };
        await this.audit.record({ action: 'user.created', actorId: actor.actorId, subjectType: 'user', subjectId: created.id, ip: actor.ip ?? null, details }, trx);
        if (created.level !== 'L0') {
          await this.audit.record(
            {
              action: 'user.level_changed',
              actorId: actor.actorId,
              subjectType: 'user',
              subjectId: created.id,
              ip: actor.ip ?? null,
              details: { from: null, to: created.level, levelExpiresAt: details.levelExpiresAt, via: details.via },
            },
            trx,
          );
        }
        if (created.level === 'L2' && this.administrativeApproval) {
          await this.administrativeApproval.grantAdministrativeApproval(created.id, actor, now, trx);
        }
        return (await this.users.findById(created.id, trx)) ?? created;
      });
      return adminUserViewOf(user, now);
    } catch (error) {
      if (isUniqueViolation(error)) throw new AppError(409, 'email_taken', `${body.email} already has an account`);
      throw error;
    }
  }

  /** Sets L0, L1 or L3; raising an unconfirmed account to L1 or more confirms its address (the administrator vouches for it). */
  async setLevel(id: number, body: LevelChange, actor: AuditActor): Promise<AdminUserView> {
    if (body.level === 'L2') {
      throw new AppError(400, 'level_requires_dua', 'L2 comes with an approved data use agreement; it cannot be set directly');
    }
    const user = await this.find(id);
    const now = this.clock();
    const confirms = body.level !== 'L0' && !user.emailConfirmedAt;
    if (user.level === body.level && !user.levelExpiresAt && !confirms) return adminUserViewOf(user, now);
    await this.users.transaction(async (trx) => {
      await this.users.setLevel(user.id, body.level, null, now, trx);
      if (confirms) await this.users.confirmEmail(user.id, now, trx);
      await this.audit.record(
        {
          action: 'user.level_changed',
          actorId: actor.actorId,
          subjectType: 'user',
          subjectId: user.id,
          ip: actor.ip ?? null,
          details: {
            from: user.level,
            to: body.level,
            previousExpiry: user.levelExpiresAt?.toISOString() ?? null,
            ...(confirms ? { emailConfirmed: true } : {}),
            ...(body.reason ? { reason: body.reason } : {}),
            via: via(actor),
          },
        },
        trx,
      );
    });
    return this.view(user.id);
  }

  async setRoles(id: number, wanted: StaffRole[], actor: AuditActor): Promise<AdminUserView> {
    const roles = [...new Set(wanted)].sort();
    const user = await this.find(id);
    const now = this.clock();
    if (roles.join() === user.roles.join()) return adminUserViewOf(user, now);
    await this.users.transaction(async (trx) => {
      if (user.roles.includes('admin') && !roles.includes('admin') && !user.disabledAt) await this.assertNotLastAdmin(trx);
      await this.users.setRoles(user.id, roles, now, trx);
      await this.audit.record(
        { action: 'user.roles_changed', actorId: actor.actorId, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: { from: user.roles, to: roles, via: via(actor) } },
        trx,
      );
    });
    return this.view(user.id);
  }

  /**
   * Disables the account for good as far as what it held goes: its sessions
   * end, its access tokens and unused reset links are revoked, so that
   * enabling it again later brings none of them back.
   */
  async disable(id: number, actor: AuditActor): Promise<AdminUserView> {
    const user = await this.find(id);
    if (actor.actorId === user.id) throw new AppError(409, 'cannot_disable_self', 'You cannot disable your own account');
    if (user.disabledAt) return adminUserViewOf(user, this.clock());
    const now = this.clock();
    await this.users.transaction(async (trx) => {
      if (user.roles.includes('admin')) await this.assertNotLastAdmin(trx);
      await this.users.setDisabled(user.id, now, now, trx);
      const sessions = await this.sessions.destroyForUser(user.id, undefined, trx);
      const revoked = await this.tokens.revokeAllForUser(user.id, now, trx);
      await this.links.withdraw(user.id, 'reset_password', trx);
      await this.audit.record(
        {
          action: 'user.disabled',
          actorId: actor.actorId,
          subjectType: 'user',
          subjectId: user.id,
          ip: actor.ip ?? null,
          details: { sessionsEnded: sessions, tokensRevoked: revoked.length, revokedTokens: revoked.map((token) => token.prefix), via: via(actor) },
        },
        trx,
      );
    });
    return this.view(user.id);
  }

  /** Lets the account log in again; what `disable` revoked stays revoked. */
  async enable(id: number, actor: AuditActor): Promise<AdminUserView> {
    const user = await this.find(id);
    if (!user.disabledAt) return adminUserViewOf(user, this.clock());
    const now = this.clock();
    await this.users.transaction(async (trx) => {
      await this.users.setDisabled(user.id, null, now, trx);
      await this.audit.record({ action: 'user.enabled', actorId: actor.actorId, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: { via: via(actor) } }, trx);
    });
    return this.view(user.id);
  }

  private async assertNotLastAdmin(trx: Parameters<UsersRepository['countActiveWithRole']>[1]): Promise<void> {
    if ((await this.users.countActiveWithRole('admin', trx)) <= 1) {
      throw new AppError(409, 'last_admin', 'This is the last active administrator; make someone else an administrator first');
    }
  }

  private async find(id: number): Promise<User> {
    const user = await this.users.findById(id);
    if (!user) throw new AppError(404, 'user_not_found', 'There is no user with this id');
    return user;
  }

  private async view(id: number): Promise<AdminUserView> {
    return adminUserViewOf(await this.find(id), this.clock());
  }
}

function via(actor: AuditActor): 'http' | 'cli' {
  return actor.via ?? 'http';
}
