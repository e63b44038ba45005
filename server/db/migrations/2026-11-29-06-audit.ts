import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * The audit log and the news/user-guide pages.
 *
 * `audit_log` is append-only: the application has no path that updates or
 * deletes a row, and triggers make the database itself refuse UPDATE and
 * DELETE, on MariaDB (SIGNAL SQLSTATE '45000') and on SQLite (RAISE(ABORT)).
 * `actor_id` has no foreign key, so that deleting a user never rewrites
 * history. (TRUNCATE and DROP bypass triggers; they are not reachable from the
 * application and are the database administrator's to guard.)
 *
 * Each step checks the state it expects, so that a run cut short on MariaDB
 * (whose DDL does not roll back) can be repeated.
 */
export const APPEND_ONLY_MESSAGE = 'audit_log is append-only: rows cannot be changed or deleted';

const TRIGGERS = { update: 'audit_log_no_update', delete: 'audit_log_no_delete' } as const;

export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (!(await knex.schema.hasTable('audit_log'))) {
    await knex.schema.createTable('audit_log', (t) => {
      applyTableDefaults(t, dialect);
      t.bigIncrements('id').primary();
      t.datetime('at', { precision: 3 }).notNullable();
      /** Dotted: auth.login, dua.approved, page.created … */
      t.string('action', 64).notNullable();
      /** No foreign key on purpose: see above. */
      t.integer('actor_id').unsigned().nullable();
      t.string('subject_type', 32).nullable();
      t.string('subject_id', 128).nullable();
      /** IPv6 text is at most 45 characters. */
      t.string('ip', 45).nullable();
      /** JSON text. */
      t.text('details', 'mediumtext').nullable();
      t.index(['at'], 'audit_log_at_index');
      t.index(['action'], 'audit_log_action_index');
      t.index(['actor_id'], 'audit_log_actor_index');
      t.index(['subject_type', 'subject_id'], 'audit_log_subject_index');
    });
  }
  await serialisedOnMariadb(knex, dialect, async (conn) => {
    for (const [operation, name] of Object.entries(TRIGGERS)) {
      const event = operation.toUpperCase();
      // Both databases know CREATE TRIGGER IF NOT EXISTS (MariaDB since 10.1.4).
      await conn.raw(
        dialect === 'mariadb'
          ? `CREATE TRIGGER IF NOT EXISTS ${name} BEFORE ${event} ON audit_log FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${APPEND_ONLY_MESSAGE}'`
          : `CREATE TRIGGER IF NOT EXISTS ${name} BEFORE ${event} ON audit_log BEGIN SELECT RAISE(ABORT, '${APPEND_ONLY_MESSAGE}'); END`,
      );
    }
  });

  if (!(await knex.schema.hasTable('pages'))) {
    await knex.schema.createTable('pages', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      /** news or guide. */
      t.string('kind', 16).notNullable();
      t.string('slug', 100).notNullable();
      t.string('title', 200).notNullable();
      /** Markdown, at most 100 kB (checked by the service). */
      t.text('body', 'mediumtext').notNullable();
      /** Order of guide pages in the table of contents; ties by title. */
      t.integer('position').notNullable().defaultTo(0);
      /** Null while a draft. */
      t.datetime('published_at', { precision: 3 }).nullable();
      t.integer('author_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
      t.datetime('created_at', { precision: 3 }).notNullable();
      t.datetime('updated_at', { precision: 3 }).notNullable();
      t.unique(['kind', 'slug'], { indexName: 'pages_kind_slug_unique' });
      t.index(['kind', 'published_at'], 'pages_kind_published_index');
    });
  }
}

/**
 * MariaDB (seen on 10.11) backs up a table's `.TRG` file as `.TRG-` while it
 * adds a second trigger, and when several CREATE TRIGGER statements run on the
 * server at once it sometimes leaves that backup behind; the schema still
 * works, but DROP DATABASE then fails with errno 39 "Directory not empty".
 * Test suites migrate many databases at once, so trigger creation takes a
 * server-wide named lock. (Measured: 4 of 200 parallel runs left the file
 * without the lock, 0 of 200 with it.)
 */
export async function serialisedOnMariadb(knex: Knex, dialect: DialectName, work: (conn: Knex) => Promise<void>): Promise<void> {
  if (dialect !== 'mariadb') return work(knex);
  // The named lock belongs to a session: take it, work and release it on one connection.
  const locked = async (conn: Knex) => {
    await conn.raw(`SELECT GET_LOCK('slidebank.create_trigger', 60)`);
    try {
      await work(conn);
    } finally {
      await conn.raw(`SELECT RELEASE_LOCK('slidebank.create_trigger')`);
    }
  };
  return (knex as Knex.Transaction).isTransaction ? locked(knex) : knex.transaction(locked);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('pages');
  for (const name of Object.values(TRIGGERS)) await knex.raw(`DROP TRIGGER IF EXISTS ${name}`);
  await knex.schema.dropTableIfExists('audit_log');
}
