import { unlink } from 'node:fs/promises';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation, type Queryable } from '../db/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logging.js';
import { MAIL_PATHS, renderMail, type MailSite } from '../mail/index.js';
import type { Mailer, MailMessage } from '../mail/mailer.js';
import type { AccessTokensRepository } from './access-tokens.repository.js';
import type { AuthTokensRepository, ConsumeResult, LinkPurpose } from './auth-tokens.repository.js';
import type { DeferredWork } from './deferred-work.js';
import { assertAuthenticated, type Requester } from './levels.js';
import type { LoginThrottleRepository } from './login-throttle.repository.js';
import { alreadyRegisteredMail } from './mail-templates.js';
import type { PasswordHasher } from './password-hasher.js';
import { passwordProblems } from './password-policy.js';
import { newSecret, sha256Hex } from './secrets.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { User, UsersRepository } from './users.repository.js';
import { accountViewOf, type Accepted, type AccountView } from './views.js';

export interface AccountSettings {
  /** Where users reach the appliance (mailed links start with it) and the time zone mails tell times in. */
  site: MailSite;
  confirmationHours: number;
  resetMinutes: number;
  lockout: {
    /** Passwords checked for one e-mail address (registered or not) per window; the last of them failing locks it. */
    maxFailures: number;
    /** How long attempts are counted, and how long a lock lasts. */
    minutes: number;
    /** Passwords checked for logins from one client address per window, likewise. */
    maxFailuresPerAddress: number;
  };
  /** Registrations, reset requests and confirmation resends one client address may make per window of `minutes`. */
  requests: { maxPerAddress: number; minutes: number };
  /** The file the initial administrator's printed password is kept in; deleted once that password is changed. */
  initialAdminFile?: string;
}

/** What the accounts service works with. */
export interface AccountsDependencies {
  users: UsersRepository;
  links: AuthTokensRepository;
  sessions: SessionsRepository;
  tokens: AccessTokensRepository;
  throttle: LoginThrottleRepository;
  mailer: Mailer;
  audit: AuditLog;
  hasher: PasswordHasher;
  /** Where the work that depends on whether an address has an account goes, to run after the answer. */
  deferred: DeferredWork;
  log: Logger;
  clock?: () => Date;
}

/** A new account as its owner registers it; the e-mail address in lower case. */
export interface Registration {
  name: string;
  institution: string;
  email: string;
  password: string;
}

/** What a login checks; the e-mail address in lower case. */
export interface Credentials {
  email: string;
  password: string;
}

/** A mailed reset link's code and the new password. */
export interface PasswordReset {
  token: string;
  password: string;
}

export interface PasswordChange {
  currentPassword: string;
  newPassword: string;
}

/** The fields of their profile an owner changes; at least one. */
export interface ProfileChange {
  name?: string;
  institution?: string;
}

const INVALID_CREDENTIALS = 'The e-mail address or the password is not correct';

/** Pages of the web client that mailed links open (mail/templates.ts's MAIL_PATHS has the confirmation and reset pages); tokens travel in the fragment, so they reach no server log. */
export const LINK_PATHS = { login: '/account/login', forgotPassword: MAIL_PATHS.forgotPassword } as const;

/**
 * Registration, e-mail confirmation, logging in (with throttling and
 * lock-out), password reset and change, and the account's own profile.
 *
 * Answers never tell whether an address is registered: registration and link
 * requests answer alike and equally fast (what depends on the address — the
 * look-up, the link, the mail — runs after the answer, see DeferredWork), a
 * wrong password and an unknown address fail alike (same status, message and
 * — through a dummy hash — about the same time), and lock-out counts per
 * address typed, registered or not.
 *
 * Every login attempt is counted in the database before its password is
 * checked, so that parallel guesses cannot outrun the lock-out: per window,
 * at most `lockout.maxFailures` passwords are checked for one e-mail address.
 */
export class AccountsService {
  private dummyHash: Promise<string> | undefined;
  private readonly users: UsersRepository;
  private readonly links: AuthTokensRepository;
  private readonly sessions: SessionsRepository;
  private readonly tokens: AccessTokensRepository;
  private readonly throttle: LoginThrottleRepository;
  private readonly mailer: Mailer;
  private readonly audit: AuditLog;
  private readonly hasher: PasswordHasher;
  private readonly deferred: DeferredWork;
  private readonly log: Logger;
  private readonly clock: () => Date;

