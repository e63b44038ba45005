import type { Knex } from 'knex';
import { SLIDES_TABLE } from '../catalog/slides-table.js';
import { fromDbTime, isUniqueViolation, toDbTime, type DialectName } from '../db/index.js';
import { FINISHED, type JobStatus } from './model.js';

/** A claimed overlay name of a slide. */
export interface OverlayName {
  id: number;
  slideId: number;
  name: string;
  /** Null: the operator. */
  ownerId: number | null;
  ownerEmail: string | null;
  jobId: number | null;
  /** The status of `jobId`; null when there is none (any more). */
  jobStatus: JobStatus | null;
  claimedAt: Date;
  publishedAt: Date | null;
}

/** Who claims a name: a user (null: the operator) and the job that will publish under it (null from the command line). */
export interface OverlayClaimant {
  ownerId: number | null;
  jobId: number | null;
}

export type ClaimOutcome = { claimed: true } | { claimed: false; holder: OverlayName };

interface NameRow {
  id: number;
  slide_id: number;
  name: string;
  owner_id: number | null;
  owner_email: string | null;
  job_id: number | null;
  job_status: JobStatus | null;
  claimed_at: string | Date;
  published_at: string | Date | null;
}

/**
 * Overlay names and who holds them. A name is held by its owner while an
 * overlay is published under it or while the job that claimed it may still
 * publish (queued or running); a claim whose job ended without publishing is
 * free for anyone. Claims are atomic on both databases: a new name is a row
 * under a unique (slide, name) key, and taking over an existing row is a
 * compare-and-set on the row as it was read. On MariaDB a claim also locks
 * the claimant's user row and then the slide's row, in that order as every
 * claimer does: racing inserts of one key would otherwise deadlock on the
 * shared locks InnoDB takes on a duplicate key.
 */
export class OverlayNamesRepository {
  constructor(
    private readonly knex: Knex | Knex.Transaction,
    private readonly dialect: DialectName,
  ) {}

  async find(slideId: number, name: string): Promise<OverlayName | undefined> {
    const query = this.knex('overlay_names').where({ slide_id: slideId, name }).first<NameRow | undefined>();
    // A current read on MariaDB (of this row only), so that a claim inside a transaction sees the row that made its insert fail.
    if (this.dialect === 'mariadb') query.forUpdate();
    const row = await query;
    if (!row) return undefined;
    const owner = row.owner_id === null ? undefined : await this.knex('users').where({ id: row.owner_id }).first<{ email: string } | undefined>('email');
    const job = row.job_id === null ? undefined : await this.knex('queue_jobs').where({ id: row.job_id }).first<{ status: JobStatus } | undefined>('status');
    return toName({ ...row, owner_email: owner?.email ?? null, job_status: job?.status ?? null });
  }

  /**
   * Claim `name` of a slide for `claimant`: a new claim, or the existing one
   * when it is already the claimant's owner's, when nobody holds it any more,
   * or with `takeOver`. `publishedAt` marks it published at once (the
   * publication step and the command line).
   */
  async claim(slideId: number, name: string, claimant: OverlayClaimant, options: { takeOver?: boolean; publishedAt?: Date; now?: Date } = {}): Promise<ClaimOutcome> {
    if (this.dialect !== 'mariadb') return this.claimRow(slideId, name, claimant, options);
    const locked = async (trx: Knex.Transaction) => {
      await lockClaimants(trx, slideId, claimant.ownerId);
      return new OverlayNamesRepository(trx, this.dialect).claimRow(slideId, name, claimant, options);
    };
    return isTransaction(this.knex) ? locked(this.knex) : this.knex.transaction(locked);
  }

  private async claimRow(slideId: number, name: string, claimant: OverlayClaimant, { takeOver = false, publishedAt, now = new Date() }: { takeOver?: boolean; publishedAt?: Date; now?: Date }): Promise<ClaimOutcome> {
    const values = {
      owner_id: claimant.ownerId,
      job_id: claimant.jobId,
      claimed_at: toDbTime(now),
      ...(publishedAt ? { published_at: toDbTime(publishedAt) } : {}),
    };
    for (let round = 0; round < 5; round++) {
      try {
        await this.knex('overlay_names').insert({ slide_id: slideId, name, ...values });
        return { claimed: true };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
      const holder = await this.find(slideId, name);
      if (!holder) continue; // released in between: try the insert again
      if (!takeOver && !sameOwner(holder.ownerId, claimant.ownerId) && isHeld(holder)) return { claimed: false, holder };
      const unchanged = this.knex('overlay_names').where({ id: holder.id, claimed_at: toDbTime(holder.claimedAt) });
      nullSafe(unchanged, 'owner_id', holder.ownerId);
      nullSafe(unchanged, 'job_id', holder.jobId);
      if ((await unchanged.update(values)) === 1) return { claimed: true };
    }
    throw new Error(`overlay name "${name}" of slide ${slideId} kept changing while it was claimed`);
  }

  /** Free the names that the jobs claimed and never published under (the jobs were cancelled, failed or deleted). */
  async release(jobIds: readonly number[]): Promise<number> {
    if (jobIds.length === 0) return 0;
    return this.knex('overlay_names').whereIn('job_id', jobIds).whereNull('published_at').delete();
  }

  /** Free a name the operator claimed and did not publish under (the command line's work failed). */
  async releaseUnpublished(slideId: number, name: string, ownerId: number | null): Promise<void> {
    const query = this.knex('overlay_names').where({ slide_id: slideId, name }).whereNull('published_at');
    nullSafe(query, 'owner_id', ownerId);
    await query.delete();
  }
}

/**
 * MariaDB: the locks every claim of a name of `slideId` takes first, in this
 * order (a submission takes them before it inserts its job, whose foreign key
 * would otherwise hold a shared lock on the slide's row).
 */
export async function lockClaimants(trx: Knex.Transaction, slideId: number, ownerId: number | null): Promise<void> {
  if (ownerId !== null) await trx('users').where({ id: ownerId }).forUpdate().first('id');
  await trx(SLIDES_TABLE).where({ id: slideId }).forUpdate().first('id');
}

function isTransaction(knex: Knex | Knex.Transaction): knex is Knex.Transaction {
  return (knex as Knex.Transaction).isTransaction === true;
}

export function sameOwner(a: number | null, b: number | null): boolean {
  return a === b;
}

/** Whether anybody still holds the claim: something was published under it, or its job may yet publish. */
export function isHeld(claim: Pick<OverlayName, 'publishedAt' | 'jobId' | 'jobStatus'>): boolean {
  if (claim.publishedAt !== null) return true;
  return claim.jobId !== null && claim.jobStatus !== null && !FINISHED.includes(claim.jobStatus);
}

function nullSafe(query: Knex.QueryBuilder, column: string, value: number | null): void {
  if (value === null) query.whereNull(column);
  else query.where(column, value);
}

function toName(row: NameRow): OverlayName {
  return {
    id: row.id,
    slideId: row.slide_id,
    name: row.name,
    ownerId: row.owner_id,
    ownerEmail: row.owner_email,
    jobId: row.job_id,
    jobStatus: row.job_status,
    claimedAt: fromDbTime(row.claimed_at),
    publishedAt: row.published_at === null ? null : fromDbTime(row.published_at),
  };
}
