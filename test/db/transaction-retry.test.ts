import test from 'ava';
import type { Knex } from 'knex';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

/**
 * Every `knex.transaction(callback)` of the application retries a transaction
 * the server rolled back (an InnoDB deadlock here; on Galera also a write set
 * that lost certification, reported the same way): two real transactions lock
 * two rows in opposite order, the server picks a victim, and both end up
 * committed, each write applied once.
 */

test(`two transactions that deadlock both commit, the victim run again, on ${testDialect}`, async (t) => {
  if (testDialect !== 'mariadb') {
    t.pass('SQLite has one writer at a time and cannot deadlock; run with TEST_DATABASE_URL=mysql://… to test this');
    return;
  }
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const knex = db.knex;
  await knex.schema.createTable('retry_probe', (table) => {
    table.integer('id').primary();
    table.integer('hits').notNullable();
  });
  await knex('retry_probe').insert([{ id: 1, hits: 0 }, { id: 2, hits: 0 }]);

  // Each transaction locks its first row, waits until the other has locked its own, then wants the other's.
  const locked = new Set<string>();
  const bothLocked = async () => {
    while (locked.size < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  };
  const runs = { a: 0, b: 0 };
  const transfer = (name: 'a' | 'b', first: number, second: number) =>
    knex.transaction(async (trx: Knex.Transaction) => {
      runs[name]++;
      await trx('retry_probe').where({ id: first }).increment('hits', 1);
      locked.add(name);
      await bothLocked();
      await trx('retry_probe').where({ id: second }).increment('hits', 1);
    });
  const outcomes = await Promise.allSettled([transfer('a', 1, 2), transfer('b', 2, 1)]);

  t.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled']);
  t.is(runs.a + runs.b, 3, 'one of the two ran twice');
  const rows = (await knex('retry_probe').orderBy('id').select('id', 'hits')) as { id: number; hits: number }[];
  t.deepEqual(rows, [{ id: 1, hits: 2 }, { id: 2, hits: 2 }], 'each committed transaction counted once');
});
