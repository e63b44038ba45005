import test from 'ava';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

/**
 * Galera replicates only InnoDB tables, and a table without a primary key
 * badly (each row change is found by scanning; deletes may diverge between
 * nodes). Every table the migrations make, knex's own bookkeeping tables
 * included, has a primary key and, on MariaDB, is InnoDB (docs/scaling.md).
 * A unique key of NOT NULL columns counts: MariaDB takes the first one as
 * the table's primary key (DESCRIBE shows PRI) and InnoDB clusters by it.
 */

test(`every table has a primary key (and is InnoDB on MariaDB) on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const knex = db.knex;
  let tables: { name: string; engine: string | null; keyed: number }[];
  if (testDialect === 'mariadb') {
    const [rows] = (await knex.raw(
      `SELECT t.table_name AS name, t.engine AS engine,
              (SELECT COUNT(*) FROM information_schema.columns c
                WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_key = 'PRI') AS keyed
         FROM information_schema.tables t
        WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'`,
    )) as [{ name: string; engine: string; keyed: number }[]];
    tables = rows;
  } else {
    const rows = (await knex.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")) as { name: string }[];
    tables = [];
    for (const { name } of rows) {
      const columns = (await knex.raw(`PRAGMA table_info(\`${name}\`)`)) as { name: string; pk: number; notnull: number }[];
      let keyed = columns.some((c) => c.pk > 0);
      for (const index of (await knex.raw(`PRAGMA index_list(\`${name}\`)`)) as { name: string; unique: number }[]) {
        if (keyed || !index.unique) continue;
        const indexed = (await knex.raw(`PRAGMA index_info(\`${index.name}\`)`)) as { name: string }[];
        keyed = indexed.every((column) => columns.find((c) => c.name === column.name)?.notnull === 1);
      }
      tables.push({ name, engine: null, keyed: keyed ? 1 : 0 });
    }
  }
  const names = tables.map((table) => table.name);
  t.true(names.includes('knex_migrations') && names.includes('knex_migrations_lock'), names.join(', '));
  t.deepEqual(tables.filter((table) => Number(table.keyed) === 0).map((table) => table.name), [], 'tables without a primary key');
  if (testDialect === 'mariadb') t.deepEqual(tables.filter((table) => table.engine !== 'InnoDB').map((table) => `${table.name}: ${table.engine}`), [], 'tables not in InnoDB');
});
