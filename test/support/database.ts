import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { parseDatabaseUrl, type DatabaseTarget } from '../../server/config/index.js';
import { migrateToLatest, migrationStatus, openDatabase, type Database } from '../../server/db/index.js';
import { packageRoot } from '../../server/package-info.js';

/**
 * A database of its own for one test: a fresh SQLite file by default, or, when
 * TEST_DATABASE_URL names a MariaDB server, a uniquely named database created
 * there and dropped afterwards.
 */
export interface TestDatabase {
  url: string;
  target: DatabaseTarget;
  /** An open connection to it. */
  db: Database;
  drop(): Promise<void>;
}

export const testDialect: 'sqlite' | 'mariadb' = process.env.TEST_DATABASE_URL?.match(/^(mariadb|mysql):/)
  ? 'mariadb'
  : 'sqlite';

const serverUrl = process.env.TEST_DATABASE_URL;

/** An empty database, not migrated: for the tests of migrations and of connecting. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (testDialect === 'sqlite' || serverUrl === undefined) return testDatabase(await emptySqliteFile());
  return testDatabase(await createMariadbDatabase());
}

/**
 * A database at the latest migration, as `createTestDatabase()` followed by
 * `migrateToLatest()` leaves it, made by copying a template migrated once:
 * SQLite copies the file that this test worker (one per test file) migrated;
 * MariaDB creates the tables of the run's template database (with their
 * foreign keys, indexes and AUTO_INCREMENT counters), copies the rows the
 * migrations inserted, and adds its triggers.
 */
export async function createMigratedTestDatabase(): Promise<TestDatabase> {
  if (testDialect === 'sqlite' || serverUrl === undefined) {
    const template = await (sqliteTemplate ??= forgetOnFailure(makeSqliteTemplate(), () => (sqliteTemplate = undefined)));
    const place = await emptySqliteFile();
    await copyFile(template, sqliteFile(place.target));
    return testDatabase(place);
  }
  const template = await (mariadbTemplate ??= forgetOnFailure(makeMariadbTemplate(), () => (mariadbTemplate = undefined)));
  const created = await createMariadbDatabase();
  try {
    await cloneMariadb(template, created.target);
  } catch (error) {
    await created.remove();
    throw error;
  }
  return testDatabase(created);
}

/** A template that failed to be made is made again by the next test, which then reports its own failure. */
function forgetOnFailure<T>(making: Promise<T>, forget: () => void): Promise<T> {
  making.catch(forget);
  return making;
}

interface Place {
  url: string;
  target: DatabaseTarget;
  /** Removes the database once its connection is closed. */
  remove(): Promise<void>;
}

function testDatabase(place: Place): TestDatabase {
  const db = openDatabase(place.target);
  return {
    url: place.url,
    target: place.target,
    db,
    async drop() {
      await db.close();
      await place.remove();
    },
  };
}

async function emptySqliteFile(): Promise<Place> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-test-'));
  const url = `sqlite:${path.join(dir, 'test.sqlite')}`;
  return { url, target: parseDatabaseUrl(url, dir), remove: () => rm(dir, { recursive: true, force: true }) };
}

let sqliteTemplate: Promise<string> | undefined;

async function makeSqliteTemplate(): Promise<string> {
  const place = await emptySqliteFile();
  const file = sqliteFile(place.target);
  process.once('exit', () => rmSync(path.dirname(file), { recursive: true, force: true }));
  const db = openDatabase(place.target);
  try {
    await migrateToLatest(db);
  } finally {
    await db.close(); // checkpoints the WAL into the file and removes it
  }
  if (existsSync(`${file}-wal`)) throw new Error(`the template ${file} kept a write-ahead log after closing`);
  return file;
}

function sqliteFile(target: DatabaseTarget): string {
  if (target.client !== 'sqlite') throw new Error(`not a SQLite target: ${target.client}`);
  return target.filename;
}

function adminDatabase(): Database {
  return openDatabase(parseDatabaseUrl(serverUrl!, process.cwd()), { poolMax: 1 });
}

async function createMariadbDatabase(): Promise<Place> {
  const name = `sbtest_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = adminDatabase();
  try {
    await admin.knex.raw(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.close();
  }
  const url = mariadbUrl(name);
  return { url, target: parseDatabaseUrl(url, process.cwd()), remove: () => dropMariadbDatabase(name) };
}

/** TEST_DATABASE_URL with another database. */
function mariadbUrl(database: string): string {
  const parsed = new URL(serverUrl!);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

function mariadbTarget(database: string): DatabaseTarget {
  return parseDatabaseUrl(mariadbUrl(database), process.cwd());
}

async function dropMariadbDatabase(name: string): Promise<void> {
  const admin = adminDatabase();
  try {
    await admin.knex.raw(`DROP DATABASE IF EXISTS \`${name}\``);
  } catch (error) {
    // MariaDB 10.11 now and then leaves the backup of a table's trigger file
    // (audit_log.TRG-) behind when several sessions change schemas at once;
    // the tables are gone, only a non-empty directory remains (errno 1010).
    if ((error as { errno?: number }).errno !== 1010) throw error;
  } finally {
    await admin.close();
  }
}

interface MariadbTemplate {
  database: string;
  /** SHOW CREATE TABLE of every table, in name order. */
  tables: string[];
  /** Tables the migrations put rows into. */
  seeded: string[];
  /** SHOW CREATE TRIGGER of every trigger. */
  triggers: string[];
}

