import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Agreement texts an administrator prepares before publishing them (drafts
 * are never shown to researchers); on published versions, whether the text
 * is the one Slidebank installs on its first start and when an administrator
 * reviewed it; on applications, the revocation of an approval.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });

  await knex.schema.createTable('dua_drafts', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('title', 200).notNullable();
    t.text('body').notNullable();
    t.integer('created_by').unsigned().nullable();
    t.integer('updated_by').unsigned().nullable();
    at(t, 'created_at').notNullable();
    at(t, 'updated_at').notNullable();
  });

  await knex.schema.alterTable('dua_versions', (t) => {
    /** The text installed on the first start, in force until an administrator reviews it or publishes another. */
    t.boolean('is_default').notNullable().defaultTo(false);
    t.datetime('reviewed_at', { precision: 3 }).nullable();
    t.integer('reviewed_by').unsigned().nullable();
  });

  await knex.schema.alterTable('dua_applications', (t) => {
    t.datetime('revoked_at', { precision: 3 }).nullable();
    t.integer('revoked_by').unsigned().nullable();
    t.text('revocation_reason').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('dua_drafts');
  await knex.schema.alterTable('dua_versions', (t) => {
    t.dropColumn('is_default');
    t.dropColumn('reviewed_at');
    t.dropColumn('reviewed_by');
  });
  await knex.schema.alterTable('dua_applications', (t) => {
    t.dropColumn('revoked_at');
    t.dropColumn('revoked_by');
    t.dropColumn('revocation_reason');
  });
}
