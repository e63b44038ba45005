import type { Knex } from 'knex';
import { fromDbJson, toDbTime } from '../db/index.js';
import { sha256Hex } from './secrets.js';

interface SessionRow {
  id: string;
  user_id: number | null;
  data: unknown;
  expires_at: string;
}

/**
 * Every query on the sessions table. Rows are keyed by the SHA-256 of the
 * cookie's session id, so the table alone does not let anyone resume a session.
 */
export class SessionsRepository {
  constructor(private readonly knex: Knex) {}

  /** The session's data, or undefined when there is none or it has expired. */
  async get(sessionId: string, now: Date): Promise<Record<string, unknown> | undefined> {
    const row = await this.knex<SessionRow>('sessions')
      .where({ id: sha256Hex(sessionId) })
      .where('expires_at', '>', toDbTime(now))
      .first('data');
    return row ? fromDbJson<Record<string, unknown>>(row.data) : undefined;
  }

  async set(sessionId: string, data: Record<string, unknown>, userId: number | null, expiresAt: Date, now: Date): Promise<void> {
    const id = sha256Hex(sessionId);
    const values = { user_id: userId, data: JSON.stringify(data), expires_at: toDbTime(expiresAt), updated_at: toDbTime(now) };
    await this.knex('sessions')
      .insert({ id, ...values, created_at: toDbTime(now) })
      .onConflict('id')
      .merge(values);
  }

  async destroy(sessionId: string): Promise<void> {
    await this.knex('sessions').where({ id: sha256Hex(sessionId) }).del();
  }

  /** Ends every session of a user (password reset, disabled account), except optionally the one making the change. */
  async destroyForUser(userId: number, exceptSessionId?: string, trx: Knex = this.knex): Promise<number> {
    const query = trx('sessions').where({ user_id: userId });
    if (exceptSessionId) query.whereNot({ id: sha256Hex(exceptSessionId) });
    return query.del();
  }

  /** For the clean-up job. */
  async deleteExpired(now: Date): Promise<number> {
    return this.knex('sessions').where('expires_at', '<=', toDbTime(now)).del();
  }

  async countForUser(userId: number): Promise<number> {
    const result = await this.knex('sessions').where({ user_id: userId }).count({ n: '*' }).first();
    return Number(result?.n ?? 0);
  }
}
