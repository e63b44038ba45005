import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * The agreement figures of each confirmation, stored when it is made, so
 * that the annotation statistics are one query instead of a comparison per
 * confirmation on every request. One row per confirm event that has an AI
 * proposal of its slide before it (the proposal it is compared with); the
 * figures stay null until the comparison has run.
 *
 * Confirmations made before this migration get their rows here, with null
 * figures: comparing needs the version files and the rasteriser, which a
 * migration does not run. The review service fills them in on worker
 * threads, once, the first time the statistics are asked for; until then the
 * statistics count them as pending.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (!(await knex.schema.hasTable('annotation_comparisons'))) {
    await knex.schema.createTable('annotation_comparisons', (t) => {
      applyTableDefaults(t, dialect);
      t.increments('id').primary();
      t.integer('slide_id').unsigned().notNullable().references('id').inTable('slides').onDelete('CASCADE');
      t.integer('confirm_event_id').unsigned().notNullable().unique().references('id').inTable('annotation_events').onDelete('CASCADE');
      t.integer('proposal_version_id').unsigned().notNullable().references('id').inTable('annotation_versions').onDelete('CASCADE');
      t.integer('confirmed_version_id').unsigned().notNullable().references('id').inTable('annotation_versions').onDelete('CASCADE');
      t.integer('round').notNullable();
      /** Mean IoU of background and tumour, and the tumour IoU; null until compared. */
      t.double('miou').nullable();
      t.double('tumour_iou').nullable();
      /** Level-0 pixels per cell of the grid the two were rasterised on. */
      t.integer('downsample').nullable();
      t.datetime('compared_at', { precision: 3 }).nullable();
      /** Why the comparison could not be made (a version file unreadable); such a row is not retried and not counted. */
      t.string('failure', 500).nullable();
      t.index(['slide_id']);
    });
  }
  await addExistingConfirmations(knex);
}

/** A row with no figures for every confirmation already made, paired as the statistics always paired them. */
async function addExistingConfirmations(knex: Knex): Promise<void> {
  const events = (await knex('annotation_events as e')
    .leftJoin('annotation_versions as v', 'v.id', 'e.version_id')
    .whereIn('e.action', ['propose', 'confirm'])
    .whereNotNull('e.version_id')
    .orderBy('e.id', 'asc')
    .select('e.id', 'e.slide_id', 'e.version_id', 'e.action', 'e.round', 'v.method')) as { id: number; slide_id: number; version_id: number; action: string; round: number; method: string | null }[];
  const done = new Set(((await knex('annotation_comparisons').select('confirm_event_id')) as { confirm_event_id: number }[]).map((r) => Number(r.confirm_event_id)));
  // A confirmation is compared with the newest AI proposal of its slide made before it.
  const lastProposal = new Map<number, number>();
  const rows: Record<string, number>[] = [];
  for (const event of events) {
    const slide = Number(event.slide_id);
    if (event.action === 'propose') {
      if (event.method === 'ai') lastProposal.set(slide, Number(event.version_id));
      continue;
    }
    const proposal = lastProposal.get(slide);
    if (proposal === undefined || done.has(Number(event.id))) continue;
    rows.push({ slide_id: slide, confirm_event_id: Number(event.id), proposal_version_id: proposal, confirmed_version_id: Number(event.version_id), round: Number(event.round) });
  }
  for (let i = 0; i < rows.length; i += 500) await knex('annotation_comparisons').insert(rows.slice(i, i + 500));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('annotation_comparisons');
}
