import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Annotation versions and their review: every manual outline, AI proposal
 * and correction of a slide is kept with its author, method, model and
 * parent; one workflow row per slide holds where its review stands and which
 * version is released (the one researchers see); events record each step
 * with its comment, for history, rounds and time in review.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });

  await knex.schema.createTable('annotation_versions', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
    t.integer('parent_id').unsigned().nullable().references('id').inTable('annotation_versions').onDelete('SET NULL');
    /** manual, ai (a model's proposal) or corrected (a pathologist's correction of a proposal). */
    t.string('method', 16).notNullable();
    t.string('model', 200).nullable();
    t.integer('author_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    t.text('note').nullable();
    /** The Aperio XML, relative to the data folder. */
    t.string('file_path', 300).notNullable();
    t.string('sha256', 64).notNullable();
    t.integer('regions').notNullable();
    /** Sum of the positive shapes' areas minus their holes, level-0 pixels². */
    t.double('area').notNullable();
    at(t, 'created_at').notNullable();
    t.index(['slide_id', 'id']);
  });

  await knex.schema.createTable('annotation_workflows', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('slide_id').unsigned().primary().references('id').inTable('slides').onDelete('CASCADE');
    /** to-annotate, proposed, in-review, cross-check or released. */
    t.string('state', 16).notNullable();
    /** The version under work: the newest proposal, save or confirmation. */
    t.integer('current_version_id').unsigned().nullable().references('id').inTable('annotation_versions').onDelete('SET NULL');
    t.integer('released_version_id').unsigned().nullable().references('id').inTable('annotation_versions').onDelete('SET NULL');
    /** The pathologist who confirmed the current version; the cross-check must be somebody else. */
    t.integer('annotator_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    t.integer('checker_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    /** Review rounds: 1 from the first proposal, one more each time a cross-check returns it. */
    t.integer('round').notNullable().defaultTo(0);
    /** Bumped by every change: a save that names an older revision is refused (somebody else saved first). */
    t.integer('revision').notNullable().defaultTo(0);
    at(t, 'review_started_at').nullable();
    at(t, 'updated_at').notNullable();
    t.index(['state']);
  });

  await knex.schema.createTable('annotation_events', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
    t.integer('version_id').unsigned().nullable().references('id').inTable('annotation_versions').onDelete('SET NULL');
    t.integer('actor_id').unsigned().nullable().references('id').inTable('users').onDelete('SET NULL');
    /** baseline, propose, save, confirm, approve, return. */
    t.string('action', 16).notNullable();
    t.integer('round').notNullable();
    t.text('comment').nullable();
    at(t, 'created_at').notNullable();
    t.index(['slide_id', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['annotation_events', 'annotation_workflows', 'annotation_versions']) {
    await knex.schema.dropTableIfExists(table);
  }
}
