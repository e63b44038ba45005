import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Data use agreements: the versioned texts admins publish, users'
 * applications and the decisions on them, annual usage reports that renew
 * an approval, partner institutions whose members are L3, and the reminders
 * already sent (so a job run twice sends nothing twice).
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });

  await knex.schema.createTable('dua_versions', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('version', 32).notNullable().unique();
    t.string('title', 200).notNullable();
    t.text('body').notNullable();
    /** Users approved under an older version must accept this one to keep downloading. */
    t.boolean('requires_reacceptance').notNullable().defaultTo(false);
    at(t, 'published_at').notNullable();
    t.integer('published_by').unsigned().nullable();
  });

  await knex.schema.createTable('dua_applications', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.integer('version_id').unsigned().notNullable().references('id').inTable('dua_versions');
    t.text('research_purpose').notNullable();
    t.string('project', 300).notNullable();
    t.string('principal_investigator', 200).notNullable();
    /** The signed PDF, relative to the data folder; optional. */
    t.string('signed_pdf_path', 300).nullable();
    /** submitted, approved, rejected or withdrawn; `administrative` approvals come from `user add --level L2`. */
    t.string('status', 16).notNullable();
    t.boolean('administrative').notNullable().defaultTo(false);
    t.integer('decided_by').unsigned().nullable();
    at(t, 'decided_at').nullable();
    t.text('decision_reason').nullable();
    /** Set on approval, moved on by each approved annual report. */
    at(t, 'valid_until').nullable();
    at(t, 'created_at').notNullable();
    at(t, 'updated_at').notNullable();
    t.index(['user_id', 'status']);
    t.index(['status', 'valid_until']);
  });

  await knex.schema.createTable('usage_reports', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('application_id').unsigned().notNullable().references('id').inTable('dua_applications').onDelete('CASCADE');
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('used_for').notNullable();
    t.text('results').notNullable();
    /** JSON: [{ title, doi }]. */
    t.text('publications').notNullable();
    /** submitted, approved or rejected. */
    t.string('status', 16).notNullable();
    t.integer('decided_by').unsigned().nullable();
    at(t, 'decided_at').nullable();
    t.text('decision_reason').nullable();
    at(t, 'created_at').notNullable();
    t.index(['status']);
    t.index(['application_id']);
  });

  await knex.schema.createTable('institutions', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.string('name', 200).notNullable().unique();
    /** The institutional agreement's reference. */
    t.string('agreement_reference', 200).notNullable();
    at(t, 'valid_from').notNullable();
    at(t, 'valid_until').notNullable();
    /** JSON: e-mail domains whose confirmed users are members, e.g. ["partner.example.org"]. */
    t.text('email_domains').notNullable();
    at(t, 'created_at').notNullable();
    at(t, 'updated_at').notNullable();
  });

  await knex.schema.createTable('institution_members', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('institution_id').unsigned().notNullable().references('id').inTable('institutions').onDelete('CASCADE');
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    at(t, 'added_at').notNullable();
    t.primary(['institution_id', 'user_id']);
  });

  await knex.schema.createTable('reminders_sent', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    /** dua or membership. */
    t.string('kind', 16).notNullable();
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    /** 30, 7, or 0 for the expiry notice. */
    t.integer('days_before').notNullable();
    /** The expiry the reminder was about: a renewal moves it, so the next cycle reminds again. */
    at(t, 'expires_at').notNullable();
    at(t, 'sent_at').notNullable();
    t.unique(['kind', 'user_id', 'days_before', 'expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['reminders_sent', 'institution_members', 'institutions', 'usage_reports', 'dua_applications', 'dua_versions']) {
    await knex.schema.dropTableIfExists(table);
  }
}
