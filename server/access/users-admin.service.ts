import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation } from '../db/index.js';
import { AppError } from '../errors.js';
import type { AccessTokensRepository } from './access-tokens.repository.js';
import { email as emailShape, institution, parseInput, password, personName } from './account-input.js';
import { LEVELS, STAFF_ROLES } from './levels.js';
import { hashPassword } from './password.js';
import { passwordProblems } from './password-policy.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { Level, StaffRole, User, UsersRepository } from './users.repository.js';
import type { AuthTokensRepository } from './auth-tokens.repository.js';
import { adminUserView, type AdminUserView } from './views.js';

/** Who made an administrative change: an administrator over HTTP, or an operator at the CLI (no account). */
export interface Actor {
  id: number | null;
  ip: string | null;
  via: 'http' | 'cli';
}

/** An L2 given by `user add --level L2` is an administrative DUA approval: one year, then the expiry rules apply. */
export const ADMINISTRATIVE_L2_DAYS = 365;

/** An account made L2 by an administrator gets an approval on record, valid a year, so expiry and reports apply to it as to anyone. */
export interface AdministrativeApproval {
  grantAdministrativeApproval(userId: number, actor: { id: number | null; ip?: string | null }, now: Date, trx: Knex): Promise<Date>;
}

const level = z.enum(LEVELS as [Level, ...Level[]], { error: `level must be one of ${LEVELS.join(', ')}` });
const role = z.enum(STAFF_ROLES as [StaffRole, ...StaffRole[]], { error: `role must be one of ${STAFF_ROLES.join(', ')}` });

