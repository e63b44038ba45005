import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Datasets and their releases (docs/exchange.md): a dataset is a named working set of
 * slides; a release freezes it under a version, with every slide's file name,
 * size, SHA-256, annotation checksum and metadata as they were, so an export
 * of that version is the same bag next year. Withdrawals are recorded with
 * their reason. On a mirror, `dataset_imports` and `slide_provenance` say
 * which site, dataset and version each imported slide came from.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });
  if (await knex.schema.hasTable('datasets')) return;

  await knex.schema.createTable('datasets', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('name', 100).notNullable().unique();
    t.text('description').nullable();
    at(t, 'created_at').notNullable();
  });

  /** The working set the next release is made from. */
  await knex.schema.createTable('dataset_slides', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('dataset_id').unsigned().notNullable().references('id').inTable('datasets').onDelete('CASCADE');
    t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
    at(t, 'added_at').notNullable();
    t.primary(['dataset_id', 'slide_id']);
  });

  /** Never updated once written. */
  await knex.schema.createTable('dataset_releases', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('dataset_id').unsigned().notNullable().references('id').inTable('datasets');
    t.string('version', 50).notNullable();
    at(t, 'created_at').notNullable();
    /** Who released it: an operator's name or e-mail (the CLI has no session). */
    t.string('created_by', 200).notNullable();
    /** JSON: the released slides (see datasets/release.ts). */
    t.text('snapshot', 'longtext').notNullable();
    t.unique(['dataset_id', 'version']);
  });

  await knex.schema.createTable('dataset_withdrawals', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('dataset_id').unsigned().notNullable().references('id').inTable('datasets');
    t.integer('slide_id').unsigned().notNullable();
    t.string('slide_name', 200).notNullable();
    /** The last release that held the slide; null when it was withdrawn before any release. */
    t.integer('release_id').unsigned().nullable().references('id').inTable('dataset_releases');
    t.text('reason').notNullable();
    at(t, 'created_at').notNullable();
    t.index(['dataset_id', 'slide_id']);
  });

  /** Releases imported from other sites, once each. */
  await knex.schema.createTable('dataset_imports', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('source_site', 200).notNullable();
    t.string('source_key', 64).notNullable();
    t.string('dataset', 100).notNullable();
    t.string('version', 50).notNullable();
    t.string('since_version', 50).nullable();
    at(t, 'imported_at').notNullable();
    /** JSON: slides added, already present, withdrawn. */
    t.text('summary').notNullable();
    t.unique(['source_site', 'dataset', 'version']);
  });

  await knex.schema.createTable('slide_provenance', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('slide_id').unsigned().primary().references('id').inTable('slides').onDelete('CASCADE');
    t.string('source_site', 200).notNullable();
    t.string('dataset', 100).notNullable();
    t.string('version', 50).notNullable();
    at(t, 'imported_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['slide_provenance', 'dataset_imports', 'dataset_withdrawals', 'dataset_releases', 'dataset_slides', 'datasets']) {
    await knex.schema.dropTableIfExists(table);
  }
}
