import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

/** A resumable upload of a submission archive, as the table keeps it. */
export interface ChallengeUpload {
  id: string;
  challengeId: number;
  userId: number;
  fileName: string;
  size: number;
  /** Bytes stored from the start; the next chunk starts here. */
  received: number;
  leaseToken: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date;
}

export interface NewUpload {
  id: string;
  challengeId: number;
  userId: number;
  fileName: string;
  size: number;
}

type Row = Record<string, unknown>;

function toUpload(row: Row): ChallengeUpload {
  return {
    id: row.id as string,
    challengeId: row.challenge_id as number,
    userId: row.user_id as number,
    fileName: row.file_name as string,
    size: Number(row.size),
    received: Number(row.received),
    leaseToken: (row.lease_token as string | null) ?? null,
    leaseUntil: row.lease_until === null || row.lease_until === undefined ? null : fromDbTime(row.lease_until as string),
    createdAt: fromDbTime(row.created_at as string),
    updatedAt: fromDbTime(row.updated_at as string),
    expiresAt: fromDbTime(row.expires_at as string),
  };
}

/**
 * Every query on resumable uploads. Writing a chunk and submitting take the
 * upload's lease by a conditional update, so that two requests (on one node
 * or on several) never write or submit the same upload at once.
 */
export class ChallengeUploadsRepository {
  constructor(private readonly knex: Knex) {}

  async create(fields: NewUpload, now: Date, expiresAt: Date): Promise<ChallengeUpload> {
    await this.knex('challenge_uploads').insert({
      id: fields.id,
      challenge_id: fields.challengeId,
      user_id: fields.userId,
      file_name: fields.fileName,
      size: fields.size,
      received: 0,
      lease_token: null,
      lease_until: null,
      created_at: toDbTime(now),
      updated_at: toDbTime(now),
      expires_at: toDbTime(expiresAt),
    });
    return (await this.find(fields.id))!;
  }

  async find(id: string): Promise<ChallengeUpload | undefined> {
    const row = (await this.knex('challenge_uploads').where({ id }).first()) as Row | undefined;
    return row ? toUpload(row) : undefined;
  }

  /** How many uploads a person has in progress in a challenge (expired ones left out). */
  async countOpen(challengeId: number, userId: number, now: Date): Promise<number> {
    const row = (await this.knex('challenge_uploads')
      .where({ challenge_id: challengeId, user_id: userId })
      .where('expires_at', '>', toDbTime(now))
      .count({ n: '*' })
      .first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  /**
   * Takes the lease when nobody holds it (or its holder let it run out) and,
   * if `at` is given, when the upload has received exactly `at` bytes; false
   * otherwise.
   */
  async lease(id: string, token: string, now: Date, until: Date, at?: number): Promise<boolean> {
    const query = this.knex('challenge_uploads')
      .where({ id })
      .where((q) => {
        void q.whereNull('lease_until').orWhere('lease_until', '<', toDbTime(now));
      });
    if (at !== undefined) void query.where('received', at);
    return (await query.update({ lease_token: token, lease_until: toDbTime(until) })) > 0;
  }

  /** Records a chunk stored by the lease's holder, moves the expiry on and lets the lease go; false when the lease was lost. */
  async advance(id: string, token: string, received: number, now: Date, expiresAt: Date): Promise<boolean> {
    const updated = await this.knex('challenge_uploads')
      .where({ id, lease_token: token })
      .update({ received, lease_token: null, lease_until: null, updated_at: toDbTime(now), expires_at: toDbTime(expiresAt) });
    return updated > 0;
  }

  async release(id: string, token: string): Promise<void> {
    await this.knex('challenge_uploads').where({ id, lease_token: token }).update({ lease_token: null, lease_until: null });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.knex('challenge_uploads').where({ id }).delete()) > 0;
  }

  /** Deletes the lease holder's upload (consumed by a submission). */
  async deleteLeased(id: string, token: string): Promise<boolean> {
    return (await this.knex('challenge_uploads').where({ id, lease_token: token }).delete()) > 0;
  }

  /** Uploads past their expiry that nobody holds now. */
  async expired(now: Date, limit = 500): Promise<ChallengeUpload[]> {
    const rows = (await this.knex('challenge_uploads')
      .where('expires_at', '<', toDbTime(now))
      .where((q) => {
        void q.whereNull('lease_until').orWhere('lease_until', '<', toDbTime(now));
      })
      .orderBy('expires_at')
      .limit(limit)) as Row[];
    return rows.map(toUpload);
  }

  /** Deletes an expired upload unless somebody took its lease meanwhile; true when deleted. */
  async deleteExpired(id: string, now: Date): Promise<boolean> {
    const deleted = await this.knex('challenge_uploads')
      .where({ id })
      .where('expires_at', '<', toDbTime(now))
      .where((q) => {
        void q.whereNull('lease_until').orWhere('lease_until', '<', toDbTime(now));
      })
      .delete();
    return deleted > 0;
  }

  /** The ids of every upload there is, expired or not (for sweeping stray files). */
  async ids(): Promise<Set<string>> {
    return new Set(((await this.knex('challenge_uploads').select('id')) as { id: string }[]).map((r) => r.id));
  }
}
