import type { Knex } from 'knex';
import { applyTableDefaults, type DialectName } from '../dialect.js';

/**
 * Resumable uploads of challenge submissions (docs/challenges.md): a
 * participant announces an archive's name and size, sends it in chunks that
 * each continue at `received`, and submits it once complete. The bytes wait
 * in `<paths.data>/challenges/uploads/<id>.upload`; the state is here, so that
 * it survives a restart and every application node on the database sees it.
 * A lease (`lease_token`, `lease_until`) lets one request at a time write a
 * chunk or submit; `expires_at` moves on with each chunk, and the
 * `challenge-uploads` job removes the uploads left past it.
 */
export async function up(knex: Knex, dialect: DialectName): Promise<void> {
  if (await knex.schema.hasTable('challenge_uploads')) return;
  const at = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { precision: 3 });
  await knex.schema.createTable('challenge_uploads', (t) => {
    applyTableDefaults(t, dialect);
    /** Random, 24 hex digits: it names the file too. */
    t.string('id', 32).primary();
    t.integer('challenge_id').unsigned().notNullable().references('id').inTable('challenges').onDelete('CASCADE');
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('file_name', 200).notNullable();
    t.bigInteger('size').notNullable();
    /** Bytes stored so far, from the start: the next chunk starts here. */
    t.bigInteger('received').notNullable().defaultTo(0);
    t.string('lease_token', 32).nullable();
    at(t, 'lease_until').nullable();
    at(t, 'created_at').notNullable();
    at(t, 'updated_at').notNullable();
    at(t, 'expires_at').notNullable();
    t.index(['challenge_id', 'user_id']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('challenge_uploads');
}
