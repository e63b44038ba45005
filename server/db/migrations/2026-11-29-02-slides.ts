import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/** The catalog's slides: what the slide engine needs to find and describe a file. The ingest issue adds the diagnostic fields. */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (await knex.schema.hasTable('slides')) return;
  await knex.schema.createTable('slides', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    /** The nomenclature name, unique across the catalog. */
    t.string('name', 200).notNullable().unique();
    /** Relative to the slide store (config paths.slides), or absolute. */
    t.string('file_path', 1024).notNullable();
    t.bigInteger('file_size').notNullable();
    t.string('sha256', 64).nullable();
    t.string('vendor', 32).notNullable();
    t.integer('width').notNullable();
    t.integer('height').notNullable();
    t.integer('level_count').notNullable();
    t.double('mpp_x').nullable();
    t.double('mpp_y').nullable();
    t.double('objective_power').nullable();
    t.string('status', 16).notNullable().defaultTo('published');
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('updated_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('slides');
}
