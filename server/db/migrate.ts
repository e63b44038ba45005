import type { Knex } from 'knex';
import type { Logger } from '../logging.js';
import type { Database } from './connect.js';
import { migrations, type Migration } from './migrations/index.js';

function sourceFor(db: Database): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => [...migrations],
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => ({
      up: (knex: Knex) => migration.up(knex, db.dialect),
      down: (knex: Knex) => migration.down(knex, db.dialect),
    }),
  };
}

const TABLE = 'knex_migrations';

/**
 * Bring the schema up to date. knex holds a lock row while it works, so app
 * nodes that start together migrate once.
 */
export async function migrateToLatest(db: Database, log?: Logger): Promise<string[]> {
  const [, applied] = (await db.knex.migrate.latest({ migrationSource: sourceFor(db), tableName: TABLE })) as [number, string[]];
  if (applied.length > 0) log?.info({ migrations: applied }, `applied ${applied.length} migration(s)`);
  return applied;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

export async function migrationStatus(db: Database): Promise<MigrationStatus> {
  const [done, pending] = (await db.knex.migrate.list({ migrationSource: sourceFor(db), tableName: TABLE })) as [
    { name: string }[],
    Migration[],
  ];
  return { applied: done.map((m) => m.name), pending: pending.map((m) => m.name) };
}

/** Undo the most recent batch (for operators rolling back a release). */
export async function rollbackLatest(db: Database, log?: Logger): Promise<string[]> {
  const [, undone] = (await db.knex.migrate.rollback({ migrationSource: sourceFor(db), tableName: TABLE })) as [number, string[]];
  if (undone.length > 0) log?.info({ migrations: undone }, `rolled back ${undone.length} migration(s)`);
  return undone;
}
