import test from 'ava';
import {
  migrateToLatest,
  migrationLockHeld,
  migrationStatus,
  openDatabase,
  releaseMigrationLock,
  rollbackLatest,
} from '../../server/db/index.js';
import { ExitCode, FatalError } from '../../server/errors.js';
import { migrations } from '../../server/db/migrations/index.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, testDialect } from '../support/database.js';

test(`migrations apply, report, roll back and re-apply on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  const all = migrations.map((m) => m.name);

  t.deepEqual(await migrationStatus(db), { applied: [], pending: all });
  t.deepEqual(await migrateToLatest(db), all);
  t.deepEqual(await migrationStatus(db), { applied: all, pending: [] });
  t.deepEqual(await migrateToLatest(db), [], 'a second run has nothing to do');
  t.true(await db.knex.schema.hasTable('users'));
  t.true(await db.knex.schema.hasTable('user_roles'));

  t.deepEqual(await rollbackLatest(db), [...all].reverse());
  t.false(await db.knex.schema.hasTable('users'));
  t.deepEqual(await migrateToLatest(db), all);
  t.true(await db.knex.schema.hasTable('users'));
});

test(`migration names are dated, unique and in order`, (t) => {
  const names = migrations.map((m) => m.name);
  for (const name of names) t.regex(name, /^\d{4}-\d{2}-\d{2}-\d{2}-[a-z0-9-]+$/);
  t.deepEqual([...names].sort(), names);
  t.is(new Set(names).size, names.length);
});

// Nodes are processes: better-sqlite3 waits for a busy database synchronously,
// so two connections in one process would only wait on each other.
test(`nodes starting together migrate once on ${testDialect}`, async (t) => {
  for (let round = 0; round < 3; round++) {
    const { db, url, drop } = await createTestDatabase();
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate', '--database-url', url])));
      for (const run of runs) t.is(run.code, 0, `round ${round}: ${run.stderr}`);
      const applied = runs.flatMap((run) => [...run.stdout.matchAll(/^applied {2}(\S+)$/gm)].map((m) => m[1]));
      t.deepEqual(applied.sort(), migrations.map((m) => m.name), `round ${round}: each migration ran exactly once`);
      t.deepEqual((await migrationStatus(db)).pending, []);
      const lockRows = await db.knex('knex_migrations_lock').select('index', 'is_locked');
      t.deepEqual(lockRows, [{ index: 1, is_locked: 0 }], 'one lock row, released');
    } finally {
      await drop();
    }
  }
});

// SQLite connections in one process block each other (see above), so this race is MariaDB's alone.
const mariadbOnly = testDialect === 'mariadb' ? test : test.skip;

mariadbOnly(`connections racing from one process migrate once on mariadb`, async (t) => {
  for (let round = 0; round < 5; round++) {
    const { db, target, drop } = await createTestDatabase();
    const others = [openDatabase(target), openDatabase(target)];
    try {
      const results = await Promise.allSettled([db, ...others].map((node) => migrateToLatest(node)));
      t.deepEqual(results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])), [], `round ${round}: no node failed`);
      const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      t.deepEqual(applied.sort(), migrations.map((m) => m.name), `round ${round}: each migration ran exactly once`);
    } finally {
      await Promise.all(others.map((node) => node.close()));
      await drop();
    }
  }
});

test(`a lock left by a dead node stops migration with advice, and --unlock releases it, on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  await migrateToLatest(db);
  await db.knex('knex_migrations_lock').update({ is_locked: 1 });
  t.true(await migrationLockHeld(db));

  const error = await t.throwsAsync(migrateToLatest(db, { lockTimeoutMs: 300 }));
  t.true(error instanceof FatalError);
  t.is((error as FatalError).exitCode, ExitCode.database);
  t.regex(error!.message, /slidebank migrate --unlock/);

  t.true(await releaseMigrationLock(db));
  t.false(await migrationLockHeld(db));
  t.false(await releaseMigrationLock(db), 'nothing left to release');
  t.deepEqual(await migrateToLatest(db), []);
});

test(`a database with the duplicate lock rows of the old start-up race migrates again on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  await migrateToLatest(db);
  await db.knex('knex_migrations_lock').insert({ is_locked: 0 });
  t.is((await db.knex('knex_migrations_lock').select()).length, 2);
  t.deepEqual(await rollbackLatest(db), [...migrations.map((m) => m.name)].reverse());
  t.deepEqual(await migrateToLatest(db), migrations.map((m) => m.name));
  t.is((await db.knex('knex_migrations_lock').select()).length, 1);
});
