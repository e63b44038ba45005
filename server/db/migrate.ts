import os from 'node:os';
import type { Knex } from 'knex';
import { FatalError, ExitCode } from '../errors.js';
import type { Logger } from '../logging.js';
import type { Database } from './connect.js';
import { isTransactionConflict, retryIdempotent } from './transaction.js';
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
const LOCK_TABLE = `${TABLE}_lock`;
const LOCK_ROW = 1;
/** Slidebank's own migration lock: which node holds it, in one row (see `takeHolder`). */
const HOLDER_TABLE = `${TABLE}_holder`;

export interface MigrateOptions {
  log?: Logger;
  /** How long to wait for another node that holds the migration lock. */
  lockTimeoutMs?: number;
}

/**
 * Bring the schema up to date. Nodes that start together migrate once: one
 * takes the lock (Slidebank's, then knex's), the others wait for it to be
 * released and then find nothing left to do.
 */
export async function migrateToLatest(db: Database, options: MigrateOptions = {}): Promise<string[]> {
  await retryIdempotent(() => ensureMigrationTables(db.knex));
  const applied = await withLockWait(db, options, async () => {
    const [, names] = (await db.knex.migrate.latest({ migrationSource: sourceFor(db), tableName: TABLE })) as [number, string[]];
    return names;
  });
  if (applied.length > 0) options.log?.info({ migrations: applied }, `applied ${applied.length} migration(s)`);
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
export async function rollbackLatest(db: Database, options: MigrateOptions = {}): Promise<string[]> {
  await retryIdempotent(() => ensureMigrationTables(db.knex));
  const undone = await withLockWait(db, options, async () => {
    const [, names] = (await db.knex.migrate.rollback({ migrationSource: sourceFor(db), tableName: TABLE })) as [number, string[]];
    return names;
  });
  if (undone.length > 0) options.log?.info({ migrations: undone }, `rolled back ${undone.length} migration(s)`);
  return undone;
}

/** Whether a node holds the migration lock (or one died holding it). */
export async function migrationLockHeld(db: Database): Promise<boolean> {
  let held = false;
  if (await db.knex.schema.hasTable(LOCK_TABLE)) {
    const rows = (await db.knex(LOCK_TABLE).where('is_locked', 1).count({ n: '*' })) as { n: number | string }[];
    held ||= Number(rows[0]?.n ?? 0) > 0;
  }
  if (await db.knex.schema.hasTable(HOLDER_TABLE)) held ||= (await db.knex(HOLDER_TABLE).whereNotNull('holder').first('id')) !== undefined;
  return held;
}

/** Release a lock left by a node that died while migrating. Only for operators who know no node is migrating. */
export async function releaseMigrationLock(db: Database): Promise<boolean> {
  await ensureMigrationTables(db.knex);
  const released = await db.knex(LOCK_TABLE).where('is_locked', 1).update({ is_locked: 0 });
  const freed = await db.knex(HOLDER_TABLE).whereNotNull('holder').update({ holder: null, taken_at: null });
  return released + freed > 0;
}

/**
 * Create knex's bookkeeping tables ourselves before knex does. knex checks
 * for its lock row and inserts one when there is none; two nodes doing that
 * at once leave two rows, and from then on every lock attempt fails because
 * it expects to flip exactly one. A fixed primary key makes the row unique.
 */
async function ensureMigrationTables(knex: Knex): Promise<void> {
  await createTableOnce(knex, TABLE, (t) => {
    t.increments();
    t.string('name');
    t.integer('batch');
    t.timestamp('migration_time');
  });
  await createTableOnce(knex, LOCK_TABLE, (t) => {
    t.increments('index').primary();
    t.integer('is_locked');
  });
  await knex(LOCK_TABLE).insert({ index: LOCK_ROW, is_locked: 0 }).onConflict('index').ignore();
  // A database set up by the old race has extra rows; nobody can hold a lock on it, so dropping them is safe.
  await knex(LOCK_TABLE).where('index', '<>', LOCK_ROW).del();
  await createTableOnce(knex, HOLDER_TABLE, (t) => {
    t.integer('id').primary();
    t.string('holder', 200).nullable();
    t.string('taken_at', 32).nullable();
  });
  await knex(HOLDER_TABLE).insert({ id: LOCK_ROW, holder: null, taken_at: null }).onConflict('id').ignore();
}

/**
 * Take Slidebank's migration lock with one statement that commits on its
 * own: on a Galera cluster a commit is certified against every node's before
 * it returns, so of two nodes taking the lock at once, one gets it and the
 * other a conflict. knex's lock alone is not enough there: it is taken inside
 * the transaction the migrations run in, which the first DDL statement
 * commits, so two nodes could both believe they held it, and the loser's
 * error handling then released the winner's lock mid-way.
 */
async function takeHolder(knex: Knex, holder: string): Promise<boolean> {
  const taken = await knex(HOLDER_TABLE).where({ id: LOCK_ROW }).whereNull('holder').update({ holder, taken_at: new Date().toISOString() });
  return Number(taken) === 1;
}

async function releaseHolder(knex: Knex, holder: string): Promise<void> {
  await knex(HOLDER_TABLE).where({ id: LOCK_ROW, holder }).update({ holder: null, taken_at: null });
}

/** Who holds the lock: this host and process, for an operator looking at a lock left behind. */
const HOLDER = `${os.hostname()} pid ${process.pid}`;

async function createTableOnce(knex: Knex, name: string, build: (t: Knex.CreateTableBuilder) => void): Promise<void> {
  if (await knex.schema.hasTable(name)) return;
  try {
    await knex.schema.createTable(name, build);
  } catch (error) {
    if (!(await knex.schema.hasTable(name))) throw error; // another node created it between our check and our create
  }
}

const DEFAULT_LOCK_TIMEOUT_MS = 120_000;

async function withLockWait<T>(db: Database, options: MigrateOptions, run: () => Promise<T>): Promise<T> {
  const timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let delayMs = 100;
  let told = false;
  for (;;) {
    try {
      if (!(await takeHolder(db.knex, HOLDER))) throw Object.assign(new Error('the migration lock is held by another node'), { name: 'MigrationLocked' });
      try {
        return await run();
      } finally {
        await retryIdempotent(() => releaseHolder(db.knex, HOLDER));
      }
    } catch (error) {
      // On Galera another node's DDL, replicated in total order, aborts this node's reads of the schema with a
      // deadlock error; like a held lock, that means another node is migrating: wait and look again.
      if (!(error instanceof Error) || (error.name !== 'MigrationLocked' && !isTransactionConflict(error))) throw error;
      if (Date.now() >= deadline) {
        throw new FatalError(
          ExitCode.database,
          `the migration lock on ${db.description} has been held for over ${Math.round(timeoutMs / 1000)} s. ` +
            'If no other node is migrating (one may have died mid-way), release it with `slidebank migrate --unlock` and start again.',
        );
      }
      if (!told) options.log?.info('another node is migrating the database; waiting for it to finish');
      told = true;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 2000);
    }
  }
}
