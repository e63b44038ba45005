import type { AccountsService, Credentials } from '../accounts.service.js';
import { throttleKey } from '../accounts.service.js';
import type { AuditActor, AuditLog } from '../../audit/audit-log.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { escapeHtml, type Mailer } from '../../mail/index.js';
import type { LoginThrottleRepository } from '../login-throttle.repository.js';
import type { DeferredWork } from '../deferred-work.js';
import type { User, UsersRepository } from '../users.repository.js';
import type { ExternalAccountsRepository } from './external-accounts.repository.js';
import type { ExternalAccountsService, ExternalSignIn } from './external-accounts.service.js';
import { mapGroups } from './group-mapping.js';
import { DirectoryUnavailableError, type LdapDirectory } from './ldap-directory.js';

export interface PasswordSignInSettings {
  lockout: { maxFailures: number; minutes: number; maxFailuresPerAddress: number };
  /** Whether a directory or a single sign-on provider is configured: local administrators logging in then count as break-glass. */
  externalConfigured: boolean;
  /** The portal's address, for the break-glass notice. */
  publicUrl: string;
}

const INVALID_CREDENTIALS = 'The e-mail address or the password is not correct';
export const DIRECTORY_UNAVAILABLE =
  'The hospital directory cannot be reached just now, so directory accounts cannot log in; try again in a few minutes (local accounts still work)';

/**
 * The login form: an address and a password, checked against the hospital's
 * directory or the local password, whichever the account uses.
 *
 * - The directory is asked first for addresses in auth.ldap.domains, for
 *   accounts that come from it, and for addresses without a local account;
 *   local accounts outside those domains are checked locally only.
 * - A directory that is down or too slow fails closed for its users (503
 *   directory_unavailable) and leaves local accounts working: an address
 *   with a local password falls back to it.
 * - Each attempt is counted against the address typed and the client before
 *   anything is checked, as for local logins (AccountsService.verifyLogin),
 *   with the same lock-out; a wrong password and an unknown user fail alike.
 * - A local administrator logging in while a directory or single sign-on is
 *   configured is a break-glass login: audited, and the other administrators
 *   are mailed.
 * - A directory or single sign-on account whose local password an
 *   administrator turned off cannot log in with it.
 */
export class PasswordSignInService {
  constructor(
    private readonly deps: {
      accounts: AccountsService;
      users: UsersRepository;
      external: ExternalAccountsService;
      repository: ExternalAccountsRepository;
      directory: LdapDirectory | undefined;
      throttle: LoginThrottleRepository;
      audit: AuditLog;
      mailer: Mailer;
      deferred: DeferredWork;
      log: Logger;
      clock?: () => Date;
    },
    private readonly settings: PasswordSignInSettings,
  ) {}

  async login(credentials: Credentials, actor: AuditActor): Promise<ExternalSignIn> {
    const { directory, users } = this.deps;
    if (!directory) return { status: 'ok', user: await this.local(credentials, actor) };
    const account = await users.findByEmail(credentials.email);
    const source = account?.source ?? 'local';
    const domain = credentials.email.split('@')[1] ?? '';
    const directoryFirst = directory.settings.domains.includes(domain) || !account || source === 'ldap';
    if (!directoryFirst) return { status: 'ok', user: await this.local(credentials, actor) };
    return this.viaDirectory(directory, credentials, account, actor);
  }

