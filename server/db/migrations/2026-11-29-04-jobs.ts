import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Scheduled jobs: a lease per job so that with several app nodes each run
 * happens on one node only, and a record of every run.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  await knex.schema.createTable('job_leases', (t) => {
    applyTableDefaults(t, dialect);
    t.string('job', 64).primary();
    t.string('holder', 128).notNullable();
    t.datetime('expires_at', { precision: 3 }).notNullable();
  });
  await knex.schema.createTable('job_runs', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('job', 64).notNullable();
    /** The clock the job ran against (differs from started_at under `cron run --now`). */
    t.datetime('as_of', { precision: 3 }).notNullable();
    t.datetime('started_at', { precision: 3 }).notNullable();
    t.datetime('finished_at', { precision: 3 }).nullable();
    /** running, succeeded, failed or skipped (another node held the lease). */
    t.string('status', 16).notNullable();
    t.string('trigger', 16).notNullable();
    t.text('summary').nullable();
    t.index(['job', 'started_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('job_runs');
  await knex.schema.dropTableIfExists('job_leases');
}
