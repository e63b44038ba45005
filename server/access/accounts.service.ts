import type { Knex } from 'knex';
import type { AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation } from '../db/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logging.js';
import { renderMail, type MailSite } from '../mail/index.js';
import type { Mailer, MailMessage } from '../mail/mailer.js';
import {
  credentials,
  emailOnly,
  linkOnly,
  parseInput,
  passwordChange,
  passwordResetConfirmation,
  profileChange,
  registration,
} from './account-input.js';
import type { AuthTokensRepository, ConsumeResult, LinkPurpose } from './auth-tokens.repository.js';
import { assertAuthenticated, type Requester } from './levels.js';
import type { LoginThrottleRepository } from './login-throttle.repository.js';
import { alreadyRegisteredMail } from './mail-templates.js';
import { hashPassword, verifyPassword } from './password.js';
import { passwordProblems } from './password-policy.js';
import { newSecret, sha256Hex } from './secrets.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { User, UsersRepository } from './users.repository.js';
import { accountView, type AccountView } from './views.js';

export interface AccountSettings {
  /** Where users reach the appliance (mailed links start with it) and the time zone mails tell times in. */
  site: MailSite;
  confirmationHours: number;
  resetMinutes: number;
  lockout: {
    /** Failed logins for one e-mail address (registered or not) before it is locked. */
    maxFailures: number;
    /** How long failures are counted, and how long a lock lasts. */
    minutes: number;
    /** Failed logins from one client address before it is locked. */
    maxFailuresPerAddress: number;
  };
}

/** Facts about the request that the audit log keeps. */
export interface RequestMeta {
  ip: string | null;
}

/** The answer to registration and to requests for links: the same whether or not the address has an account. */
export interface Accepted {
  status: 'accepted';
  message: string;
}

const INVALID_CREDENTIALS = 'The e-mail address or the password is not correct';

/** Pages of the web client that mailed links open (mail/templates.ts's MAIL_PATHS has the confirmation and reset pages); tokens travel in the fragment, so they reach no server log. */
export const LINK_PATHS = { login: '/account/login', forgotPassword: '/account/forgot-password' } as const;

/**
 * Registration, e-mail confirmation, logging in (with throttling and
 * lock-out), password reset and change, and the account's own profile.
 *
 * Answers never tell whether an address is registered: registration and link
 * requests answer alike, a wrong password and an unknown address fail alike
 * (same status, message and — through a dummy hash — about the same time),
 * and lock-out counts per address typed, registered or not.
 */
