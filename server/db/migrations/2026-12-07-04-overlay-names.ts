import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Heat-map overlay names, claimed by their publisher: one row per (slide,
 * name), unique, so that two users can never both hold a name that every
 * viewer of the slide sees. A job claims its name when it is accepted and
 * the worker publishes only under a name its owner holds.
 *
 * Also the indexes the fair claim of the job queue reads per owner (their
 * running jobs, their last start).
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (!(await knex.schema.hasTable('overlay_names'))) {
    await knex.schema.createTable('overlay_names', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
      t.string('name', 64).notNullable();
      /** Null: the operator (the command line, or jobs the scheduler queued); a deleted user's names pass to the operator. */
      t.integer('owner_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
      /** The latest job that claimed the name; null for names the command line published. */
      t.integer('job_id').unsigned().nullable().references('id').inTable('queue_jobs').onDelete('SET NULL');
      t.datetime('claimed_at', { precision: 3 }).notNullable();
      /** Set once an overlay was published under the name: the claim then outlives its jobs. */
      t.datetime('published_at', { precision: 3 }).nullable();
      t.unique(['slide_id', 'name']);
      t.index(['job_id']);
    });
  }
  await knex.schema.alterTable('queue_jobs', (t) => {
    t.index(['owner_id', 'status'], 'queue_jobs_owner_status_index');
    t.index(['owner_id', 'started_at'], 'queue_jobs_owner_started_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('overlay_names');
  await knex.schema.alterTable('queue_jobs', (t) => {
    t.dropIndex(['owner_id', 'status'], 'queue_jobs_owner_status_index');
    t.dropIndex(['owner_id', 'started_at'], 'queue_jobs_owner_started_index');
  });
}
