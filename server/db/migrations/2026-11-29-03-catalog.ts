import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * The searchable catalog (diagnostic fields, annotation summary, thumbnails)
 * and the ingest records curators read: what was published or quarantined,
 * why, and the de-identification report.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  await knex.schema.alterTable('slides', (t) => {
    t.string('organ', 32).nullable();
    t.string('histology', 32).nullable();
    t.string('stain', 32).nullable();
    t.string('marker', 32).nullable();
    t.string('differentiation', 32).nullable();
    t.text('pathology_info').nullable();
    t.string('annotation_method', 32).nullable();
    t.string('dataset', 100).nullable();
    /** SHA-256 of the original as it arrived, so that a second ingest of it is recognised. */
    t.string('original_sha256', 64).nullable().unique();
    /** The scrubbed Aperio XML, relative to the slide store; null when the slide came without one. */
    t.string('annotation_path', 1024).nullable();
    /** JSON: layers (id, name, colour, regions, holes, area in mm²), region count, tumour area. */
    t.text('annotation_summary').nullable();
    t.index(['organ', 'histology']);
    t.index(['stain', 'marker']);
    t.index(['dataset']);
    t.index(['status']);
  });

  await knex.schema.createTable('ingest_records', (t) => {
    applyTableDefaults(t, dialect);
    t.increments('id').primary();
    /** published, quarantined, duplicate or refused. */
    t.string('outcome', 16).notNullable();
    t.text('reason').nullable();
    t.integer('slide_id').unsigned().nullable().references('id').inTable('slides').onDelete('SET NULL');
    t.string('original_sha256', 64).nullable();
    /** Where a quarantined original waits for a curator (its own name is kept there, never beside a published slide). */
    t.string('quarantine_path', 1024).nullable();
    /** JSON: what was removed and what was checked. */
    t.text('report').nullable();
    /** cli, inbox or demo. */
    t.string('source', 16).notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.index(['outcome', 'created_at']);
    t.index(['slide_id']);
  });

  /** Only written when an operator configures ingest.linkageKey. */
  await knex.schema.createTable('slide_linkage', (t) => {
    applyTableDefaults(t, dialect);
    t.integer('slide_id').unsigned().primary().references('id').inTable('slides').onDelete('CASCADE');
    /** AES-256-GCM: base64 of iv ‖ tag ‖ ciphertext of the original file name. */
    t.text('original_name_sealed').notNullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('slide_linkage');
  await knex.schema.dropTableIfExists('ingest_records');
  await knex.schema.alterTable('slides', (t) => {
    t.dropIndex(['organ', 'histology']);
    t.dropIndex(['stain', 'marker']);
    t.dropIndex(['dataset']);
    t.dropIndex(['status']);
    t.dropUnique(['original_sha256']);
    for (const column of [
      'organ',
      'histology',
      'stain',
      'marker',
      'differentiation',
      'pathology_info',
      'annotation_method',
      'dataset',
      'original_sha256',
      'annotation_path',
      'annotation_summary',
    ]) {
      t.dropColumn(column);
    }
  });
}
