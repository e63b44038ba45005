import type { Knex } from 'knex';
import type { DialectName } from '../dialect.js';

/** Placeholder: filled in by the work that owns it before it is released. */
export async function up(_knex: Knex, _dialect: DialectName): Promise<void> {}

export async function down(_knex: Knex): Promise<void> {}
