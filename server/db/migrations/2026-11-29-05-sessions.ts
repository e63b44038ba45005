import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Sessions, one-time links, personal access tokens and login throttling; and
 * on users, when their level lapses and when they last changed their password
 * or logged in.
 *
 * Every secret is stored as its SHA-256: a copy of the database does not let
 * anyone take over a session, follow a mailed link or use a token.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const userColumns: [string, (t: Knex.AlterTableBuilder) => void][] = [
    /** When the level falls back to L1 (an L2 from a DUA or `user add --level L2`); null: it does not lapse. */
    ['level_expires_at', (t) => t.datetime('level_expires_at', { precision: 3 }).nullable()],
    ['password_changed_at', (t) => t.datetime('password_changed_at', { precision: 3 }).nullable()],
    ['last_login_at', (t) => t.datetime('last_login_at', { precision: 3 }).nullable()],
  ];
  for (const [column, add] of userColumns) {
    if (!(await knex.schema.hasColumn('users', column))) await knex.schema.alterTable('users', add);
  }

  if (!(await knex.schema.hasTable('sessions'))) {
    await knex.schema.createTable('sessions', (t) => {
      applyTableDefaults(t, dialect);
      /** SHA-256 (hex) of the id in the session cookie. */
      t.string('id', 64).primary();
      /** The logged-in user, so that a password reset or a disabled account ends every session. */
      t.integer('user_id').unsigned().nullable().references('id').inTable('users').onDelete('CASCADE');
      /** The session's JSON. */
      t.text('data').notNullable();
      t.datetime('expires_at', { precision: 3 }).notNullable();
      t.datetime('created_at', { precision: 3 }).notNullable();
      t.datetime('updated_at', { precision: 3 }).notNullable();
      t.index(['expires_at']);
      t.index(['user_id']);
    });
  }

  if (!(await knex.schema.hasTable('auth_tokens'))) {
    await knex.schema.createTable('auth_tokens', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
      /** confirm_email or reset_password. */
      t.string('purpose', 32).notNullable();
      /** SHA-256 (hex) of the secret in the mailed link. */
      t.string('token_hash', 64).notNullable().unique();
      t.datetime('created_at', { precision: 3 }).notNullable();
      t.datetime('expires_at', { precision: 3 }).notNullable();
      /** Set when the link is followed: each works once. */
      t.datetime('used_at', { precision: 3 }).nullable();
      t.index(['user_id', 'purpose']);
      t.index(['expires_at']);
    });
  }

  if (!(await knex.schema.hasTable('access_tokens'))) {
    await knex.schema.createTable('access_tokens', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
      t.string('name', 100).notNullable();
      /** The first characters of the token, shown in lists so that its owner can tell tokens apart. */
      t.string('prefix', 16).notNullable();
      /** SHA-256 (hex) of the whole token. */
      t.string('token_hash', 64).notNullable().unique();
      /** all: whatever the owner may do; read: GET and HEAD only. */
      t.string('scope', 16).notNullable().defaultTo('all');
      t.datetime('created_at', { precision: 3 }).notNullable();
      t.datetime('last_used_at', { precision: 3 }).nullable();
      t.datetime('expires_at', { precision: 3 }).nullable();
      t.datetime('revoked_at', { precision: 3 }).nullable();
      t.index(['user_id']);
    });
  }

  if (!(await knex.schema.hasTable('login_throttle'))) {
    await knex.schema.createTable('login_throttle', (t) => {
      applyTableDefaults(t, dialect);
      /** `email:` or `address:` and the SHA-256 of the lower-cased e-mail or the client address. */
      t.string('key', 80).primary();
      t.integer('failures').notNullable();
      t.datetime('window_started_at', { precision: 3 }).notNullable();
      t.datetime('locked_until', { precision: 3 }).nullable();
      t.index(['window_started_at']);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('login_throttle');
  await knex.schema.dropTableIfExists('access_tokens');
  await knex.schema.dropTableIfExists('auth_tokens');
  await knex.schema.dropTableIfExists('sessions');
  for (const column of ['last_login_at', 'password_changed_at', 'level_expires_at']) {
    if (await knex.schema.hasColumn('users', column)) await knex.schema.alterTable('users', (t) => t.dropColumn(column));
  }
}
