import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/** Accounts and staff roles: the minimum the first administrator needs; later migrations build on it. */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (!(await knex.schema.hasTable('users'))) {
    await knex.schema.createTable('users', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      t.string('email', 254).notNullable().unique();
      t.string('name', 200).notNullable().defaultTo('');
      t.string('institution', 200).notNullable().defaultTo('');
      t.string('password_hash', 255).nullable();
      t.string('level', 2).notNullable().defaultTo('L0');
      t.datetime('email_confirmed_at', { precision: 3 }).nullable();
      t.datetime('disabled_at', { precision: 3 }).nullable();
      t.datetime('created_at', { precision: 3 }).notNullable();
      t.datetime('updated_at', { precision: 3 }).notNullable();
    });
  }
  if (!(await knex.schema.hasTable('user_roles'))) {
    await knex.schema.createTable('user_roles', (t) => {
      applyTableDefaults(t, dialect);
      t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
      t.string('role', 32).notNullable();
      t.primary(['user_id', 'role']);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('user_roles');
  await knex.schema.dropTableIfExists('users');
}
