import type { Knex } from 'knex';

/**
 * Accounts whose password was chosen by somebody else (the initial
 * administrator's printed one): the portal asks for a new password before
 * anything else, and changing it clears the mark.
 */
export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn('users', 'must_change_password')) return;
  await knex.schema.alterTable('users', (t) => {
    t.boolean('must_change_password').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('must_change_password');
  });
}