export class AccountsService {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly users: UsersRepository,
    private readonly links: AuthTokensRepository,
    private readonly sessions: SessionsRepository,
    private readonly throttle: LoginThrottleRepository,
    private readonly mailer: Mailer,
    private readonly audit: AuditLog,
    private readonly settings: AccountSettings,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async register(input: unknown, meta: RequestMeta): Promise<Accepted> {
    const body = parseInput(registration, input);
    assertPasswordPolicy(body.password, body.email);
    // Hashed before the address is looked up, so that both outcomes take the same time.
    const passwordHash = await hashPassword(body.password);
    const now = this.clock();
    const accepted: Accepted = {
      status: 'accepted',
      message: `Thank you. A message is on its way to ${body.email}: open its link within ${this.settings.confirmationHours} hours to confirm the address.`,
    };

    const existing = await this.users.findByEmail(body.email);
    if (existing) {
      await this.tellExistingOwner(existing, now);
      return accepted;
    }
    let user: User;
    let link: { token: string; expiresAt: Date };
    try {
      [user, link] = await this.users.transaction(async (trx) => {
        const created = await this.users.create(
          { email: body.email, name: body.name, institution: body.institution, passwordHash, level: 'L0', roles: [], emailConfirmedAt: null },
          now,
          trx,
        );
        const issued = await this.issueLink(created.id, 'confirm_email', this.settings.confirmationHours * 3_600_000, now, trx);
        await this.audit.record(
          { action: 'user.registered', actorId: created.id, subjectType: 'user', subjectId: created.id, ip: meta.ip, details: { email: created.email } },
          trx,
        );
        return [created, issued] as const;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Registered by a concurrent request between our look-up and our insert.
      const raced = await this.users.findByEmail(body.email);
      if (raced) await this.tellExistingOwner(raced, now);
      return accepted;
    }
    await this.mayMail(user.email, now);
    await this.send(user.email, renderMail('confirmEmail', { name: user.name, ...link }, this.settings.site));
    return accepted;
  }

  /** Follows a confirmation link: the address is confirmed and the account becomes L1. */
  async confirmEmail(input: unknown, meta: RequestMeta): Promise<AccountView> {
    const { token } = parseInput(linkOnly, input);
    const now = this.clock();
    const user = await this.users.transaction(async (trx) => {
      const result = await this.links.consume(sha256Hex(token), 'confirm_email', now, trx);
      if (result.status !== 'ok') throw linkRefused(result, 'confirmation');
      await this.users.confirmEmail(result.userId, now, trx);
      await this.audit.record({ action: 'user.confirmed', actorId: result.userId, subjectType: 'user', subjectId: result.userId, ip: meta.ip }, trx);
      return this.users.findById(result.userId, trx);
    });
    if (!user) throw linkRefused({ status: 'unknown' }, 'confirmation');
    return accountView(user, now);
  }

  /** Sends a new confirmation link to an unconfirmed account; answers alike for any address. */
  async resendConfirmation(input: unknown): Promise<Accepted> {
    const { email } = parseInput(emailOnly, input);
    const now = this.clock();
    const user = await this.users.findByEmail(email);
    if (user && !user.emailConfirmedAt && !user.disabledAt) await this.sendConfirmation(user, now);
    return { status: 'accepted', message: `If ${email} has an account waiting for confirmation, a new link is on its way to it.` };
  }

  /**
   * Checks a login (passport-local's verify step). Throws 401 for a wrong
   * password or an unknown address alike, 429 while the address typed or the
   * client is locked out, 403 for a disabled or unconfirmed account (only
   * once the password was right).
   */
  async verifyLogin(rawEmail: unknown, rawPassword: unknown, meta: RequestMeta): Promise<User> {
    const { email, password } = parseInput(credentials, { email: rawEmail, password: rawPassword });
    const now = this.clock();
    const emailKey = throttleKey('email', email);
    const addressKey = throttleKey('address', meta.ip ?? 'unknown');
    const lockedUntil = await this.throttle.lockedUntil([emailKey, addressKey], now);
    if (lockedUntil) throw tooManyAttempts(lockedUntil, now);

    const found = await this.users.findCredentials(email);
    const matches = await verifyPassword(password, found?.passwordHash ?? (await this.timingHash()));
    if (!found || !found.passwordHash || !matches) {
      const actorId = found?.user.id ?? null;
      await this.audit.record({
        action: 'auth.login_failed',
        actorId,
        subjectType: 'user',
        ...(actorId ? { subjectId: actorId } : {}),
        ip: meta.ip,
        details: { email, reason: found ? 'wrong_password' : 'unknown_email' },
      });
      const { lockout } = this.settings;
      const window = { windowMs: lockout.minutes * 60_000, lockMs: lockout.minutes * 60_000 };
      const byEmail = await this.throttle.recordFailure(emailKey, now, { ...window, limit: lockout.maxFailures });
      const byAddress = await this.throttle.recordFailure(addressKey, now, { ...window, limit: lockout.maxFailuresPerAddress });
      const locks = [byEmail.lockedUntil ? 'email' : null, byAddress.lockedUntil ? 'address' : null].filter((x) => x !== null);
      if (locks.length > 0) {
        await this.audit.record({
          action: 'auth.locked',
          actorId,
          subjectType: 'user',
          ...(actorId ? { subjectId: actorId } : {}),
          ip: meta.ip,
          details: { email, locked: locks, minutes: lockout.minutes },
        });
        throw tooManyAttempts((byEmail.lockedUntil ?? byAddress.lockedUntil)!, now);
      }
      throw new AppError(401, 'invalid_credentials', INVALID_CREDENTIALS);
    }

    const { user } = found;
    if (user.disabledAt) throw new AppError(403, 'account_disabled', 'This account is disabled; ask an administrator');
    if (!user.emailConfirmedAt) {
      throw new AppError(403, 'email_unconfirmed', 'Confirm your e-mail address first: open the link in the message we sent (or ask for a new one)');
    }
    await this.throttle.clear(emailKey);
    await this.users.recordLogin(user.id, now);
    await this.audit.record({ action: 'auth.login', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: meta.ip });
    return user;
  }

  /** The user a session names, read afresh on every request; none when the account is gone or disabled. */
  async sessionUser(id: unknown): Promise<User | undefined> {
    if (typeof id !== 'number') return undefined;
    const user = await this.users.findById(id);
    return user && !user.disabledAt ? user : undefined;
  }

  async recordLogout(requester: Requester, meta: RequestMeta): Promise<void> {
    if (!requester.user) return;
    await this.audit.record({ action: 'auth.logout', actorId: requester.user.id, subjectType: 'user', subjectId: requester.user.id, ip: meta.ip });
  }

  /** Mails a reset link (valid for settings.resetMinutes) to an account's address; answers alike for any address. */
  async requestPasswordReset(input: unknown): Promise<Accepted> {
    const { email } = parseInput(emailOnly, input);
    const now = this.clock();
    const user = await this.users.findByEmail(email);
    if (user && !user.disabledAt && (await this.mayMail(user.email, now))) {
      const link = await this.issueLink(user.id, 'reset_password', this.settings.resetMinutes * 60_000, now);
      await this.send(user.email, renderMail('resetPassword', { name: user.name, ...link }, this.settings.site));
    }
    return { status: 'accepted', message: `If ${email} has an account, a link to choose a new password is on its way to it.` };
  }

  /** Follows a reset link: sets the new password and ends every session of the account. */
  async resetPassword(input: unknown, meta: RequestMeta): Promise<void> {
    const body = parseInput(passwordResetConfirmation, input);
    const passwordHash = await hashPassword(body.password);
    const now = this.clock();
    const email = await this.users.transaction(async (trx) => {
      const result = await this.links.consume(sha256Hex(body.token), 'reset_password', now, trx);
      if (result.status !== 'ok') throw linkRefused(result, 'password reset');
      const user = await this.users.findById(result.userId, trx);
      if (!user || user.disabledAt) throw linkRefused({ status: 'unknown' }, 'password reset');
      // Thrown inside the transaction, so a refused password leaves the link usable.
      assertPasswordPolicy(body.password, user.email);
      await this.users.setPassword(user.id, passwordHash, now, trx);
      await this.links.withdraw(user.id, 'reset_password', trx);
      await this.sessions.destroyForUser(user.id, undefined, trx);
      await this.audit.record({ action: 'user.password_reset', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: meta.ip }, trx);
      return user.email;
    });
    await this.throttle.clear(throttleKey('email', email));
  }

  /** A logged-in user's own change: the current password is required; other sessions end. */
  async changePassword(requester: Requester, input: unknown, meta: RequestMeta & { keepSession?: string }): Promise<void> {
    assertAuthenticated(requester);
    const body = parseInput(passwordChange, input);
    const user = requester.user;
    const stored = await this.users.passwordHash(user.id);
    if (!stored || !(await verifyPassword(body.currentPassword, stored))) {
      throw new AppError(403, 'wrong_password', 'The current password is not correct');
    }
    assertPasswordPolicy(body.newPassword, user.email);
    const passwordHash = await hashPassword(body.newPassword);
    const now = this.clock();
    await this.users.transaction(async (trx) => {
      await this.users.setPassword(user.id, passwordHash, now, trx);
      await this.links.withdraw(user.id, 'reset_password', trx);
      await this.sessions.destroyForUser(user.id, meta.keepSession, trx);
      await this.audit.record({ action: 'user.password_changed', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: meta.ip }, trx);
    });
  }

  async profile(requester: Requester): Promise<AccountView> {
    assertAuthenticated(requester);
    return accountView(requester.user, this.clock());
  }

  async updateProfile(requester: Requester, input: unknown): Promise<AccountView> {
    assertAuthenticated(requester);
    const body = parseInput(profileChange, input);
    const user = requester.user;
    await this.users.setProfile(user.id, { name: body.name ?? user.name, institution: body.institution ?? user.institution }, this.clock());
    const updated = await this.users.findById(user.id);
    if (!updated) throw new AppError(404, 'user_not_found', 'The account no longer exists');
    return accountView(updated, this.clock());
  }

  private async tellExistingOwner(user: User, now: Date): Promise<void> {
    if (user.disabledAt) return;
    if (!user.emailConfirmedAt) await this.sendConfirmation(user, now);
    else if (await this.mayMail(user.email, now)) {
      const mail = alreadyRegisteredMail(user.email, user.name, this.link(LINK_PATHS.login), this.link(LINK_PATHS.forgotPassword));
      await this.send(user.email, mail);
    }
  }

  /**
   * At most MAILS_PER_HOUR account mails to one address in an hour, so that
   * nobody can flood a mailbox through registration or reset requests. Past
   * the limit nothing is sent; the answer stays the same.
   */
  private async mayMail(email: string, now: Date): Promise<boolean> {
    const key = throttleKey('mail', email);
    if (await this.throttle.lockedUntil([key], now)) return false;
    await this.throttle.recordFailure(key, now, { limit: MAILS_PER_HOUR, windowMs: 3_600_000, lockMs: 3_600_000 });
    return true;
  }

  private async sendConfirmation(user: User, now: Date): Promise<void> {
    if (!(await this.mayMail(user.email, now))) return;
    const link = await this.issueLink(user.id, 'confirm_email', this.settings.confirmationHours * 3_600_000, now);
    await this.send(user.email, renderMail('confirmEmail', { name: user.name, ...link }, this.settings.site));
  }

  private async issueLink(userId: number, purpose: LinkPurpose, lifetimeMs: number, now: Date, trx?: Knex): Promise<{ token: string; expiresAt: Date }> {
    const token = newSecret();
    const expiresAt = new Date(now.getTime() + lifetimeMs);
    await this.links.issue(userId, purpose, sha256Hex(token), expiresAt, now, trx);
    return { token, expiresAt };
  }

  private link(pathname: string): string {
    return `${this.settings.site.publicUrl.replace(/\/+$/, '')}${pathname}`;
  }

  /** A mail that cannot be sent is logged, not reported: the answer must not depend on whether the address exists. */
  private async send(to: string, mail: Omit<MailMessage, 'to'>): Promise<void> {
    const message: MailMessage = { to, subject: mail.subject, text: mail.text, html: mail.html };
    try {
      await this.mailer.send(message);
    } catch (error) {
      this.log.error({ err: error, subject: message.subject }, 'account mail could not be sent');
    }
  }

  private timingHash(): Promise<string> {
    return (this.dummyHash ??= hashPassword(newSecret()));
  }
}

/** Account mails (confirmation, reset, notices) one address receives at most in an hour. */
export const MAILS_PER_HOUR = 5;

export function throttleKey(kind: 'email' | 'address' | 'mail', value: string): string {
  return `${kind}:${sha256Hex(value.toLowerCase())}`;
}

function assertPasswordPolicy(password: string, email: string): void {
  const problems = passwordProblems(password, email);
  if (problems.length > 0) {
    throw new AppError(400, 'weak_password', `The password ${problems.join('; ')}`, {
      details: { problems: problems.map((message) => ({ field: 'password', message })) },
    });
  }
}

function tooManyAttempts(until: Date, now: Date): AppError {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppError(429, 'too_many_attempts', `Too many failed logins; try again in ${Math.ceil(seconds / 60)} minutes`, {
    details: { retryAfterSeconds: seconds },
  });
}

function linkRefused(result: Exclude<ConsumeResult, { status: 'ok' }>, what: string): AppError {
  switch (result.status) {
    case 'used':
      return new AppError(410, 'link_used', `This ${what} link has been used already; each link works once`);
    case 'expired':
      return new AppError(410, 'link_expired', `This ${what} link has expired; ask for a new one`);
    default:
      return new AppError(400, 'link_invalid', `This ${what} link is not valid; ask for a new one`);
  }
}
