import type { LdapSettings } from './ldap-directory.js';
import { DirectoryUnavailableError, LdapDirectory } from './ldap-directory.js';
import { mapGroups } from './group-mapping.js';

/** What `slidebank auth check-ldap` found, line by line; `ok` when the user was found and the password accepted. */
export interface DirectoryCheck {
  ok: boolean;
  lines: string[];
}

/**
 * Asks the directory about one user as a login would (service account,
 * filter, bind as the user), and says what the configuration would make of
 * it: the roles and institutions its groups give. The password is used for
 * the bind only and never printed.
 */
export async function checkDirectory(settings: LdapSettings, username: string, password: string | undefined): Promise<DirectoryCheck> {
  const security = settings.url.toLowerCase().startsWith('ldaps://') ? 'LDAPS' : settings.startTls ? 'StartTLS' : 'plain LDAP (no TLS)';
  const lines = [
    `directory:        ${settings.url} (${security}${settings.caFile ? `, CA ${settings.caFile}` : ', the system’s CAs'})`,
    `service account:  ${settings.bindDn || '(anonymous search)'}`,
    `user search:      ${settings.userFilter} under ${settings.userSearchBase}`,
  ];
  const directory = new LdapDirectory(settings);
  try {
    const found = await directory.lookup(username);
    if (found.status === 'unknown_user') return { ok: false, lines: [...lines, `user:             no entry matches ${JSON.stringify(username)}`] };
    if (found.status === 'ambiguous') return { ok: false, lines: [...lines, `user:             ${found.count} entries match; the filter must find one`] };
    const { entry } = found;
    const mapping = mapGroups(entry.groups, settings.roleGroups, settings.institutionGroups);
    lines.push(
      `user:             ${entry.dn}`,
      `e-mail:           ${entry.email || `(none: the entry has no ${settings.emailAttribute}, so this user cannot log in)`}`,
      `name:             ${entry.name || `(none in ${settings.nameAttribute})`}`,
      `groups:           ${entry.groups.length > 0 ? entry.groups.join('\n                  ') : '(none)'}`,
      `roles:            ${mapping.roles.join(', ') || '(none)'}`,
      `institutions:     ${mapping.institutions.join(', ') || '(none)'}`,
    );
    let ok = entry.email !== '';
    if (password === undefined) {
      lines.push('password:         not checked');
    } else {
      const answer = await directory.authenticate(username, password);
      const verdict = answer.status === 'ok' ? 'accepted by the directory' : answer.status === 'empty_password' ? 'refused: empty (never sent)' : 'refused by the directory';
      lines.push(`password:         ${verdict}`);
      ok &&= answer.status === 'ok';
    }
    return { ok, lines };
  } catch (error) {
    if (!(error instanceof DirectoryUnavailableError)) throw error;
    return { ok: false, lines: [...lines, `unavailable:      ${error.message}`] };
  }
}
