import type { Knex } from 'knex';
import { SLIDES_TABLE } from '../catalog/slides-table.js';
import { fromDbJson, fromDbTime, retryIdempotent, toDbTime, type DialectName } from '../db/index.js';
import { FINISHED, type JobStatus, type JobType, type QueuedJob, type ResultFile } from './model.js';
import { lockClaimants, OverlayNamesRepository, type OverlayName } from './overlay-names.repository.js';

interface JobRow {
  id: number;
  type: JobType;
  slide_id: number;
  parameters: unknown;
  status: JobStatus;
  progress: number;
  message: string | null;
  attempts: number;
  max_attempts: number;
  run_after: string | Date;
  lease_owner: string | null;
  lease_expires_at: string | Date | null;
  cancel_requested: number | boolean;
  error: string | null;
  log: string | null;
  results: unknown;
  owner_id: number | null;
  owner_email: string | null;
  slide_name: string | null;
  created_at: string | Date;
  started_at: string | Date | null;
  finished_at: string | Date | null;
}

export interface NewJob {
  type: JobType;
  slideId: number;
  parameters: Record<string, unknown>;
  ownerId: number | null;
  maxAttempts: number;
}

export interface JobFilter {
  ownerId?: number;
  slideId?: number;
  status?: JobStatus;
  type?: JobType;
  limit?: number;
}

/** What a submission came to: the queued job, or why it was refused (nothing is queued then). */
export type SubmitOutcome =
  | { job: QueuedJob }
  | { refused: 'quota'; queued: number }
  | { refused: 'overlay-name'; holder: OverlayName };

export interface SubmitOptions {
  /** Queued jobs one owner may have, this one included; 0 = no bound. */
  maxQueuedPerUser?: number;
  /** The heat-map overlay name the job claims; `takeOver` claims it from whoever holds it. */
  overlay?: { name: string; takeOver: boolean };
}

/** Due jobs a MariaDB claimer considers per round, in the fair order. */
const CLAIM_CANDIDATES = 32;

/** What a heartbeat learns: whether the job is still this worker's, and whether someone asked to cancel it. */
export interface Heartbeat {
  owned: boolean;
  cancelRequested: boolean;
}

/** What became of jobs whose lease ran out. */
export interface Recovery {
  requeued: number[];
  failed: number[];
  cancelled: number[];
}

/**
 * Every query on the job queue. Claiming is fair between owners and atomic on
 * both databases. The next job is the oldest due one of the owner with the
 * fewest running jobs, among those equal the owner served longest ago (round
 * robin), never one of an owner already at `maxRunningPerUser`. On SQLite one
 * UPDATE … WHERE id = (SELECT … LIMIT 1) chooses and takes it under the
 * database's single writer lock. On MariaDB the choice is read first, then
 * each candidate is tried in a short transaction that locks its owner's user
 * row (claims of one user's jobs take turns there, so the running count read
 * under it is exact), and the job itself with `FOR UPDATE SKIP LOCKED` (other
 * claimers skip it rather than wait). Every later write by a worker is
 * conditional on its lease, so a worker that lost its job (lease expired and
 * recovered) changes nothing.
 */
export class QueueRepository {
  constructor(
    private readonly knex: Knex,
    private readonly dialect: DialectName,
  ) {}

  async insert(job: NewJob, now = new Date()): Promise<QueuedJob> {
    return (await this.findById(await insertJob(this.knex, job, now)))!;
  }

  /**
   * Queue a job for a user within their quota of queued jobs, claiming its
   * overlay name at the same time: all of it, or nothing. On MariaDB the
   * owner's user row is locked first, so that two submissions cannot both
   * count one free place (and, for a name, the slide's row: see
   * OverlayNamesRepository); on SQLite the insert comes first and holds the
   * database's writer lock for the rest.
   */
  async submit(job: NewJob, { maxQueuedPerUser = 0, overlay }: SubmitOptions = {}, now = new Date()): Promise<SubmitOutcome> {
    let id: number;
    try {
      id = await this.knex.transaction(async (trx) => {
        if (this.dialect === 'mariadb') {
          if (overlay) await lockClaimants(trx, job.slideId, job.ownerId);
          else if (job.ownerId !== null) await trx('users').where({ id: job.ownerId }).forUpdate().first('id');
        }
        const inserted = await insertJob(trx, job, now);
        if (maxQueuedPerUser > 0 && job.ownerId !== null) {
          const [row] = (await trx('queue_jobs').where({ owner_id: job.ownerId, status: 'queued' }).count({ n: '*' })) as { n: number | string }[];
          const queued = Number(row?.n ?? 0);
          if (queued > maxQueuedPerUser) throw new Refusal({ refused: 'quota', queued: queued - 1 });
        }
        if (overlay) {
          const names = new OverlayNamesRepository(trx, this.dialect);
          const outcome = await names.claim(job.slideId, overlay.name, { ownerId: job.ownerId, jobId: inserted }, { takeOver: overlay.takeOver, now });
          if (!outcome.claimed) throw new Refusal({ refused: 'overlay-name', holder: outcome.holder });
        }
        return inserted;
      });
    } catch (error) {
      if (error instanceof Refusal) return error.outcome;
      throw error;
    }
    return { job: (await this.findById(id))! };
  }