  constructor(
    dependencies: AccountsDependencies,
    private readonly settings: AccountSettings,
  ) {
    this.users = dependencies.users;
    this.links = dependencies.links;
    this.sessions = dependencies.sessions;
    this.tokens = dependencies.tokens;
    this.throttle = dependencies.throttle;
    this.mailer = dependencies.mailer;
    this.audit = dependencies.audit;
    this.hasher = dependencies.hasher;
    this.deferred = dependencies.deferred;
    this.log = dependencies.log;
    this.clock = dependencies.clock ?? (() => new Date());
  }

  /** Checks the password policy and hashes the password (whatever the address), answers; the account is made, or its owner told, after the answer. */
  async register(body: Registration, actor: AuditActor): Promise<Accepted> {
    assertPasswordPolicy(body.password, body.email);
    await this.limitRequests(actor);
    const passwordHash = await this.hasher.hash(body.password);
    this.deferred.defer(`registration of ${body.email}`, () => this.completeRegistration(body, passwordHash, actor));
    return {
      status: 'accepted',
      message: `Thank you. A message is on its way to ${body.email}: open its link within ${this.settings.confirmationHours} hours to confirm the address.`,
    };
  }

  /** Follows a confirmation link: the address is confirmed and the account becomes L1. */
  async confirmEmail(token: string, actor: AuditActor): Promise<AccountView> {
    const now = this.clock();
    const user = await this.users.transaction(async (trx) => {
      const result = await this.links.consume(sha256Hex(token), 'confirm_email', now, trx);
      if (result.status !== 'ok') throw linkRefused(result, 'confirmation');
      await this.users.confirmEmail(result.userId, now, trx);
      await this.audit.record({ action: 'user.confirmed', actorId: result.userId, subjectType: 'user', subjectId: result.userId, ip: actor.ip ?? null }, trx);
      return this.users.findById(result.userId, trx);
    });
    if (!user) throw linkRefused({ status: 'unknown' }, 'confirmation');
    return accountViewOf(user, now);
  }

  /** Sends a new confirmation link to an unconfirmed account, after the answer; answers alike for any address. */
  async resendConfirmation(email: string, actor: AuditActor): Promise<Accepted> {
    await this.limitRequests(actor);
    this.deferred.defer(`confirmation mail to ${email}`, async () => {
      const user = await this.users.findByEmail(email);
      if (user && !user.emailConfirmedAt && !user.disabledAt) await this.sendConfirmation(user, this.clock());
    });
    return { status: 'accepted', message: `If ${email} has an account waiting for confirmation, a new link is on its way to it.` };
  }