let mariadbTemplate: Promise<MariadbTemplate> | undefined;

/**
 * The template is shared by every worker of a run (and the next run): one
 * database per version of the migrations, `sbtest_template_<hash>`, made by
 * whichever worker asks first while the others wait on a named lock. Nothing
 * but the clones reads it. One that a killed worker left half-migrated is made
 * again; those of other versions go once unused for a day.
 */
async function makeMariadbTemplate(): Promise<MariadbTemplate> {
  const database = `sbtest_template_${migrationsVersion()}`;
  const admin = adminDatabase(); // one connection: the named lock belongs to it
  try {
    await admin.knex.raw(`SELECT GET_LOCK('slidebank.test_template', 600)`);
    try {
      await ensureTemplate(admin, database);
    } finally {
      await admin.knex.raw(`SELECT RELEASE_LOCK('slidebank.test_template')`);
    }
  } finally {
    await admin.close();
  }
  return readTemplate(database);
}

/** A hash of the migrations and of the code that runs them, knex included. */
function migrationsVersion(): string {
  const hash = createHash('sha256').update(readFileSync(path.join(packageRoot, 'node_modules', 'knex', 'package.json')));
  const dir = path.join(packageRoot, 'server', 'db', 'migrations');
  for (const name of readdirSync(dir).sort()) hash.update(name).update(readFileSync(path.join(dir, name)));
  hash.update(readFileSync(path.join(packageRoot, 'server', 'db', 'migrate.ts')));
  return hash.digest('hex').slice(0, 16);
}

async function ensureTemplate(admin: Database, database: string): Promise<void> {
  const rows = async (sql: string, bindings: string[] = []) => ((await admin.knex.raw(sql, bindings)) as [Record<string, unknown>[]])[0];
  const target = mariadbTarget(database);
  if ((await rows('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).length > 0) {
    const db = openDatabase(target, { poolMax: 1 });
    const complete = await migrationStatus(db).then(
      (status) => status.pending.length === 0 && status.applied.length > 0,
      () => false,
    );
    await db.close();
    if (complete) return;
    await dropMariadbDatabase(database);
  }
  await admin.knex.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const db = openDatabase(target, { poolMax: 1 });
  try {
    await migrateToLatest(db);
  } finally {
    await db.close();
  }
  const stale = await rows(
    `SELECT s.SCHEMA_NAME AS name FROM information_schema.SCHEMATA s
       WHERE s.SCHEMA_NAME LIKE 'sbtest\\_template\\_%' AND s.SCHEMA_NAME <> ?
         AND NOT EXISTS (SELECT 1 FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME AND t.CREATE_TIME > NOW() - INTERVAL 1 DAY)`,
    [database],
  );
  for (const { name } of stale) await dropMariadbDatabase(String(name));
}

async function readTemplate(database: string): Promise<MariadbTemplate> {
  const db = openDatabase(mariadbTarget(database), { poolMax: 1 });
  try {
    const rows = async (sql: string, bindings: string[] = []) => ((await db.knex.raw(sql, bindings)) as [Record<string, unknown>[]])[0];
    const objects = await rows(
      `SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?) AS views,
              (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) AS routines,
              (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) AS events`,
      [database, database, database],
    );
    if (Object.values(objects[0]!).some((n) => Number(n) > 0)) {
      throw new Error(`the migrations made views, routines or events (${JSON.stringify(objects[0])}), which the template clone does not copy`);
    }
    const names = (await rows(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, [database])).map(
      (r) => String(r.name),
    );
    const tables: string[] = [];
    const seeded: string[] = [];
    for (const name of names) {
      tables.push(String((await rows(`SHOW CREATE TABLE \`${name}\``))[0]!['Create Table']));
      if ((await rows(`SELECT 1 FROM \`${name}\` LIMIT 1`)).length > 0) seeded.push(name);
    }
    const triggers: string[] = [];
    for (const trigger of await rows('SHOW TRIGGERS')) {
      triggers.push(String((await rows(`SHOW CREATE TRIGGER \`${String(trigger.Trigger)}\``))[0]!['SQL Original Statement']));
    }
    return { database, tables, seeded, triggers };
  } finally {
    await db.close();
  }
}

async function cloneMariadb(template: MariadbTemplate, target: DatabaseTarget): Promise<void> {
  const db = openDatabase(target, { poolMax: 1 });
  try {
    // One connection throughout: the session settings and the named lock belong to it.
    await db.knex.transaction(async (conn) => {
      await conn.raw('SET FOREIGN_KEY_CHECKS = 0');
      for (const sql of template.tables) await conn.raw(sql);
      for (const table of template.seeded) await conn.raw(`INSERT INTO \`${table}\` SELECT * FROM \`${template.database}\`.\`${table}\``);
      await conn.raw('SET FOREIGN_KEY_CHECKS = 1');
      // Serialised with the migrations' own trigger creation (see the audit migration).
      await conn.raw(`SELECT GET_LOCK('slidebank.create_trigger', 60)`);
      try {
        for (const sql of template.triggers) await conn.raw(sql);
      } finally {
        await conn.raw(`SELECT RELEASE_LOCK('slidebank.create_trigger')`);
      }
    });
  } finally {
    await db.close();
  }
}