  private async viaDirectory(directory: LdapDirectory, credentials: Credentials, account: User | undefined, actor: AuditActor): Promise<ExternalSignIn> {
    const { throttle, audit } = this.deps;
    const now = (this.deps.clock ?? (() => new Date()))();
    const { lockout } = this.settings;
    const windowMs = lockout.minutes * 60_000;
    const emailKey = throttleKey('email', credentials.email);
    const addressKey = throttleKey('address', actor.ip ?? 'unknown');
    const byAddress = await throttle.take(addressKey, now, { limit: lockout.maxFailuresPerAddress, windowMs });
    if (!byAddress.allowed) throw tooManyAttempts(byAddress.until, now);
    const byEmail = await throttle.take(emailKey, now, { limit: lockout.maxFailures, windowMs });
    if (!byEmail.allowed) {
      await throttle.giveBack(addressKey);
      throw tooManyAttempts(byEmail.until, now);
    }
    const giveBack = () => Promise.all([throttle.giveBack(emailKey), throttle.giveBack(addressKey)]);
    // An account with a local password it may use: the fall-back when the directory does not know the user or is down.
    // (Accounts the directory made have none until they are linked with one.)
    const localFallback = account !== undefined && !account.localLoginDisabled && (await this.deps.users.passwordHash(account.id)) !== null;

    let answer: Awaited<ReturnType<LdapDirectory['authenticate']>>;
    try {
      answer = await directory.authenticate(credentials.email, credentials.password);
    } catch (error) {
      await giveBack();
      if (!(error instanceof DirectoryUnavailableError)) throw error;
      this.deps.log.error({ err: error }, 'the directory could not be asked');
      if (localFallback) return { status: 'ok', user: await this.local(credentials, actor) };
      await audit.record({ action: 'auth.login_failed', actorId: account?.id ?? null, subjectType: 'user', ...(account ? { subjectId: account.id } : {}), ip: actor.ip ?? null, details: { email: credentials.email, source: 'ldap', reason: 'directory_unavailable' } });
      throw new AppError(503, 'directory_unavailable', DIRECTORY_UNAVAILABLE, { expose: true, details: { retryAfterSeconds: 60 } });
    }

    if (answer.status === 'ok') {
      await Promise.all([throttle.clear(emailKey), throttle.giveBack(addressKey)]);
      const { entry } = answer;
      const { roleGroups, institutionGroups } = directory.settings;
      return this.deps.external.signIn(
        {
          source: 'ldap',
          externalId: entry.dn,
          email: entry.email,
          name: entry.name,
          groups: entry.groups,
          mapping: mapGroups(entry.groups, roleGroups, institutionGroups),
          managedInstitutions: institutionGroups.map((entry) => entry.institution),
        },
        actor,
      );
    }

    // The directory said no: a local account (not one of the directory's own) may still have its local password.
    if (localFallback && account?.source !== 'ldap') {
      await giveBack();
      return { status: 'ok', user: await this.local(credentials, actor) };
    }
    const reason = answer.status === 'wrong_password' ? 'wrong_password' : answer.status === 'empty_password' ? 'empty_password' : answer.status === 'ambiguous' ? 'ambiguous_user' : 'unknown_user';
    if (answer.status === 'ambiguous') this.deps.log.warn({ count: answer.count }, 'auth.ldap.userFilter found several entries for one login; it must find one');
    const subject = { actorId: account?.id ?? null, subjectType: 'user', ...(account ? { subjectId: account.id } : {}), ip: actor.ip ?? null } as const;
    await audit.record({ action: 'auth.login_failed', ...subject, details: { email: credentials.email, source: 'ldap', reason } });
    const locks: ('email' | 'address')[] = [];
    if (byEmail.number >= lockout.maxFailures) locks.push('email');
    if (byAddress.number >= lockout.maxFailuresPerAddress) locks.push('address');
    if (locks.length > 0) {
      const lockedUntil = new Date(now.getTime() + windowMs);
      await Promise.all(locks.map((kind) => throttle.lock(kind === 'email' ? emailKey : addressKey, lockedUntil)));
      await audit.record({ action: 'auth.locked', ...subject, details: { email: credentials.email, locked: locks, minutes: lockout.minutes } });
      throw tooManyAttempts(lockedUntil, now);
    }
    throw new AppError(401, 'invalid_credentials', INVALID_CREDENTIALS);
  }

  /** The local password, with its own counting (AccountsService.verifyLogin); then the rules of accounts that come from elsewhere. */
  private async local(credentials: Credentials, actor: AuditActor): Promise<User> {
    const user = await this.deps.accounts.verifyLogin(credentials, actor);
    const source = user.source ?? 'local';
    if (source !== 'local' && user.localLoginDisabled) {
      await this.deps.audit.record({ action: 'auth.login_refused', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: { reason: 'local_login_disabled', source } });
      throw new AppError(403, 'local_login_disabled', 'This account logs in through the hospital directory or single sign-on only; its local password is turned off');
    }
    if (this.settings.externalConfigured && source === 'local' && user.roles.includes('admin')) await this.breakGlass(user, actor);
    return user;
  }

  /** A local administrator logged in although staff sign in through the directory: recorded, and every other administrator told. */
  private async breakGlass(user: User, actor: AuditActor): Promise<void> {
    const { audit, repository, deferred, mailer, log } = this.deps;
    await audit.record({ action: 'auth.break_glass', actorId: user.id, subjectType: 'user', subjectId: user.id, ip: actor.ip ?? null, details: { email: user.email } });
    const at = (this.deps.clock ?? (() => new Date()))().toISOString();
    deferred.defer(`break-glass notice for ${user.email}`, async () => {
      for (const admin of await repository.otherAdministrators(user.id)) {
        const text = [
          `Hello ${admin.name || admin.email},`,
          '',
          `The local administrator account ${user.email} logged in with its local password at ${at} from ${actor.ip ?? 'an unknown address'}.`,
          'Local administrator accounts are for emergencies (the directory or single sign-on out of order). If nobody expected this, disable the account in the administration and look at the audit log.',
          '',
          this.settings.publicUrl,
        ].join('\n');
        try {
          await mailer.send({
            to: admin.email,
            subject: 'Slidebank: the local administrator account was used',
            text: `${text}\n`,
            html: `<!doctype html>\n<html><body>\n${text.split('\n\n').map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}\n</body></html>\n`,
          });
        } catch (error) {
          log.error({ err: error, to: admin.email }, 'break-glass notice could not be sent');
        }
      }
    });
  }
}

function tooManyAttempts(until: Date, now: Date): AppError {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new AppError(429, 'too_many_attempts', `Too many failed logins; try again in ${Math.ceil(seconds / 60)} minutes`, { details: { retryAfterSeconds: seconds } });
}
