import type { Knex } from 'knex';

/**
 * An open database transaction, as a service hands it from one repository
 * call to the next so that their writes (and the audit record of them)
 * commit or roll back together. Repositories open it; services only pass it
 * on, never query it: knex stays in the repositories and in server/db/.
 */
export type Transaction = Knex.Transaction;

/** Where a repository call runs: an open transaction, or the database itself when the caller has none. */
export type Queryable = Knex;