  async findById(id: number): Promise<QueuedJob | undefined> {
    const row = await this.select().where('j.id', id).first<JobRow | undefined>();
    return row ? toJob(row) : undefined;
  }

  /** Newest first. */
  async list(filter: JobFilter = {}): Promise<QueuedJob[]> {
    const query = this.select().orderBy('j.id', 'desc').limit(filter.limit ?? 200);
    if (filter.ownerId !== undefined) query.where('j.owner_id', filter.ownerId);
    if (filter.slideId !== undefined) query.where('j.slide_id', filter.slideId);
    if (filter.status !== undefined) query.where('j.status', filter.status);
    if (filter.type !== undefined) query.where('j.type', filter.type);
    return ((await query) as JobRow[]).map(toJob);
  }

  /** Published slides with no tissue-mask job that is queued, running or succeeded. */
  async slidesWithoutJob(type: JobType, limit = 1000): Promise<number[]> {
    const rows = await this.knex(`${SLIDES_TABLE} as s`)
      .where('s.status', 'published')
      .whereNotExists((q) => {
        q.select(this.knex.raw('1')).from('queue_jobs as j').whereRaw('j.slide_id = s.id').where('j.type', type).whereIn('j.status', ['queued', 'running', 'succeeded']);
      })
      .orderBy('s.id')
      .limit(limit)
      .select<{ id: number }[]>('s.id');
    return rows.map((r) => r.id);
  }

  /**
   * Take the next due queued job (in the fair order) for `owner` until
   * `leaseUntil`, counting an attempt; undefined when none is due. Never hands
   * one job to two claimers, nor an owner more than `maxRunningPerUser`
   * running jobs (0 = no bound; jobs without an owner are not bounded).
   */
  async claim(owner: string, now: Date, leaseUntil: Date, { maxRunningPerUser = 0 }: { maxRunningPerUser?: number } = {}): Promise<QueuedJob | undefined> {
    const changes = {
      status: 'running',
      lease_owner: owner,
      lease_expires_at: toDbTime(leaseUntil),
      attempts: this.knex.raw('attempts + 1'),
      progress: 0,
      message: null,
      started_at: toDbTime(now),
    };
    if (this.dialect === 'sqlite') {
      // A nested SELECT in one UPDATE: MySQL-family servers refuse it on the same table, SQLite runs it under its write lock.
      const updated = (await this.knex('queue_jobs')
        .where('id', this.fairlyDue(this.knex.select('j.id'), now, maxRunningPerUser).limit(1))
        .andWhere('status', 'queued')
        .update(changes, ['id'])) as { id: number }[];
      const id = updated[0]?.id;
      return id === undefined ? undefined : this.findById(id);
    }
    const candidates = (await this.fairlyDue(this.knex.select('j.id', 'j.owner_id'), now, maxRunningPerUser).limit(CLAIM_CANDIDATES)) as { id: number; owner_id: number | null }[];
    for (const candidate of candidates) {
      const id = await this.knex.transaction(async (trx) => {
        if (candidate.owner_id !== null) {
          await trx('users').where({ id: candidate.owner_id }).forUpdate().first('id');
          if (maxRunningPerUser > 0) {
            const [row] = (await trx('queue_jobs').where({ owner_id: candidate.owner_id, status: 'running' }).count({ n: '*' })) as { n: number | string }[];
            if (Number(row?.n ?? 0) >= maxRunningPerUser) return undefined;
          }
        }
        const row = await trx('queue_jobs')
          .where({ id: candidate.id, status: 'queued', cancel_requested: false })
          .where('run_after', '<=', toDbTime(now))
          .forUpdate()
          .skipLocked()
          .first<{ id: number } | undefined>('id');
        if (!row) return undefined;
        await trx('queue_jobs').where({ id: row.id }).update(changes);
        return row.id;
      });
      if (id !== undefined) return this.findById(id);
    }
    return undefined;
  }

