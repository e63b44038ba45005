import test from 'ava';
import { migrateToLatest, migrationStatus, openDatabase, rollbackLatest } from '../../server/db/index.js';
import { migrations } from '../../server/db/migrations/index.js';
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

test(`nodes starting together migrate once on ${testDialect}`, async (t) => {
  const { db, target, drop } = await createTestDatabase();
  const otherNode = openDatabase(target);
  t.teardown(async () => {
    await otherNode.close();
    await drop();
  });
  const results = await Promise.allSettled([migrateToLatest(db), migrateToLatest(otherNode)]);
  const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  t.deepEqual(applied, migrations.map((m) => m.name), 'each migration ran exactly once');
  t.deepEqual((await migrationStatus(db)).pending, []);
});
