import { createHash } from 'node:crypto';
import type { Database } from '../../server/db/index.js';

/** knex's bookkeeping, whose rows carry the time each migration ran. */
const BOOKKEEPING = new Set(['knex_migrations', 'knex_migrations_lock', 'knex_migrations_holder']);

/**
 * The schema of a database as text, the same wherever it is made: every
 * table's definition with its indexes and foreign keys, every trigger, and the
 * rows the migrations put in (knex's bookkeeping aside).
 */
export async function describeSchema(db: Database): Promise<string> {
  const parts: string[] = [];
  const tables: string[] = [];
  if (db.dialect === 'sqlite') {
    const objects = (await db.knex.raw(
      `SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY type, name`,
    )) as { type: string; name: string; sql: string }[];
    for (const object of objects) {
      parts.push(`${object.type} ${object.name}\n${object.sql.replace(/\s+/g, ' ')}`);
      if (object.type === 'table') tables.push(object.name);
    }
  } else {
    const rows = async (sql: string) => ((await db.knex.raw(sql)) as [Record<string, unknown>[]])[0];
    for (const row of await rows(`SHOW FULL TABLES`)) {
      const [name, type] = Object.values(row).map(String) as [string, string];
      if (type !== 'BASE TABLE') parts.push(`${type} ${name}`);
      else tables.push(name);
    }
    tables.sort();
    for (const name of tables) parts.push(`table ${name}\n${String((await rows(`SHOW CREATE TABLE \`${name}\``))[0]!['Create Table'])}`);
    for (const trigger of await rows('SHOW TRIGGERS')) {
      const statement = String((await rows(`SHOW CREATE TRIGGER \`${String(trigger.Trigger)}\``))[0]!['SQL Original Statement']);
      parts.push(`trigger ${String(trigger.Trigger)}\n${statement.replace(/ DEFINER=\S+/, '')}`);
    }
  }
  for (const name of tables.filter((t) => !BOOKKEEPING.has(t))) {
    const rows = (await db.knex(name).select()) as Record<string, unknown>[];
    if (rows.length === 0) continue;
    const lines = rows.map((row) => JSON.stringify(row)).sort();
    parts.push(`rows of ${name}\n${lines.join('\n')}`);
  }
  return parts.join('\n\n');
}

/** The SHA-256 of `describeSchema`, shortened for pinning in a test. */
export async function schemaHash(db: Database): Promise<string> {
  return createHash('sha256').update(await describeSchema(db)).digest('hex').slice(0, 16);
}
