import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Challenges on the platform's own data (docs/challenges.md): a challenge
 * names a training and a test release of datasets; the test release's
 * annotations are the hidden truth until `truth_published_at`. Phases open
 * and close submissions; participants accept the rules (with their version),
 * form teams of a bounded size (one team per person and challenge), and
 * submit archives that are validated, queued, scored and ranked per phase.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });
  if (await knex.schema.hasTable('challenges')) return;

  await knex.schema.createTable('challenges', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('name', 100).notNullable().unique();
    t.string('title', 200).notNullable();
    t.text('description').notNullable();
    /** Markdown; every change raises rules_version, and participants accept a version. */
    t.text('rules').notNullable();
    t.integer('rules_version').notNullable();
    /** segmentation, tumour-burden or classification. */
    t.string('task', 32).notNullable();
    t.integer('train_release_id').unsigned().notNullable().references('id').inTable('dataset_releases');
    t.integer('test_release_id').unsigned().notNullable().references('id').inTable('dataset_releases');
    t.integer('mask_downsample').notNullable();
    t.double('threshold').notNullable();
    t.integer('daily_limit').notNullable();
    t.integer('team_size').notNullable();
    /** best or latest: which submission of a team a leaderboard ranks. */
    t.string('leaderboard_mode', 16).notNullable();
    /** Null while the test release's annotations are hidden. */
    at(t, 'truth_published_at').nullable();
    at(t, 'created_at').notNullable();
    at(t, 'updated_at').notNullable();
    t.index(['test_release_id']);
  });

  await knex.schema.createTable('challenge_phases', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.string('name', 50).notNullable();
    at(t, 'opens_at').notNullable();
    at(t, 'closes_at').notNullable();
    /** JSON list of slide ids of the test release; null: all of them. */
    t.text('slides').nullable();
    /** Null: the challenge's daily limit. */
    t.integer('daily_limit').nullable();
    /** public: the leaderboard is shown while the phase is open; hidden: only after it closed. */
    t.string('leaderboard', 16).notNullable();
    t.unique(['challenge_id', 'name']);
  });

  await knex.schema.createTable('challenge_participants', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.integer('rules_version').notNullable();
    at(t, 'accepted_at').notNullable();
    t.primary(['challenge_id', 'user_id']);
  });

  await knex.schema.createTable('challenge_teams', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.string('name', 100).notNullable();
    t.integer('created_by').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    at(t, 'created_at').notNullable();
    t.unique(['challenge_id', 'name']);
  });

  /** One team per person and challenge: the unique key says so, whatever arrives at once. */
  await knex.schema.createTable('challenge_team_members', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('team_id').unsigned().notNullable().references('id').inTable('challenge_teams').onDelete('CASCADE');
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    at(t, 'joined_at').notNullable();
    t.primary(['challenge_id', 'user_id']);
    t.index(['team_id']);
  });

  await knex.schema.createTable('challenge_invitations', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('team_id').unsigned().notNullable().references('id').inTable('challenge_teams').onDelete('CASCADE');
    t.string('email', 254).notNullable();
    t.integer('invited_by').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    at(t, 'created_at').notNullable();
    at(t, 'accepted_at').nullable();
    t.unique(['team_id', 'email']);
  });

  await knex.schema.createTable('challenge_submissions', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.integer('phase_id').unsigned().notNullable().references('id').inTable('challenge_phases').onDelete('CASCADE');
    t.integer('team_id').unsigned().notNullable().references('id').inTable('challenge_teams').onDelete('CASCADE');
    t.integer('user_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    t.string('file_name', 200).notNullable();
    t.bigInteger('size').notNullable();
    /** invalid (refused by validation, not counted), queued, scoring, scored or failed. */
    t.string('status', 16).notNullable();
    /** JSON: the validation report. */
    t.text('report', 'longtext').nullable();
    t.double('progress').notNullable().defaultTo(0);
    t.double('score').nullable();
    /** JSON lists and maps of the scorer's figures. */
    t.text('tie_breakers').nullable();
    t.text('metrics').nullable();
    t.text('error').nullable();
    /** Submitted after the phase closed: scored and shown apart. */
    t.boolean('late').notNullable().defaultTo(false);
    at(t, 'created_at').notNullable();
    at(t, 'scored_at').nullable();
    /** A scorer holds a submission it scores until then. */
    at(t, 'lease_expires_at').nullable();
    t.index(['phase_id', 'team_id', 'created_at']);
    t.index(['status']);
  });

  await knex.schema.createTable('challenge_results', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('submission_id').unsigned().notNullable().references('id').inTable('challenge_submissions').onDelete('CASCADE');
    t.string('slide', 200).notNullable();
    t.double('score').notNullable();
    t.text('metrics').notNullable();
    t.primary(['submission_id', 'slide']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'challenge_results',
    'challenge_submissions',
    'challenge_invitations',
    'challenge_team_members',
    'challenge_teams',
    'challenge_participants',
    'challenge_phases',
    'challenges',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