const searchQuery = z.strictObject({
  q: z.string().trim().max(200, 'q must be at most 200 characters').optional(),
  level: level.optional(),
  role: role.optional(),
  status: z.enum(['active', 'disabled', 'unconfirmed'], { error: 'status must be active, disabled or unconfirmed' }).optional(),
  page: z.coerce.number({ error: 'page must be a number' }).int('page must be a whole number').min(1, 'page must be at least 1').max(1_000_000, 'page is too large').default(1),
  pageSize: z.coerce.number({ error: 'pageSize must be a number' }).int('pageSize must be a whole number').min(1, 'pageSize must be at least 1').max(100, 'pageSize must be at most 100').default(50),
});
const levelChange = z.strictObject({ level, reason: z.string().trim().max(500, 'reason must be at most 500 characters').optional() });
const rolesChange = z.strictObject({ roles: z.array(role, { error: 'roles must be a list' }).max(STAFF_ROLES.length, 'roles lists a role twice') });
const newAccount = z.strictObject({
  email: emailShape,
  password,
  level,
  roles: z.array(role).default([]),
  name: personName.optional(),
  institution: institution.optional(),
});

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

  async search(query: unknown): Promise<{ items: AdminUserView[]; total: number; page: number; pageSize: number }> {
    const { page, pageSize, ...criteria } = parseInput(searchQuery, query);
    const { items, total } = await this.users.search({ ...criteria, limit: pageSize, offset: (page - 1) * pageSize });
    const now = this.clock();
    return { items: items.map((user) => adminUserView(user, now)), total, page, pageSize };
  }

  async get(rawId: string | undefined): Promise<AdminUserView> {
    return adminUserView(await this.find(rawId), this.clock());
  }

  async all(): Promise<AdminUserView[]> {
    const now = this.clock();
    return (await this.users.all()).map((user) => adminUserView(user, now));
  }

  async getByEmail(email: string): Promise<AdminUserView> {
    const user = await this.users.findByEmail(email.trim());
    if (!user) throw new AppError(404, 'user_not_found', `There is no account for ${email}`);
    return adminUserView(user, this.clock());
  }

  /** A confirmed account, for `slidebank user add`. */
  async add(input: unknown, actor: Actor): Promise<AdminUserView> {
    const body = parseInput(newAccount, input);
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
        const details = { email: created.email, level: created.level, roles: created.roles, levelExpiresAt: levelExpiresAt?.toISOString() ?? null, via: actor.via };
        await this.audit.record({ action: 'user.created', actorId: actor.id, subjectType: 'user', subjectId: created.id, ip: actor.ip, details }, trx);
        if (created.level !== 'L0') {
          await this.audit.record(
            {
              action: 'user.level_changed',
              actorId: actor.id,
              subjectType: 'user',
              subjectId: created.id,
              ip: actor.ip,
              details: { from: null, to: created.level, levelExpiresAt: details.levelExpiresAt, via: actor.via },
            },
            trx,
          );
        }
        if (created.level === 'L2' && this.administrativeApproval) {
          await this.administrativeApproval.grantAdministrativeApproval(created.id, { id: actor.id, ip: actor.ip }, now, trx);
        }
        return (await this.users.findById(created.id, trx)) ?? created;
      });
      return adminUserView(user, now);
    } catch (error) {
      if (isUniqueViolation(error)) throw new AppError(409, 'email_taken', `${body.email} already has an account`);
      throw error;
    }
  }

  /** Sets L0, L1 or L3; raising an unconfirmed account to L1 or more confirms its address (the administrator vouches for it). */
  async setLevel(rawId: string | number | undefined, input: unknown, actor: Actor): Promise<AdminUserView> {
    const body = parseInput(levelChange, input);
    if (body.level === 'L2') {
      throw new AppError(400, 'level_requires_dua', 'L2 comes with an approved data use agreement; it cannot be set directly');
    }
    const user = await this.find(rawId);
    const now = this.clock();
    const confirms = body.level !== 'L0' && !user.emailConfirmedAt;
    if (user.level === body.level && !user.levelExpiresAt && !confirms) return adminUserView(user, now);
    await this.users.transaction(async (trx) => {
      await this.users.setLevel(user.id, body.level, null, now, trx);
      if (confirms) await this.users.confirmEmail(user.id, now, trx);
      await this.audit.record(
        {
          action: 'user.level_changed',
          actorId: actor.id,
          subjectType: 'user',
          subjectId: user.id,
          ip: actor.ip,
          details: {
            from: user.level,
            to: body.level,
            previousExpiry: user.levelExpiresAt?.toISOString() ?? null,
            ...(confirms ? { emailConfirmed: true } : {}),
            ...(body.reason ? { reason: body.reason } : {}),
            via: actor.via,
          },
        },
        trx,
      );
    });
    return this.view(user.id);
  }

  async setRoles(rawId: string | undefined, input: unknown, actor: Actor): Promise<AdminUserView> {
    const roles = [...new Set(parseInput(rolesChange, input).roles)].sort();
    const user = await this.find(rawId);
    const now = this.clock();
    if (roles.join() === user.roles.join()) return adminUserView(user, now);
    await this.users.transaction(async (trx) => {
      if (user.roles.includes('admin') && !roles.includes('admin') && !user.disabledAt) await this.assertNotLastAdmin(trx);
      await this.users.setRoles(user.id, roles, now, trx);
      await this.audit.record(
        { action: 'user.roles_changed', actorId: actor.id, subjectType: 'user', subjectId: user.id, ip: actor.ip, details: { from: user.roles, to: roles, via: actor.via } },
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
  async disable(rawId: string | number | undefined, actor: Actor): Promise<AdminUserView> {
    const user = await this.find(rawId);
    if (actor.id === user.id) throw new AppError(409, 'cannot_disable_self', 'You cannot disable your own account');
    if (user.disabledAt) return adminUserView(user, this.clock());
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
          actorId: actor.id,
          subjectType: 'user',
          subjectId: user.id,
          ip: actor.ip,
          details: { sessionsEnded: sessions, tokensRevoked: revoked.length, revokedTokens: revoked.map((token) => token.prefix), via: actor.via },
        },
        trx,
      );
    });
    return this.view(user.id);
  }

  /** Lets the account log in again; what `disable` revoked stays revoked. */
  async enable(rawId: string | number | undefined, actor: Actor): Promise<AdminUserView> {
    const user = await this.find(rawId);
    if (!user.disabledAt) return adminUserView(user, this.clock());
    const now = this.clock();
    await this.users.transaction(async (trx) => {
      await this.users.setDisabled(user.id, null, now, trx);
      await this.audit.record({ action: 'user.enabled', actorId: actor.id, subjectType: 'user', subjectId: user.id, ip: actor.ip, details: { via: actor.via } }, trx);
    });
    return this.view(user.id);
  }

  private async assertNotLastAdmin(trx: Parameters<UsersRepository['countActiveWithRole']>[1]): Promise<void> {
    if ((await this.users.countActiveWithRole('admin', trx)) <= 1) {
      throw new AppError(409, 'last_admin', 'This is the last active administrator; make someone else an administrator first');
    }
  }

  private async find(rawId: string | number | undefined): Promise<User> {
    const id = typeof rawId === 'number' ? rawId : /^[1-9]\d{0,9}$/.test(rawId ?? '') ? Number(rawId) : NaN;
    const user = Number.isNaN(id) ? undefined : await this.users.findById(id);
    if (!user) throw new AppError(404, 'user_not_found', 'There is no user with this id');
    return user;
  }

  private async view(id: number): Promise<AdminUserView> {
    return adminUserView(await this.find(id), this.clock());
  }
}