  /**
   * Checks a login (passport-local's verify step). Throws 401 for a wrong
   * password or an unknown address alike, 429 while the address typed or the
   * client is locked out or has used its guesses for the window, 403 for a
   * disabled or unconfirmed account (only once the password was right), 503
   * when too many passwords are being checked at once.
   */
  async verifyLogin({ email, password }: Credentials, actor: AuditActor): Promise<User> {
    const now = this.clock();
    const { lockout } = this.settings;
    const windowMs = lockout.minutes * 60_000;
    const emailKey = throttleKey('email', email);
    const addressKey = throttleKey('address', actor.ip ?? 'unknown');

    // Counted before the password is checked, so that no more guesses are ever checked than the limit allows.
    // The client first: a client past its limit adds no count for each address it types.
    const byAddress = await this.throttle.take(addressKey, now, { limit: lockout.maxFailuresPerAddress, windowMs });
    if (!byAddress.allowed) throw tooManyAttempts(byAddress.until, now);
    const byEmail = await this.throttle.take(emailKey, now, { limit: lockout.maxFailures, windowMs });
    if (!byEmail.allowed) {
      await this.throttle.giveBack(addressKey);
      throw tooManyAttempts(byEmail.until, now);
    }

    let found: Awaited<ReturnType<UsersRepository['findCredentials']>>;
    let matches: boolean;
    try {
      found = await this.users.findCredentials(email);
      matches = await this.hasher.verify(password, found?.passwordHash ?? (await this.timingHash()));
    } catch (error) {
      // Not checked (too busy, or the database failed): the guess is not spent.
      await Promise.all([this.throttle.giveBack(emailKey), this.throttle.giveBack(addressKey)]);
      throw error;
    }

    if (!found || !found.passwordHash || !matches) {
      const actorId = found?.user.id ?? null;
      const subject = { actorId, subjectType: 'user', ...(actorId ? { subjectId: actorId } : {}), ip: actor.ip ?? null } as const;
      await this.audit.record({ action: 'auth.login_failed', ...subject, details: { email, reason: found ? 'wrong_password' : 'unknown_email' } });
      // The guess that used a key's last attempt locks it.
      const lockedUntil = new Date(now.getTime() + windowMs);
      const locks: ('email' | 'address')[] = [];
      if (byEmail.number >= lockout.maxFailures) locks.push('email');
      if (byAddress.number >= lockout.maxFailuresPerAddress) locks.push('address');
      if (locks.length > 0) {
        await Promise.all(locks.map((kind) => this.throttle.lock(kind === 'email' ? emailKey : addressKey, lockedUntil)));
        await this.audit.record({ action: 'auth.locked', ...subject, details: { email, locked: locks, minutes: lockout.minutes } });
        throw tooManyAttempts(lockedUntil, now);
      }
      throw new AppError(401, 'invalid_credentials', INVALID_CREDENTIALS);
    }

    // The right password: the address typed starts afresh, and the client gets its attempt back.
    await Promise.all([this.throttle.clear(emailKey), this.throttle.giveBack(addressKey)]);
    const { user } = found;
    if (user.disabledAt) throw new AppError(403, 'account_disabled', 'This account is disabled; ask an administrator');
    if (!user.emailConfirmedAt) {
      throw new AppError(403, 'email_unconfirmed', 'Confirm your e-mail address first: open the link in the message we sent (or ask for a new one)');
    }
    await this.users.recordLogin(user.id, now);
    await this.audit.record({ action: 'auth.login', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null });
    return user;
  }

  /** The user a session names, read afresh on every request; none when the account is gone or disabled. */
  async sessionUser(id: unknown): Promise<User | undefined> {
    if (typeof id !== 'number') return undefined;
    const user = await this.users.findById(id);
    return user && !user.disabledAt ? user : undefined;
  }

  async recordLogout(requester: Requester, actor: AuditActor): Promise<void> {
    if (!requester.user) return;
    await this.audit.record({ action: 'auth.logout', actorId: requester.user.id, subjectType: 'user', subjectId: requester.user.id, ip: actor.ip ?? null });
  }

  /** Mails a reset link (valid for settings.resetMinutes) to an account's address, after the answer; answers alike for any address. */
  async requestPasswordReset(email: string, actor: AuditActor): Promise<Accepted> {
    await this.limitRequests(actor);
    this.deferred.defer(`password reset mail to ${email}`, async () => {
      const now = this.clock();
      const user = await this.users.findByEmail(email);
      if (!user || user.disabledAt || !(await this.mayMail(user.email, now))) return;
      const link = await this.issueLink(user.id, 'reset_password', this.settings.resetMinutes * 60_000, now);
      await this.send(user.email, renderMail('resetPassword', { name: user.name, ...link }, this.settings.site));
    });
    return { status: 'accepted', message: `If ${email} has an account, a link to choose a new password is on its way to it.` };
  }

