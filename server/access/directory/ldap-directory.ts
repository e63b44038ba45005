import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import type { InstitutionGroups, RoleGroups } from './group-mapping.js';
import { memberFilter, userFilter } from './ldap-filter.js';

/** auth.ldap as the directory client uses it. */
export interface LdapSettings {
  url: string;
  startTls: boolean;
  allowPlain: boolean;
  caFile: string;
  bindDn: string;
  bindPassword: string;
  userSearchBase: string;
  userFilter: string;
  emailAttribute: string;
  nameAttribute: string;
  groupSearchBase: string;
  nestedGroups: 'off' | 'in-chain' | 'walk';
  roleGroups: RoleGroups;
  institutionGroups: readonly InstitutionGroups[];
  timeoutSeconds: number;
  domains: readonly string[];
}

/** A user the directory knows, as it knows them. */
export interface DirectoryEntry {
  dn: string;
  /** Lower case; empty when the entry has no e-mail attribute. */
  email: string;
  name: string;
  /** DNs of the groups the user is in (with nested ones, as auth.ldap.nestedGroups says). */
  groups: string[];
}

/** What the directory said of a user name and password. Unreachable or broken directories throw DirectoryUnavailableError instead. */
export type DirectoryAnswer =
  | { status: 'ok'; entry: DirectoryEntry }
  | { status: 'unknown_user' }
  | { status: 'ambiguous'; count: number }
  | { status: 'wrong_password'; dn: string }
  | { status: 'empty_password' };

/** The directory cannot be asked now: down, too slow, its certificate refused, the service account refused. */
export class DirectoryUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'DirectoryUnavailableError';
  }
}

/** Groups of groups are followed this deep at most (`walk`), so that a cycle or a deep tree cannot keep a login waiting. */
const MAX_GROUP_DEPTH = 8;

/**
 * The hospital's directory, asked the way a careful LDAP client asks: find
 * the user with the service account and the configured filter (what the user
 * typed escaped per RFC 4515), then bind as the user's entry with the
 * password typed — the directory checks the password, Slidebank never
 * compares one — then read the user's groups. An empty password is refused
 * before any bind (an empty password is an unauthenticated bind, which many
 * servers accept as a success). Every connection is over TLS (LDAPS, or
 * StartTLS before anything is sent) checked against auth.ldap.caFile unless
 * plain LDAP is explicitly allowed; connecting and each operation are
 * bounded by auth.ldap.timeoutSeconds. One connection per login, closed
 * afterwards.
 */
export class LdapDirectory {
  private readonly tls: ConnectionOptions;

  constructor(readonly settings: LdapSettings) {
    const ca = settings.caFile ? readFileSync(settings.caFile) : undefined;
    this.tls = { minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(ca ? { ca } : {}) };
  }

  /** Checks a user name (what the user typed) and password against the directory. */
  async authenticate(username: string, password: string): Promise<DirectoryAnswer> {
    if (password === '') return { status: 'empty_password' };
    return this.withClient(async (client) => {
      const found = await this.findUser(client, username);
      if (found.status !== 'found') return found;
      try {
        await client.bind(found.entry.dn, password);
      } catch (error) {
        if (error instanceof InvalidCredentialsError) return { status: 'wrong_password', dn: found.entry.dn };
        throw error;
      }
      // Groups are read as the service account again: the user may not be allowed to read them.
      await this.bindService(client);
      return { status: 'ok', entry: await this.entryOf(client, found.entry) };
    });
  }

  /** Finds a user without a password, for `slidebank auth check-ldap` and for showing what the directory holds. */
  async lookup(username: string): Promise<{ status: 'found'; entry: DirectoryEntry } | { status: 'unknown_user' } | { status: 'ambiguous'; count: number }> {
    return this.withClient(async (client) => {
      const found = await this.findUser(client, username);
      if (found.status !== 'found') return found;
      return { status: 'found', entry: await this.entryOf(client, found.entry) };
    });
  }

