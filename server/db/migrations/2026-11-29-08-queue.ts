import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * The toolbox job queue: one row per submitted job, claimed by worker
 * processes under a lease that a heartbeat renews. JSON (parameters, results)
 * is kept as text, which both databases store and compare alike.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (await knex.schema.hasTable('queue_jobs')) return;
  await knex.schema.createTable('queue_jobs', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    /** tissue-mask, xml-masks, patches, stitch or heatmap. */
    t.string('type', 32).notNullable();
    t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
    t.text('parameters').notNullable();
    /** queued, running, succeeded, failed or cancelled. */
    t.string('status', 16).notNullable();
    t.double('progress').notNullable().defaultTo(0);
    t.string('message', 500).nullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable();
    /** A queued job is not claimed before this (retry back-off). */
    t.datetime('run_after', { precision: 3 }).notNullable();
    t.string('lease_owner', 128).nullable();
    t.datetime('lease_expires_at', { precision: 3 }).nullable();
    t.boolean('cancel_requested').notNullable().defaultTo(false);
    t.text('error').nullable();
    /** The last lines of the job's log, bounded by the worker. */
    t.text('log').nullable();
    /** [{name, size}] of the files under <paths.data>/results/<id>/, once succeeded. */
    t.text('results').nullable();
    /** Null for jobs the scheduler submitted. */
    t.integer('owner_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.datetime('started_at', { precision: 3 }).nullable();
    t.datetime('finished_at', { precision: 3 }).nullable();
    t.index(['status', 'run_after']);
    t.index(['slide_id', 'type']);
    t.index(['owner_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('queue_jobs');
}
