import test from 'ava';
import {
  migrateToLatest,
  migrationLockHeld,
  migrationStatus,
  openDatabase,
  releaseMigrationLock,
  rollbackLatest,
  toDbTime,
} from '../../server/db/index.js';
import { ExitCode, FatalError } from '../../server/errors.js';
import { migrations } from '../../server/db/migrations/index.js';
import { runCli } from '../support/cli.js';
import { createMigratedTestDatabase, createTestDatabase, testDialect } from '../support/database.js';
import { describeSchema, schemaHash } from '../support/schema.js';

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

/**
 * The schema (tables, indexes, foreign keys, triggers and the rows migrations
 * insert; test/support/schema.ts) that each migration leaves, pinned per
 * dialect. A released migration never changes, since databases that already
 * ran it would not run it again: a change is a new migration. A new migration
 * gets its line here, with the hashes this test prints (MariaDB's are for the
 * server .ci/run installs, Debian's 10.11).
 */
const SCHEMA_AFTER: Record<string, { sqlite: string; mariadb: string }> = {
  '2026-11-29-01-accounts': { sqlite: 'e6a491ead9907e13', mariadb: '479b93d55862e640' },
  '2026-11-29-02-slides': { sqlite: 'a65bbd0c16dcd080', mariadb: '697e8ec6532be458' },
  '2026-11-29-03-catalog': { sqlite: '1306522116ad1d3a', mariadb: 'f9d395757cdecbd5' },
  '2026-11-29-04-jobs': { sqlite: 'c72b557b3a30c1e2', mariadb: '5a4057afe227b12e' },
  '2026-11-29-05-sessions': { sqlite: '0b3d0f154432d820', mariadb: '3c888e5c072b7038' },
  '2026-11-29-06-audit': { sqlite: '081cffa749293aeb', mariadb: '3154c3f320d6ccdd' },
  '2026-11-29-07-agreements': { sqlite: 'c47ab2708267c29d', mariadb: '045c19ee4bdc098e' },
  '2026-11-29-08-queue': { sqlite: '96d5202a2baa18a7', mariadb: 'f06d97902aa092a7' },
  '2026-11-29-09-datasets': { sqlite: 'e592691eae643bd8', mariadb: '13ab8c1c8672c746' },
  '2026-11-29-10-annotation-versions': { sqlite: '74c31b9f976cf9c0', mariadb: '90823e398177c9eb' },
  '2026-12-07-02-comparison-figures': { sqlite: '7b3406dd1320bf5c', mariadb: '8116cd5c161fc8cd' },
  '2026-12-07-04-overlay-names': { sqlite: 'f4816d435e56de78', mariadb: '17c155770af995d5' },
  '2026-12-07-10-agreement-drafts': { sqlite: 'd8a41926f8a1547a', mariadb: 'efbb890cff2dd1b9' },
  '2026-12-07-11-must-change-password': { sqlite: '927476ac6a02da2d', mariadb: '54dca2ae9ba706fb' },
  '2026-12-07-20-job-runs-recent': { sqlite: '9245511dcb48de84', mariadb: '7fb6793f5d4bcd3b' },
  '2026-12-07-30-challenges': { sqlite: '635c33892cd2bd18', mariadb: '4f111c6f6268ad9e' },
  '2026-12-07-40-account-sources': { sqlite: '54fd8d3c76be8884', mariadb: 'ebf7aee0c18a2991' },
  '2026-12-07-50-challenge-uploads': { sqlite: 'b871ddf7272882f1', mariadb: 'd02f6768ee810c85' },
  '2026-12-07-60-slide-origin': { sqlite: '6bfced0ad7fb4ed0', mariadb: '064952916a9af082' },
  '2026-12-07-72-catalog-counts': { sqlite: '445d8886ed34ba75', mariadb: 'ad0551a36141f6d6' },
  '2026-12-07-80-catalog-words': { sqlite: 'e6a006d5a5cba064', mariadb: '53301258f0038367' },
  '2026-12-07-90-catalog-count-changes': { sqlite: '8109d7e50e0f243c', mariadb: 'c66c9b17f3fd6c85' },
};

test(`each migration leaves the schema pinned for it on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  const source = {
    getMigrations: async () => [...migrations],
    getMigrationName: (migration: (typeof migrations)[number]) => migration.name,
    getMigration: async (migration: (typeof migrations)[number]) => ({
      up: (knex: typeof db.knex) => migration.up(knex, db.dialect),
      down: (knex: typeof db.knex) => migration.down(knex, db.dialect),
    }),
  };
  const unpinned: string[] = [];
  for (const migration of migrations) {
    await db.knex.migrate.up({ migrationSource: source, tableName: 'knex_migrations' });
    const hash = await schemaHash(db);
    const pinned = SCHEMA_AFTER[migration.name]?.[testDialect];
    if (pinned === undefined) unpinned.push(`${migration.name}: ${hash}`);
    else t.is(hash, pinned, `${migration.name} no longer leaves the schema it left when released; change the schema in a new migration instead`);
  }
  t.deepEqual(unpinned, [], `pin the ${testDialect} schema of each new migration in SCHEMA_AFTER`);
  t.deepEqual(Object.keys(SCHEMA_AFTER), migrations.map((m) => m.name), 'a released migration is never renamed or removed');
});

test(`a database from the migrated template has the schema and rows of a freshly migrated one on ${testDialect}`, async (t) => {
  const fresh = await createTestDatabase();
  t.teardown(fresh.drop);
  await migrateToLatest(fresh.db);
  const expected = await describeSchema(fresh.db);
  const copies = await Promise.all([createMigratedTestDatabase(), createMigratedTestDatabase()]);
  for (const copy of copies) t.teardown(copy.drop);
  for (const copy of copies) {
    t.is(await describeSchema(copy.db), expected);
    t.deepEqual(await migrationStatus(copy.db), { applied: migrations.map((m) => m.name), pending: [] });
  }
  // Each copy is a database of its own.
  const now = toDbTime(new Date());
  await copies[0]!.db.knex('users').insert({ email: 'only-in-one@hospital.example', created_at: now, updated_at: now });
  t.is(Number((await copies[0]!.db.knex('users').count({ n: '*' }))[0]!.n), 1);
  t.is(Number((await copies[1]!.db.knex('users').count({ n: '*' }))[0]!.n), 0);
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

test(`a node holding the migration lock keeps others from migrating until it releases it; a holder that died is released by --unlock, on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  await migrateToLatest(db);
  await db.knex('knex_migrations_holder').update({ holder: 'node-a pid 1', taken_at: new Date().toISOString() });
  t.true(await migrationLockHeld(db));
  await rollbackLatest(db, { lockTimeoutMs: 300 }).then(
    () => t.fail('rolled back under another node’s lock'),
    (error: Error) => t.regex(error.message, /held for over 0 s.*slidebank migrate --unlock/s),
  );
  t.deepEqual((await migrationStatus(db)).pending, [], 'nothing was undone');
  t.true(await releaseMigrationLock(db));
  t.false(await migrationLockHeld(db));
  t.deepEqual(await rollbackLatest(db), [...migrations.map((m) => m.name)].reverse());
  t.deepEqual(await migrateToLatest(db), migrations.map((m) => m.name));
  t.deepEqual(await db.knex('knex_migrations_holder').select('holder'), [{ holder: null }], 'released after migrating');
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
