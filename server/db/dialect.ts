import type { Knex } from 'knex';
import type { DatabaseTarget } from '../config/index.js';

/**
 * Everything that differs between SQLite and MariaDB lives here, so that
 * repositories and migrations are written once.
 */

export type DialectName = DatabaseTarget['client'];

export interface KnexSettings {
  acquireTimeoutMs: number;
  poolMax: number;
}

export function knexConfigFor(target: DatabaseTarget, settings: KnexSettings): Knex.Config {
  if (target.client === 'sqlite') {
    return {
      client: 'better-sqlite3',
      connection: { filename: target.filename },
      useNullAsDefault: true,
      acquireConnectionTimeout: settings.acquireTimeoutMs,
      pool: {
        // One writer at a time is SQLite's model; WAL lets readers run beside it.
        min: 1,
        max: 1,
        afterCreate(conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) {
          try {
            conn.pragma('journal_mode = WAL');
            conn.pragma('foreign_keys = ON');
            conn.pragma('busy_timeout = 5000');
            conn.pragma('synchronous = NORMAL');
            reusePreparedStatements(conn);
            done(null, conn);
          } catch (error) {
            done(error as Error, conn);
          }
        },
      },
    };
  }
  return {
    client: 'mariadb',
    // knex reads "10.11" as lower than 10.5 and then silently drops .returning(); see docs/references.md, "The stack".
    version: 'latest',
    connection: {
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      ...(target.socketPath ? { socketPath: target.socketPath } : {}),
      // Without these the driver answers COUNT(*) and insert ids as BigInt.
      bigIntAsNumber: true,
      insertIdAsNumber: true,
      // Times travel as UTC strings on both databases (see toDbTime).
      dateStrings: true,
      connectTimeout: 5000,
      collation: 'UTF8MB4_UNICODE_CI',
    } as Knex.MariaSqlConnectionConfig,
    acquireConnectionTimeout: settings.acquireTimeoutMs,
    pool: {
      min: 0,
      max: settings.poolMax,
      // knex drives the callback flavour of the mariadb driver.
      afterCreate(conn: { query(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
        conn.query("SET time_zone = '+00:00'", (err) => done(err, conn));
      },
    },
  };
}

/** The part of a better-sqlite3 connection this module touches. */
interface SqliteConnection {
  pragma(sql: string): unknown;
  prepare(sql: string): unknown;
}

/** Distinct SQL texts kept compiled per connection; the application has a few hundred. */
const PREPARED_STATEMENTS = 500;

/**
 * knex compiles every query anew (`prepare`), which on a primary-key lookup
 * costs more than running it; every tile request makes three such lookups to
 * know who is asking. The connection keeps its compiled statements by SQL
 * text instead. knex runs a statement to the end (`all`/`run`) before the
 * next query on this single connection, so one statement is never used by two
 * queries at once, and SQLite recompiles a statement by itself when the schema
 * changes under it.
 */
function reusePreparedStatements(conn: SqliteConnection): void {
  const compile = conn.prepare.bind(conn);
  const statements = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (statement) {
      // Most recently used last, so that the first key is the one to drop.
      statements.delete(sql);
    } else {
      statement = compile(sql);
      if (statements.size >= PREPARED_STATEMENTS) statements.delete(statements.keys().next().value!);
    }
    statements.set(sql, statement);
    return statement;
  };
}

/** A UTC timestamp in the one text form both databases store and compare: `2026-11-29 03:04:05.678`. */
export function toDbTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

export function fromDbTime(value: string | Date): Date {
  if (value instanceof Date) return value;
  return new Date(`${value.replace(' ', 'T')}Z`);
}

/** JSON columns come back parsed from MariaDB and as text from SQLite. */
export function fromDbJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'ER_DUP_ENTRY';
}

/** Table options that MariaDB needs and SQLite ignores. */
export function applyTableDefaults(table: Knex.CreateTableBuilder, dialect: DialectName): void {
  if (dialect === 'mariadb') {
    table.engine('InnoDB');
    table.charset('utf8mb4');
    table.collate('utf8mb4_unicode_ci');
  }
}

/** The dialect of a knex instance or transaction, for code that is handed only knex. */
export function dialectOf(knex: Knex): DialectName {
  return (knex.client as { config: Knex.Config }).config.client === 'mariadb' ? 'mariadb' : 'sqlite';
}

/**
 * A text as MariaDB's utf8mb4_unicode_ci compares it, near enough for codes
 * and names compared in JavaScript: case, accents and trailing spaces do not
 * count. (SQLite's default collation compares the bytes.)
 */
export function collationKey(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/ +$/, '');
}
