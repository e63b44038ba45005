import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseDatabaseUrl, type DatabaseTarget } from '../../server/config/index.js';
import { openDatabase, type Database } from '../../server/db/index.js';

/**
 * A database of its own for one test: a fresh SQLite file by default, or, when
 * TEST_DATABASE_URL names a MariaDB server, a uniquely named database created
 * there and dropped afterwards.
 */
export interface TestDatabase {
  url: string;
  target: DatabaseTarget;
  /** An open connection to it (not migrated). */
  db: Database;
  drop(): Promise<void>;
}

export const testDialect: 'sqlite' | 'mariadb' = process.env.TEST_DATABASE_URL?.match(/^(mariadb|mysql):/)
  ? 'mariadb'
  : 'sqlite';

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (testDialect === 'sqlite' || serverUrl === undefined) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-test-'));
    const url = `sqlite:${path.join(dir, 'test.sqlite')}`;
    const target = parseDatabaseUrl(url, dir);
    const db = openDatabase(target);
    return {
      url,
      target,
      db,
      async drop() {
        await db.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  const admin = openDatabase(parseDatabaseUrl(serverUrl, process.cwd()));
  const name = `sbtest_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  try {
    await admin.knex.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.close();
  }
  const parsed = new URL(serverUrl);
  parsed.pathname = `/${name}`;
  const url = parsed.toString();
  const target = parseDatabaseUrl(url, process.cwd());
  const db = openDatabase(target);
  return {
    url,
    target,
    db,
    async drop() {
      await db.close();
      const cleanup = openDatabase(parseDatabaseUrl(serverUrl, process.cwd()));
      try {
        await cleanup.knex.raw(`DROP DATABASE IF EXISTS \`${name}\``);
      } catch (error) {
        // MariaDB 10.11 now and then leaves the backup of a table's trigger file
        // (audit_log.TRG-) behind when several sessions change schemas at once;
        // the tables are gone, only a non-empty directory remains (errno 1010).
        if ((error as { errno?: number }).errno !== 1010) throw error;
      } finally {
        await cleanup.close();
      }
    },
  };
}