  /** Due queued jobs as `j`, in the fair order, without owners at their running limit. */
  private fairlyDue(query: Knex.QueryBuilder, now: Date, maxRunningPerUser: number): Knex.QueryBuilder {
    // Jobs without an owner (the scheduler's) count as one more owner.
    const same = this.dialect === 'mariadb' ? '<=>' : 'IS';
    const running = `(SELECT COUNT(*) FROM queue_jobs r WHERE r.status = 'running' AND r.owner_id ${same} j.owner_id)`;
    const lastStart = `(SELECT MAX(s.started_at) FROM queue_jobs s WHERE s.owner_id ${same} j.owner_id)`;
    query
      .from('queue_jobs as j')
      .where({ 'j.status': 'queued', 'j.cancel_requested': false })
      .where('j.run_after', '<=', toDbTime(now));
    if (maxRunningPerUser > 0) query.where((q) => {
        q.whereNull('j.owner_id').orWhereRaw(`${running} < ?`, [maxRunningPerUser]);
      });
    // Owners never served have no last start: NULL sorts first on both databases.
    return query.orderByRaw(`${running}, ${lastStart}, j.run_after, j.id`);
  }

  /** Renew the lease and record progress; tells the worker whether the job is still its own and whether to stop. */
  async heartbeat(id: number, owner: string, leaseUntil: Date, report: { progress?: number; message?: string | null; log?: string | null } = {}): Promise<Heartbeat> {
    const changes: Record<string, unknown> = { lease_expires_at: toDbTime(leaseUntil) };
    if (report.progress !== undefined) changes.progress = Math.min(1, Math.max(0, report.progress));
    if (report.message !== undefined) changes.message = report.message === null ? null : report.message.slice(0, 500);
    if (report.log !== undefined) changes.log = report.log;
    // Conditional on the lease, so running it again after a lost connection or a conflict changes nothing twice.
    const owned = (await retryIdempotent(() => this.knex('queue_jobs').where({ id, lease_owner: owner, status: 'running' }).update(changes))) === 1;
    if (!owned) return { owned, cancelRequested: false };
    const row = await this.knex('queue_jobs').where({ id }).first<{ cancel_requested: number | boolean }>('cancel_requested');
    return { owned, cancelRequested: Boolean(row?.cancel_requested) };
  }

  /** End a running job this worker owns; false when the job is no longer its (the lease ran out and it was recovered). */
  async finish(
    id: number,
    owner: string,
    outcome: { status: 'succeeded' | 'failed' | 'cancelled'; error?: string | null; results?: ResultFile[] | null; log?: string | null; message?: string | null },
    now = new Date(),
  ): Promise<boolean> {
    const changes: Record<string, unknown> = {
      status: outcome.status,
      error: outcome.error ?? null,
      results: outcome.results ? JSON.stringify(outcome.results) : null,
      lease_owner: null,
      lease_expires_at: null,
      finished_at: toDbTime(now),
    };
    if (outcome.status === 'succeeded') changes.progress = 1;
    if (outcome.log !== undefined) changes.log = outcome.log;
    if (outcome.message !== undefined) changes.message = outcome.message;
    const finished = (await retryIdempotent(() => this.knex('queue_jobs').where({ id, lease_owner: owner, status: 'running' }).update(changes))) === 1;
    if (finished && outcome.status !== 'succeeded') await this.overlayNames().release([id]);
    return finished;
  }

  /**
   * Put a running job this worker owns back in the queue, to run after
   * `runAfter`. `countAttempt: false` gives back the attempt (a worker shutting
   * down did not fail the job).
   */
  async requeue(id: number, owner: string, runAfter: Date, { error = null, log, countAttempt = true }: { error?: string | null; log?: string | null; countAttempt?: boolean } = {}): Promise<boolean> {
    const changes: Record<string, unknown> = {
      status: 'queued',
      run_after: toDbTime(runAfter),
      lease_owner: null,
      lease_expires_at: null,
      progress: 0,
      message: null,
      error,
    };
    if (!countAttempt) changes.attempts = this.knex.raw('attempts - 1');
    if (log !== undefined) changes.log = log;
    return (await retryIdempotent(() => this.knex('queue_jobs').where({ id, lease_owner: owner, status: 'running' }).update(changes))) === 1;
  }