  /**
   * Follows a reset link: sets the new password, ends every session of the
   * account and revokes its access tokens (whoever took the password over may
   * hold them), and mails the owner a notice.
   */
  async resetPassword(body: PasswordReset, actor: AuditActor): Promise<void> {
    const now = this.clock();
    const tokenHash = sha256Hex(body.token);
    // A bad link or a refused password costs no hash, and leaves the link usable.
    const link = await this.links.check(tokenHash, 'reset_password', now);
    if (link.status !== 'ok') throw linkRefused(link, 'password reset');
    const owner = await this.users.findById(link.userId);
    if (!owner || owner.disabledAt) throw linkRefused({ status: 'unknown' }, 'password reset');
    assertPasswordPolicy(body.password, owner.email);
    const passwordHash = await this.hasher.hash(body.password);
    const { user, tokensRevoked } = await this.users.transaction(async (trx) => {
      const result = await this.links.consume(tokenHash, 'reset_password', now, trx);
      if (result.status !== 'ok') throw linkRefused(result, 'password reset');
      const found = await this.users.findById(result.userId, trx);
      if (!found || found.disabledAt) throw linkRefused({ status: 'unknown' }, 'password reset');
      await this.users.setPassword(found.id, passwordHash, now, trx);
      await this.links.withdraw(found.id, 'reset_password', trx);
      const ended = await this.endAccess(found.id, now, undefined, trx);
      await this.audit.record({ action: 'user.password_reset', actorId: found.id, subjectType: 'user', subjectId: found.id, ip: actor.ip ?? null, details: ended.details }, trx);
      return { user: found, tokensRevoked: ended.tokensRevoked };
    });
    await this.throttle.clear(throttleKey('email', user.email));
    this.notifyPasswordChanged(user, 'reset', now, tokensRevoked);
    if (user.mustChangePassword && user.roles.includes('admin')) await this.forgetInitialPassword(user.email);
  }

  /**
   * A logged-in user's own change: the current password is required; other
   * sessions end (all but `keepSession`, the one that asks), access tokens
   * are revoked, a notice is mailed.
   */
  async changePassword(requester: Requester, body: PasswordChange, actor: AuditActor, keepSession?: string): Promise<void> {
    assertAuthenticated(requester);
    const user = requester.user;
    const stored = await this.users.passwordHash(user.id);
    if (!stored || !(await this.hasher.verify(body.currentPassword, stored))) {
      throw new AppError(403, 'wrong_password', 'The current password is not correct');
    }
    assertPasswordPolicy(body.newPassword, user.email);
    const passwordHash = await this.hasher.hash(body.newPassword);
    const now = this.clock();
    const tokensRevoked = await this.users.transaction(async (trx) => {
      await this.users.setPassword(user.id, passwordHash, now, trx);
      await this.links.withdraw(user.id, 'reset_password', trx);
      const ended = await this.endAccess(user.id, now, keepSession, trx);
      await this.audit.record({ action: 'user.password_changed', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: ended.details }, trx);
      return ended.tokensRevoked;
    });
    this.notifyPasswordChanged(user, 'change', now, tokensRevoked);
    if (user.mustChangePassword && user.roles.includes('admin')) await this.forgetInitialPassword(user.email);
  }

