import type { StaffRole } from '../users.repository.js';

/** Which groups give which staff role; a group is named by its DN (`CN=Pathologists,OU=Groups,DC=…`) or by its name alone. */
export interface RoleGroups {
  admin: readonly string[];
  curator: readonly string[];
  pathologist: readonly string[];
}

/** Groups whose members belong to a partner institution (L3), the institution by its name. */
export interface InstitutionGroups {
  institution: string;
  groups: readonly string[];
}

/** What a user's groups give them here. */
export interface GroupMapping {
  roles: StaffRole[];
  /** Names of the institutions the groups make the user a member of. */
  institutions: string[];
}

/** A DN compared without regard to case or the spaces around `,` and `=`. */
export function normalizeDn(dn: string): string {
  return dn
    .split(/(?<!\\),/)
    .map((rdn) =>
      rdn
        .split(/(?<!\\)=/)
        .map((part) => part.trim())
        .join('='),
    )
    .join(',')
    .toLowerCase();
}

/** The name of a group: the value of its DN's first part (`Pathologists` for `CN=Pathologists,OU=…`), or the text itself when it is no DN. */
export function groupName(group: string): string {
  const first = group.split(/(?<!\\),/)[0] ?? group;
  const at = first.search(/(?<!\\)=/);
  return (at >= 0 ? first.slice(at + 1) : first).trim().replace(/\\(.)/g, '$1');
}

/** Whether a configured group (a DN, or a name) names one of the user's groups. */
function matches(configured: string, groups: readonly string[]): boolean {
  if (configured.includes('=')) {
    const wanted = normalizeDn(configured);
    return groups.some((group) => normalizeDn(group) === wanted);
  }
  const wanted = configured.trim().toLowerCase();
  return groups.some((group) => group.trim().toLowerCase() === wanted || groupName(group).toLowerCase() === wanted);
}

const ROLE_ORDER: readonly StaffRole[] = ['admin', 'curator', 'pathologist'];

/** The roles and institutions a user's groups give, by the configured mapping; nothing for groups the mapping does not name. */
export function mapGroups(groups: readonly string[], roleGroups: RoleGroups, institutionGroups: readonly InstitutionGroups[]): GroupMapping {
  return {
    roles: ROLE_ORDER.filter((role) => roleGroups[role].some((configured) => matches(configured, groups))),
    institutions: institutionGroups.filter((entry) => entry.groups.some((configured) => matches(configured, groups))).map((entry) => entry.institution),
  };
}