  /**
   * Jobs whose worker stopped renewing its lease (it died, or hangs): back in
   * the queue after `backoff(attempts)` while attempts remain, else failed;
   * cancelled when a cancel was asked for. Each change is conditional on the
   * lease still being expired, so two recoverers do not both act.
   */
  async recoverExpired(now: Date, backoff: (attempts: number) => number): Promise<Recovery> {
    const expired = await this.knex('queue_jobs')
      .where({ status: 'running' })
      .where('lease_expires_at', '<', toDbTime(now))
      .select<{ id: number; attempts: number; max_attempts: number; lease_owner: string | null; cancel_requested: number | boolean; log: string | null }[]>(
        'id',
        'attempts',
        'max_attempts',
        'lease_owner',
        'cancel_requested',
        'log',
      );
    const out: Recovery = { requeued: [], failed: [], cancelled: [] };
    for (const job of expired) {
      const reason = `worker ${job.lease_owner ?? '?'} stopped renewing its lease (it died or hung) during attempt ${job.attempts}`;
      const guard = this.knex('queue_jobs').where({ id: job.id, status: 'running' }).where('lease_expires_at', '<', toDbTime(now));
      const common = { lease_owner: null, lease_expires_at: null };
      if (job.cancel_requested) {
        if ((await guard.update({ ...common, status: 'cancelled', finished_at: toDbTime(now), error: null })) === 1) out.cancelled.push(job.id);
      } else if (job.attempts < job.max_attempts) {
        const changes = { ...common, status: 'queued', progress: 0, message: null, error: reason, run_after: toDbTime(new Date(now.getTime() + backoff(job.attempts))) };
        if ((await guard.update(changes)) === 1) out.requeued.push(job.id);
      } else {
        const changes = { ...common, status: 'failed', finished_at: toDbTime(now), error: `${reason}; no attempts left (${job.max_attempts})` };
        if ((await guard.update(changes)) === 1) out.failed.push(job.id);
      }
    }
    await this.overlayNames().release([...out.failed, ...out.cancelled]);
    return out;
  }

  /**
   * Cancel: a queued job at once, a running one by flagging it for its worker
   * (which stops at its next progress report). Returns the job as it is now;
   * unchanged when it had already finished. A cancelled job's overlay name
   * is free again unless it published under it.
   */
  async requestCancel(id: number, now = new Date()): Promise<QueuedJob | undefined> {
    const cancelled = await this.knex('queue_jobs').where({ id, status: 'queued' }).update({ status: 'cancelled', cancel_requested: true, finished_at: toDbTime(now) });
    if (cancelled === 1) await this.overlayNames().release([id]);
    await this.knex('queue_jobs').where({ id, status: 'running' }).update({ cancel_requested: true });
    return this.findById(id);
  }

  isFinished(job: Pick<QueuedJob, 'status'>): boolean {
    return FINISHED.includes(job.status);
  }

  private overlayNames(): OverlayNamesRepository {
    return new OverlayNamesRepository(this.knex, this.dialect);
  }

  private select() {
    // The slide's name only while it is published: a withdrawn slide is shown by its id alone.
    return this.knex('queue_jobs as j')
      .leftJoin('users as u', 'u.id', 'j.owner_id')
      .leftJoin(`${SLIDES_TABLE} as s`, (on) => {
        on.on('s.id', '=', 'j.slide_id').andOnVal('s.status', '=', 'published');
      })
      .select('j.*', 'u.email as owner_email', 's.name as slide_name');
  }
}

/** A submission refused inside its transaction, which rolls back. */
class Refusal extends Error {
  constructor(readonly outcome: Exclude<SubmitOutcome, { job: QueuedJob }>) {
    super(outcome.refused);
  }
}

async function insertJob(knex: Knex | Knex.Transaction, job: NewJob, now: Date): Promise<number> {
  const [inserted] = await knex('queue_jobs')
    .insert({
      type: job.type,
      slide_id: job.slideId,
      parameters: JSON.stringify(job.parameters),
      status: 'queued',
      progress: 0,
      attempts: 0,
      max_attempts: job.maxAttempts,
      run_after: toDbTime(now),
      cancel_requested: false,
      owner_id: job.ownerId,
      created_at: toDbTime(now),
    })
    .returning('id');
  return typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
}

function time(value: string | Date | null): Date | null {
  return value === null ? null : fromDbTime(value);
}

function toJob(row: JobRow): QueuedJob {
  return {
    id: row.id,
    type: row.type,
    slideId: row.slide_id,
    slideName: row.slide_name ?? null,
    parameters: fromDbJson<Record<string, unknown>>(row.parameters),
    status: row.status,
    progress: Number(row.progress),
    message: row.message,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAfter: fromDbTime(row.run_after),
    leaseOwner: row.lease_owner,
    leaseExpiresAt: time(row.lease_expires_at),
    cancelRequested: Boolean(row.cancel_requested),
    error: row.error,
    log: row.log,
    results: row.results === null ? null : fromDbJson<ResultFile[]>(row.results),
    ownerId: row.owner_id,
    ownerEmail: row.owner_email,
    createdAt: fromDbTime(row.created_at),
    startedAt: time(row.started_at),
    finishedAt: time(row.finished_at),
  };
}
