import type { AccountsService } from '../accounts.service.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Config } from '../../config/index.js';
import type { Database } from '../../db/index.js';
import type { Logger } from '../../logging.js';
import type { Mailer } from '../../mail/index.js';
import type { DeferredWork } from '../deferred-work.js';
import { LoginThrottleRepository } from '../login-throttle.repository.js';
import { UsersRepository } from '../users.repository.js';
import { OidcProviders } from '../oidc/oidc-providers.js';
import { ExternalAccountsRepository } from './external-accounts.repository.js';
import { ExternalAccountsService, type LevelRefresh } from './external-accounts.service.js';
import { LdapDirectory } from './ldap-directory.js';
import { PasswordSignInService } from './password-sign-in.service.js';

export { DirectoryUnavailableError, LdapDirectory, type DirectoryAnswer, type DirectoryEntry, type LdapSettings } from './ldap-directory.js';
export { mapGroups, type GroupMapping, type RoleGroups } from './group-mapping.js';
export { sourceLabel, type ExternalIdentity, type PendingLink } from './external-accounts.service.js';

/** Hospital sign-in: the directory, the single sign-on providers, and the accounts they vouch for. */
export interface SignInServices {
  /** The hospital's directory; undefined when auth.ldap.url is empty. */
  directory: LdapDirectory | undefined;
  /** The single sign-on providers of auth.oidc.providers (possibly none). */
  oidc: OidcProviders;
  /** Accounts the directory or a provider vouches for: creation, roles, links, local login. */
  external: ExternalAccountsService;
  /** The login form: directory or local password. */
  password: PasswordSignInService;
  repository: ExternalAccountsRepository;
  /** What the HTTP layer needs for its cookies and redirects. */
  settings: { secureCookies: 'auto' | boolean; publicUrl: string };
}

export function createSignInServices(
  config: Config,
  db: Database,
  log: Logger,
  deps: { accounts: AccountsService; audit: AuditLog; mailer: Mailer; deferred: DeferredWork; levels?: LevelRefresh },
): SignInServices {
  const { ldap, oidc } = config.auth;
  const users = new UsersRepository(db.knex);
  const repository = new ExternalAccountsRepository(db.knex);
  const directory = ldap.url === '' ? undefined : new LdapDirectory(ldap);
  const providers = new OidcProviders(oidc.providers, config.mail.publicUrl, log);
  const external = new ExternalAccountsService({ users, repository, audit: deps.audit, log, ...(deps.levels ? { levels: deps.levels } : {}) });
  const password = new PasswordSignInService(
    { accounts: deps.accounts, users, external, repository, directory, throttle: new LoginThrottleRepository(db.knex), audit: deps.audit, mailer: deps.mailer, deferred: deps.deferred, log },
    { lockout: config.auth.lockout, externalConfigured: directory !== undefined || oidc.providers.length > 0, publicUrl: config.mail.publicUrl },
  );
  return { directory, oidc: providers, external, password, repository, settings: { secureCookies: config.http.secureCookies, publicUrl: config.mail.publicUrl } };
}
