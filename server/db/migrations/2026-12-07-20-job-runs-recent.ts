import type { Knex } from 'knex';

/**
 * The administrators' overview reads each job's last runs by id, newest
 * first. The index on (job, started_at) found a job's runs but not in that
 * order, so every request read and sorted all runs of every job; with
 * (job, id) the database reads the few rows it returns.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('job_runs', (t) => {
    t.index(['job', 'id'], 'job_runs_job_id_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('job_runs', (t) => {
    t.dropIndex(['job', 'id'], 'job_runs_job_id_index');
  });
}
