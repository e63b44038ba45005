import type { Knex } from 'knex';
import { fromDbJson, fromDbTime, toDbTime } from '../db/index.js';
import { MANAGED_COLUMNS, SLIDES_TABLE, STATUS_COLUMNS, type SlideRowOf, type SlideStatus } from './slides-table.js';
import type { ManagedSlide } from './views.js';

export { SLIDE_STATUSES, type SlideStatus } from './slides-table.js';
export type { ManagedSlide };

export interface ManagedSlideQuery {
  status?: SlideStatus;
  /** Part of the name. */
  name?: string;
  limit: number;
  offset: number;
}

type Row = SlideRowOf<typeof MANAGED_COLUMNS>;

export const WITHDRAWN_ACTION = 'slide.withdrawn';
/** Ids per query: well under SQLite's bound on parameters. */
const CHUNK = 500;

/**
 * The slides of every status, and the one change curators make to them: a
 * status moves from one value to another only if it still has the first, so
 * two curators acting at once cannot both succeed. The reason of a withdrawal
 * lives in its audit event; this reads it back from there (the log itself is
 * append-only, see audit.repository.ts).
 */
export class SlideStatusRepository {
  constructor(private readonly knex: Knex) {}

  async list({ status, name, limit, offset }: ManagedSlideQuery): Promise<{ items: ManagedSlide[]; total: number }> {
    const filtered = () => {
      const query = this.knex(SLIDES_TABLE);
      if (status) query.where({ status });
      if (name) query.whereRaw(`name LIKE ? ESCAPE '!'`, [`%${name.replace(/[!%_]/g, '!$&')}%`]);
      return query;
    };
    const [rows, counted] = await Promise.all([this.page(filtered(), limit, offset), filtered().count({ n: '*' }).first() as Promise<{ n: number | string } | undefined>]);
    const withdrawals = await this.latestWithdrawals(rows.filter((row) => row.status === 'withdrawn').map((row) => row.id));
    return { items: rows.map((row) => toSlide(row, withdrawals.get(row.id) ?? null)), total: Number(counted?.n ?? 0) };
  }

  /**
   * A page by name: first its ids from the name's unique index (names are
   * unique, so the name alone orders them, which lets MariaDB use that index;
   * it does not extend a unique key with the id), so that the rows an offset
   * skips are never read; then those rows.
   */
  private async page(filtered: Knex.QueryBuilder, limit: number, offset: number): Promise<Row[]> {
    const ids = ((await filtered.select('id').orderBy('name', 'asc').limit(limit).offset(offset)) as { id: number }[]).map((row) => Number(row.id));
    if (ids.length === 0) return [];
    const byId = new Map(((await this.knex(SLIDES_TABLE).whereIn('id', ids).select(MANAGED_COLUMNS)) as Row[]).map((row) => [Number(row.id), row]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  async find(id: number, trx: Knex = this.knex): Promise<ManagedSlide | undefined> {
    const row = (await trx(SLIDES_TABLE).where({ id }).first(MANAGED_COLUMNS)) as Row | undefined;
    if (!row) return undefined;
    const withdrawals = row.status === 'withdrawn' ? await this.latestWithdrawals([row.id], trx) : new Map();
    return toSlide(row, withdrawals.get(row.id) ?? null);
  }

  /** Set `to` if the slide has `from`; false when it does not (or does not exist). */
  async transition(id: number, from: SlideStatus, to: SlideStatus, now: Date, trx: Knex = this.knex): Promise<boolean> {
    const changed = await trx(SLIDES_TABLE).where({ id, status: from }).update({ status: to, updated_at: toDbTime(now) });
    return Number(changed) === 1;
  }

  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  /** The status of each of `ids` that exists; unknown ids are absent. */
  async statuses(ids: readonly number[]): Promise<Map<number, string>> {
    const found = new Map<number, string>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const rows = (await this.knex(SLIDES_TABLE).whereIn('id', unique.slice(i, i + CHUNK)).select(STATUS_COLUMNS)) as SlideRowOf<typeof STATUS_COLUMNS>[];
      for (const row of rows) found.set(Number(row.id), row.status);
    }
    return found;
  }

  /** The latest withdrawal of each of `ids` that the audit log holds. */
  async latestWithdrawals(ids: readonly number[], trx: Knex = this.knex): Promise<Map<number, NonNullable<ManagedSlide['withdrawal']>>> {
    const found = new Map<number, NonNullable<ManagedSlide['withdrawal']>>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      for (const [id, withdrawal] of await this.latestWithdrawalsOf(ids.slice(i, i + CHUNK), trx)) found.set(id, withdrawal);
    }
    return found;
  }

  private async latestWithdrawalsOf(ids: readonly number[], trx: Knex): Promise<Map<number, NonNullable<ManagedSlide['withdrawal']>>> {
    const found = new Map<number, NonNullable<ManagedSlide['withdrawal']>>();
    if (ids.length === 0) return found;
    const rows = (await trx('audit_log')
      .where({ action: WITHDRAWN_ACTION, subject_type: 'slide' })
      .whereIn('subject_id', ids.map(String))
      .orderBy('id', 'desc')
      .select('subject_id', 'at', 'actor_id', 'details')) as { subject_id: string; at: string; actor_id: number | null; details: unknown }[];
    for (const row of rows) {
      const id = Number(row.subject_id);
      if (found.has(id)) continue;
      const details = row.details == null ? {} : fromDbJson<{ reason?: unknown }>(row.details);
      found.set(id, {
        reason: typeof details.reason === 'string' ? details.reason : null,
        at: fromDbTime(row.at),
        actorId: row.actor_id === null ? null : Number(row.actor_id),
      });
    }
    return found;
  }
}

function toSlide(row: Row, withdrawal: ManagedSlide['withdrawal']): ManagedSlide {
  return {
    id: row.id,
    name: row.name,
    status: row.status as SlideStatus,
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    dataset: row.dataset,
    fileSize: Number(row.file_size),
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
    withdrawal: row.status === 'withdrawn' ? withdrawal : null,
  };
}