  private async findUser(client: Client, username: string): Promise<{ status: 'found'; entry: Entry } | { status: 'unknown_user' } | { status: 'ambiguous'; count: number }> {
    await this.bindService(client);
    const attributes = ['dn', this.settings.emailAttribute, this.settings.nameAttribute, ...(this.settings.groupSearchBase === '' ? ['memberOf'] : [])];
    const { searchEntries } = await client.search(this.settings.userSearchBase, {
      scope: 'sub',
      filter: userFilter(this.settings.userFilter, username),
      attributes,
      sizeLimit: 2,
      timeLimit: this.settings.timeoutSeconds,
    });
    if (searchEntries.length === 0) return { status: 'unknown_user' };
    if (searchEntries.length > 1) return { status: 'ambiguous', count: searchEntries.length };
    return { status: 'found', entry: searchEntries[0]! };
  }

  private async entryOf(client: Client, entry: Entry): Promise<DirectoryEntry> {
    return {
      dn: entry.dn,
      email: firstText(entry[this.settings.emailAttribute]).trim().toLowerCase(),
      name: firstText(entry[this.settings.nameAttribute]).trim(),
      groups: await this.groupsOf(client, entry),
    };
  }

  /** The user's groups: memberOf, or a group search (member or uniqueMember), with nested groups as configured. */
  private async groupsOf(client: Client, entry: Entry): Promise<string[]> {
    const { groupSearchBase, nestedGroups } = this.settings;
    if (groupSearchBase === '') return allText(entry.memberOf);
    if (nestedGroups === 'in-chain') {
      // Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: every group the user is in, however deep, in one search.
      return this.searchGroups(client, memberFilter('member:1.2.840.113556.1.4.1941:', entry.dn));
    }
    const direct = await this.searchGroups(client, directMembers(entry.dn));
    if (nestedGroups === 'off') return direct;
    const seen = new Set(direct.map((dn) => dn.toLowerCase()));
    const all = [...direct];
    let frontier = direct;
    for (let depth = 1; depth < MAX_GROUP_DEPTH && frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const group of frontier) {
        for (const parent of await this.searchGroups(client, directMembers(group))) {
          if (seen.has(parent.toLowerCase())) continue;
          seen.add(parent.toLowerCase());
          all.push(parent);
          next.push(parent);
        }
      }
      frontier = next;
    }
    return all;
  }

  private async searchGroups(client: Client, filter: string): Promise<string[]> {
    const { searchEntries } = await client.search(this.settings.groupSearchBase, {
      scope: 'sub',
      filter,
      attributes: ['dn'],
      sizeLimit: 1000,
      timeLimit: this.settings.timeoutSeconds,
    });
    return searchEntries.map((group) => group.dn);
  }

  private async bindService(client: Client): Promise<void> {
    if (this.settings.bindDn === '') return;
    try {
      await client.bind(this.settings.bindDn, this.settings.bindPassword);
    } catch (error) {
      if (error instanceof InvalidCredentialsError) throw new DirectoryUnavailableError('the directory refused the service account (auth.ldap.bindDn, auth.ldap.bindPassword)', error);
      throw error;
    }
  }

  private async withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const timeout = this.settings.timeoutSeconds * 1000;
    // TLS options only for ldaps:// (given with ldap://, ldapts would start TLS before StartTLS is asked for).
    const ldaps = this.settings.url.toLowerCase().startsWith('ldaps://');
    const client = new Client({ url: this.settings.url, timeout, connectTimeout: timeout, ...(ldaps ? { tlsOptions: this.tls } : {}), strictDN: false });
    try {
      // ldapts adds the socket to the options it is given: each upgrade gets a copy, naming the host its certificate must name.
      if (this.settings.startTls) await client.startTLS({ ...this.tls, host: new URL(this.settings.url).hostname });
      return await work(client);
    } catch (error) {
      if (error instanceof DirectoryUnavailableError) throw error;
      throw new DirectoryUnavailableError(`the directory at ${this.settings.url} could not be asked: ${describe(error)}`, error);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }
}

function directMembers(dn: string): string {
  return `(|${memberFilter('member', dn)}${memberFilter('uniqueMember', dn)})`;
}

function allText(value: Entry[string] | undefined): string[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  return values.map((item) => (Buffer.isBuffer(item) ? item.toString('utf8') : String(item)));
}

function firstText(value: Entry[string] | undefined): string {
  return allText(value)[0] ?? '';
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
