import path from 'node:path';

/** Where the database lives, parsed from `DATABASE_URL`. */
export type DatabaseTarget =
  | { client: 'sqlite'; filename: string }
  | {
      client: 'mariadb';
      host: string;
      port: number;
      user: string;
      password: string;
      database: string;
      socketPath?: string;
      /** Further servers of the same Galera cluster, tried in order when `host` does not answer. */
      failover?: { host: string; port: number }[];
    };

const FORMS = 'use sqlite:path/file.sqlite or mariadb://user:password@host:port/database';

export class DatabaseUrlError extends Error {}

/**
 * Parse `sqlite:relative/or/absolute.sqlite` or
 * `mariadb://user:password@host:port/database[?socketPath=/run/mysqld/mysqld.sock]`
 * (`mysql://` is accepted as a synonym). Relative SQLite paths resolve against `baseDir`.
 * A Galera cluster is named by several hosts, `mariadb://user:password@db1:3306,db2:3306,db3:3306/database`:
 * the first is this node's own, the others are where it fails over to.
 */
export function parseDatabaseUrl(url: string, baseDir: string): DatabaseTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new DatabaseUrlError(`"${url}" is not a URL; ${FORMS}`);

  if (scheme === 'sqlite') {
    let file = url.slice('sqlite:'.length);
    if (file.startsWith('///')) file = file.slice(2);
    else if (file.startsWith('//')) {
      throw new DatabaseUrlError(
        `"${url}" is ambiguous; write sqlite:relative/path.sqlite or sqlite:/absolute/path.sqlite`,
      );
    }
    if (file === '' || file === ':memory:') {
      throw new DatabaseUrlError(`"${url}" names no database file; ${FORMS}`);
    }
    return { client: 'sqlite', filename: path.resolve(baseDir, file) };
  }

  if (scheme === 'mariadb' || scheme === 'mysql') {
    // URL does not parse a list of hosts: parse with the first, keep the others aside.
    const hostList = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]*)(.*)$/i.exec(url);
    const [first = '', ...others] = (hostList?.[2] ?? '').split(',');
    let parsed: URL;
    try {
      parsed = new URL(hostList && others.length > 0 ? `${hostList[1]}${first}${hostList[3]}` : url);
    } catch {
      throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" is not a valid URL; ${FORMS}`);
    }
    if (parsed.hostname === '') throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" names no host; ${FORMS}`);
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    if (database === '' || database.includes('/')) {
      throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" must name exactly one database after the host; ${FORMS}`);
    }
    const port = parsed.port === '' ? 3306 : Number(parsed.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" has an invalid port`);
    }
    const user = decodeURIComponent(parsed.username);
    if (user === '') throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" names no user; ${FORMS}`);

    const target: DatabaseTarget = {
      client: 'mariadb',
      host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port,
      user,
      password: decodeURIComponent(parsed.password),
      database,
    };
    if (others.length > 0) {
      target.failover = others.map((hostPort) => {
        const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort);
        const otherPort = match?.[2] === undefined ? 3306 : Number(match[2]);
        if (!match || otherPort < 1 || otherPort > 65535) throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" has an invalid host "${hostPort}" in its list of hosts`);
        return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: otherPort };
      });
    }
    for (const [key, value] of parsed.searchParams) {
      if (key === 'socketPath') target.socketPath = value;
      else throw new DatabaseUrlError(`"${maskDatabaseUrl(url)}" has an unknown parameter "${key}" (known: socketPath)`);
    }
    return target;
  }

  throw new DatabaseUrlError(`unsupported scheme "${scheme}:"; ${FORMS}`);
}

/** The URL with its password replaced, for logs and `config check`. */
export function maskDatabaseUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i, '$1****@');
}

/** A short, password-free description: `sqlite /srv/x.sqlite` or `mariadb root@host:3306/db`. */
export function describeDatabase(target: DatabaseTarget): string {
  return target.client === 'sqlite'
    ? `sqlite ${target.filename}`
    : `mariadb ${target.user}@${target.socketPath ?? [target, ...(target.failover ?? [])].map((h) => `${h.host}:${h.port}`).join(',')}/${target.database}`;
}