  /** The printed password no longer works: its file goes (on this node; another node's copy is as harmless). */
  private async forgetInitialPassword(email: string): Promise<void> {
    const file = this.settings.initialAdminFile;
    if (!file) return;
    try {
      await unlink(file);
      this.log.info({ email, file }, `the initial administrator changed the printed password: deleted ${file}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err: error, file }, `could not delete ${file}; delete it by hand`);
    }
  }

  async profile(requester: Requester): Promise<AccountView> {
    assertAuthenticated(requester);
    return accountViewOf(requester.user, this.clock());
  }

  async updateProfile(requester: Requester, body: ProfileChange): Promise<AccountView> {
    assertAuthenticated(requester);
    const user = requester.user;
    await this.users.setProfile(user.id, { name: body.name ?? user.name, institution: body.institution ?? user.institution }, this.clock());
    const updated = await this.users.findById(user.id);
    if (!updated) throw new AppError(404, 'user_not_found', 'The account no longer exists');
    return accountViewOf(updated, this.clock());
  }

  /** After the answer to a registration: a new account and its confirmation link, or a word to the address's owner. */
  private async completeRegistration(body: Omit<Registration, 'password'>, passwordHash: string, actor: AuditActor): Promise<void> {
    const now = this.clock();
    const existing = await this.users.findByEmail(body.email);
    if (existing) return this.tellExistingOwner(existing, now);
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
          { action: 'user.registered', actorId: created.id, subjectType: 'user', subjectId: created.id, ip: actor.ip ?? null, details: { email: created.email } },
          trx,
        );
        return [created, issued] as const;
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Registered by a concurrent request between our look-up and our insert.
      const raced = await this.users.findByEmail(body.email);
      if (raced) await this.tellExistingOwner(raced, now);
      return;
    }
    await this.mayMail(user.email, now);
    await this.send(user.email, renderMail('confirmEmail', { name: user.name, ...link }, this.settings.site));
  }

  private async tellExistingOwner(user: User, now: Date): Promise<void> {
    if (user.disabledAt) return;
    if (!user.emailConfirmedAt) await this.sendConfirmation(user, now);
    else if (await this.mayMail(user.email, now)) {
      const mail = alreadyRegisteredMail(user.email, user.name, this.link(LINK_PATHS.login), this.link(LINK_PATHS.forgotPassword));
      await this.send(user.email, mail);
    }
  }

  /** Ends the account's sessions (but `keepSession`) and revokes its access tokens; says what for the audit log. */
  private async endAccess(userId: number, now: Date, keepSession: string | undefined, trx: Queryable): Promise<{ tokensRevoked: number; details: Record<string, unknown> }> {
    const sessionsEnded = await this.sessions.destroyForUser(userId, keepSession, trx);
    const revoked = await this.tokens.revokeAllForUser(userId, now, trx);
    return { tokensRevoked: revoked.length, details: { sessionsEnded, tokensRevoked: revoked.length, revokedTokens: revoked.map((token) => token.prefix) } };
  }

  /** The owner hears of every password change, whatever the mail limit: it may be the only sign of a taken-over account. */
  private notifyPasswordChanged(user: User, how: 'reset' | 'change', at: Date, tokensRevoked: number): void {
    const mail = renderMail('passwordChanged', { name: user.name, how, at, tokensRevoked }, this.settings.site);
    try {
      this.deferred.defer(`password ${how} notice to ${user.email}`, () => this.send(user.email, mail));
    } catch (error) {
      // The password has changed already; a full queue must not turn that into an error.
      this.log.error({ err: error, to: user.email }, 'the password change notice could not be queued');
    }
  }

  /**
   * Registrations, reset requests and confirmation resends per client
   * address, counted in the database: each may cost a password hash or a
   * mail, so no address may ask for them without end.
   */
  private async limitRequests(actor: AuditActor): Promise<void> {
    const now = this.clock();
    const { maxPerAddress, minutes } = this.settings.requests;
    const attempt = await this.throttle.take(throttleKey('requests', actor.ip ?? 'unknown'), now, { limit: maxPerAddress, windowMs: minutes * 60_000 });
    if (attempt.allowed) return;
    const seconds = secondsUntil(attempt.until, now);
    throw new AppError(429, 'too_many_requests', `Too many account requests from your address; try again in ${Math.ceil(seconds / 60)} minutes`, {
      details: { retryAfterSeconds: seconds },
    });
  }

  /**
   * At most MAILS_PER_HOUR account mails to one address in an hour, so that
   * nobody can flood a mailbox through registration or reset requests. Past
   * the limit nothing is sent; the answer stays the same.
   */
  private async mayMail(email: string, now: Date): Promise<boolean> {
    return (await this.throttle.take(throttleKey('mail', email), now, { limit: MAILS_PER_HOUR, windowMs: 3_600_000 })).allowed;
  }

  private async sendConfirmation(user: User, now: Date): Promise<void> {
    if (!(await this.mayMail(user.email, now))) return;
    const link = await this.issueLink(user.id, 'confirm_email', this.settings.confirmationHours * 3_600_000, now);
    await this.send(user.email, renderMail('confirmEmail', { name: user.name, ...link }, this.settings.site));
  }

  private async issueLink(userId: number, purpose: LinkPurpose, lifetimeMs: number, now: Date, trx?: Queryable): Promise<{ token: string; expiresAt: Date }> {
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
      this.log.error({ err: error, to, subject: message.subject }, 'account mail could not be sent');
    }
  }

  private timingHash(): Promise<string> {
    return (this.dummyHash ??= this.hasher.hash(newSecret()).catch((error: unknown) => {
      this.dummyHash = undefined;
      throw error;
    }));
  }
}

/** Account mails (confirmation, reset, notices) one address receives at most in an hour. */
export const MAILS_PER_HOUR = 5;

export function throttleKey(kind: 'email' | 'address' | 'mail' | 'requests', value: string): string {
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

function secondsUntil(until: Date, now: Date): number {
  return Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
}

function tooManyAttempts(until: Date, now: Date): AppError {
  const seconds = secondsUntil(until, now);
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
