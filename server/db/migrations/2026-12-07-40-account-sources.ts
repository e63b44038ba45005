import type { Knex } from 'knex';

/**
 * Where an account comes from: `local` (registered here, or made by an
 * administrator), `ldap` (the hospital's directory) or `oidc:<provider>`
 * (single sign-on), with the account's id there (the directory entry's DN, the
 * provider's issuer and subject). Directory and single sign-on accounts may
 * have their local password turned off by an administrator.
 */
export async function up(knex: Knex): Promise<void> {
  if (await knex.schema.hasColumn('users', 'source')) return;
  await knex.schema.alterTable('users', (t) => {
    t.string('source', 64).notNullable().defaultTo('local');
    t.string('external_id', 512).nullable();
    t.boolean('local_login_disabled').notNullable().defaultTo(false);
    t.unique(['source', 'external_id'], { indexName: 'users_source_external_id_unique' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropUnique(['source', 'external_id'], 'users_source_external_id_unique');
    t.dropColumn('local_login_disabled');
    t.dropColumn('external_id');
    t.dropColumn('source');
  });
}
