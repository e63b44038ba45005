import type { Knex } from 'knex';
import { toDbTime } from '../../db/index.js';

/**
 * Every query on where accounts come from (users.source, external_id,
 * local_login_disabled) and on the institution memberships a directory or a
 * provider's groups give. Methods that change things take the caller's
 * transaction, in which the audit event is also recorded.
 */
export class ExternalAccountsRepository {
  constructor(private readonly knex: Knex) {}

  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  /** The account a directory entry or a provider's subject signed in as before, if any. */
  async findBySource(source: string, externalId: string, trx: Knex = this.knex): Promise<number | undefined> {
    const row = (await trx('users').where({ source, external_id: externalId }).first('id')) as { id: number } | undefined;
    return row?.id;
  }

  async setSource(userId: number, source: string, externalId: string | null, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users').where({ id: userId }).update({ source, external_id: externalId, updated_at: toDbTime(now) });
  }

  async setLocalLoginDisabled(userId: number, disabled: boolean, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users').where({ id: userId }).update({ local_login_disabled: disabled, updated_at: toDbTime(now) });
  }

  async setName(userId: number, name: string, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users').where({ id: userId }).update({ name, updated_at: toDbTime(now) });
  }

  /**
   * Makes the user an assigned member of the named institutions among
   * `managed` and of none of the others among them; institutions not named in
   * `managed` are left alone (an administrator's own assignments). Answers
   * which were added and removed; names of no institution are answered as unknown.
   */
  async syncMemberships(
    userId: number,
    memberOf: readonly string[],
    managed: readonly string[],
    now: Date,
    trx: Knex,
  ): Promise<{ added: string[]; removed: string[]; unknown: string[] }> {
    const result = { added: [] as string[], removed: [] as string[], unknown: [] as string[] };
    if (managed.length === 0) return result;
    const rows = (await trx('institutions').whereIn('name', [...managed]).select('id', 'name')) as { id: number; name: string }[];
    const byName = new Map(rows.map((row) => [row.name, row.id]));
    for (const name of managed) {
      const id = byName.get(name);
      if (id === undefined) {
        if (memberOf.includes(name)) result.unknown.push(name);
        continue;
      }
      const present = await trx('institution_members').where({ institution_id: id, user_id: userId }).first();
      if (memberOf.includes(name) && !present) {
        await trx('institution_members').insert({ institution_id: id, user_id: userId, added_at: toDbTime(now) });
        result.added.push(name);
      } else if (!memberOf.includes(name) && present) {
        await trx('institution_members').where({ institution_id: id, user_id: userId }).del();
        result.removed.push(name);
      }
    }
    return result;
  }

  /** Addresses of the enabled administrators other than `exceptId`, to tell them of a break-glass login. */
  async otherAdministrators(exceptId: number): Promise<{ email: string; name: string }[]> {
    return (await this.knex('users')
      .join('user_roles', 'user_roles.user_id', 'users.id')
      .where('user_roles.role', 'admin')
      .whereNull('users.disabled_at')
      .whereNot('users.id', exceptId)
      .orderBy('users.email')
      .select('users.email', 'users.name')) as { email: string; name: string }[];
  }

  /** How many accounts come from each source, for the administrators' overview. */
  async countBySource(): Promise<{ source: string; count: number }[]> {
    const rows = (await this.knex('users').groupBy('source').orderBy('source').select('source').count({ n: '*' })) as { source: string; n: number | string }[];
    return rows.map((row) => ({ source: row.source, count: Number(row.n) }));
  }
}
