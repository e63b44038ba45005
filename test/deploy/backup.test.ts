import { copyFile, mkdtemp, readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { hashPassword } from '../../server/access/password.js';
import { UsersRepository } from '../../server/access/users.repository.js';
import { AuditRepository } from '../../server/audit/audit.repository.js';
import { parseDatabaseUrl } from '../../server/config/index.js';
import { openDatabase, type Database } from '../../server/db/index.js';
import { createMigratedTestDatabase, createTestDatabase, testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';
import { opsDir, run, toolTest } from './tools.js';

/**
 * The backup and restore drill of docs/operations.md on the suite's database
 * (SQLite by default, MariaDB with TEST_DATABASE_URL): data made through the
 * app's repositories, ops/backup/slidebank-backup, a change after the backup,
 * ops/backup/slidebank-restore, and every table compared row by row with what
 * it held when the backup was taken.
 */

const BACKUP = path.join(opsDir, 'backup', 'slidebank-backup');
const RESTORE = path.join(opsDir, 'backup', 'slidebank-restore');
const needs = testDialect === 'mariadb' ? ['mariadb-dump', 'mariadb'] : ['sqlite3'];

/** Every table's rows, in a stable order: the whole state of the database. */
async function snapshot(db: Database): Promise<Record<string, unknown[]>> {
  const tables: string[] =
    db.dialect === 'sqlite'
      ? (await db.knex.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")).map((r: { name: string }) => r.name)
      : (await db.knex.raw('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name'))[0].map((r: { name: string }) => r.name);
  const state: Record<string, unknown[]> = {};
  for (const table of tables) {
    const columns = Object.keys(await db.knex(table).columnInfo());
    state[table] = await db.knex(table).select('*').orderBy(columns.map((column) => ({ column })));
  }
  return state;
}

async function populate(t: ExecutionContext, db: Database): Promise<void> {
  const users = new UsersRepository(db.knex);
  const passwordHash = await hashPassword('grey heron over the river 42');
  for (const [i, level] of (['L1', 'L2', 'L3'] as const).entries()) {
    await users.create({ email: `drill${i}@hospital.example`, name: `Drill ${i} — Ünïcode`, institution: 'Test Hospital', passwordHash, level, levelExpiresAt: null, roles: i === 0 ? ['admin'] : [], emailConfirmedAt: new Date() });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-drill-slides-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const seed of [1, 2]) {
    const made = await makeSlide({ width: 600, height: 400, out: dir, name: `drill-${seed}`, seed });
    await registerSlide(db, made.svs);
  }
  await new AuditRepository(db.knex).record({ action: 'drill.made', actorId: null, subjectType: 'slide', subjectId: 1, ip: '127.0.0.1', details: { note: 'before the backup' } });
}

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, SLIDEBANK_BACKUP_ENV: '/nonexistent/backup.env', ...extra };
}

toolTest(`a backup restores the catalog exactly (${testDialect})`, needs, async (t) => {
  t.timeout(5 * 60_000);
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  await populate(t, database.db);
  const before = await snapshot(database.db);
  t.true((before.slides?.length ?? 0) === 2 && (before.users?.length ?? 0) === 3 && (before.audit_log?.length ?? 0) >= 1);

  const backups = await mkdtemp(path.join(os.tmpdir(), 'slidebank-drill-backups-'));
  t.teardown(() => rm(backups, { recursive: true, force: true }));
  // Two older dumps that the rotation (keep 2) must remove one of.
  for (const [i, name] of ['db-20200101T000000Z', 'db-20200102T000000Z'].entries()) {
    const file = path.join(backups, `${name}.${testDialect === 'mariadb' ? 'sql' : 'sqlite'}.gz`);
    await writeFile(file, '');
    await utimes(file, new Date(2020, 0, 1 + i), new Date(2020, 0, 1 + i));
  }
  const { stdout } = await run(BACKUP, [], {
    env: env({ DATABASE_URL: database.url, BACKUP_DIR: backups, BACKUP_KEEP: '2', SLIDES_HOOK: 'touch "$BACKUP_DIR/hook-ran"' }),
  });
  t.regex(stdout, /backup complete/);
  const files = (await readdir(backups)).sort();
  t.true(files.includes('hook-ran'), 'the slide store hook ran');
  const dumps = files.filter((f) => f.startsWith('db-'));
  t.is(dumps.length, 2, `rotation keeps two: ${dumps.join(', ')}`);
  t.is(dumps[0], `db-20200102T000000Z.${testDialect === 'mariadb' ? 'sql' : 'sqlite'}.gz`, 'the oldest went first');
  const dump = path.join(backups, dumps[1]!);

  // Life goes on after the backup: a slide withdrawn, a user added.
  await database.db.knex('slides').where({ id: (before.slides![0] as { id: number }).id }).update({ status: 'withdrawn' });
  await new UsersRepository(database.db.knex).create({ email: 'after@hospital.example', name: 'After', institution: 'X', passwordHash: 'x', level: 'L1', levelExpiresAt: null, roles: [], emailConfirmedAt: null });
  t.notDeepEqual(await snapshot(database.db), before);

  // A damaged dump is refused before anything is touched.
  const damaged = path.join(backups, `damaged${path.extname(path.basename(dump, '.gz'))}.gz`);
  await copyFile(dump, damaged);
  await truncate(damaged, 100);
  const refused = await run(RESTORE, ['--database-url', database.url, '--replace', damaged], { env: env({}) }).then(() => null, (error: { code: number; stderr: string }) => error);
  t.is(refused?.code, 2);
  t.regex(refused?.stderr ?? '', /not a complete gzip file .*nothing was changed/);

  // An existing database is not overwritten without --replace.
  const kept = await run(RESTORE, ['--database-url', database.url, dump], { env: env({}) }).then(() => null, (error: { code: number; stderr: string }) => error);
  t.is(kept?.code, 2);
  t.regex(kept?.stderr ?? '', /--replace/);

  if (database.target.client === 'sqlite') {
    // In place, as after a disk loss: the server is stopped (here: the connection closed).
    await database.db.close();
    await run(RESTORE, ['--database-url', database.url, '--replace', dump], { env: env({}) });
    const reopened = openDatabase(parseDatabaseUrl(database.url, process.cwd()));
    t.teardown(() => reopened.close());
    t.deepEqual(await snapshot(reopened), before);
  } else {
    // Into a fresh, empty database, as on a new database server.
    const fresh = await createTestDatabase();
    t.teardown(() => fresh.drop());
    const { stdout: restored } = await run(RESTORE, ['--database-url', fresh.url, dump], { env: env({}) });
    t.regex(restored, /restore complete/);
    t.deepEqual(await snapshot(fresh.db), before);
    // The audit log's triggers came back too: the restored log still refuses changes.
    await t.throwsAsync(fresh.db.knex('audit_log').update({ action: 'tampered' }));
  }
});
