import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

/** What a one-time link is for. */
export type LinkPurpose = 'confirm_email' | 'reset_password';

export type ConsumeResult =
  | { status: 'ok'; userId: number }
  | { status: 'unknown' | 'used' | 'expired' };

/** Every query on auth_tokens: the single-use secrets behind mailed links, stored as SHA-256. */
export class AuthTokensRepository {
  constructor(private readonly knex: Knex) {}

  /** Stores a new link and drops the user's unused earlier ones for the same purpose: only the newest works. */
  async issue(userId: number, purpose: LinkPurpose, tokenHash: string, expiresAt: Date, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('auth_tokens').where({ user_id: userId, purpose }).whereNull('used_at').del();
    await trx('auth_tokens').insert({
      user_id: userId,
      purpose,
      token_hash: tokenHash,
      created_at: toDbTime(now),
      expires_at: toDbTime(expiresAt),
      used_at: null,
    });
  }

  /** Marks the link used if it is unused and unexpired; says precisely why not otherwise. Exactly one caller wins a race. */
  async consume(tokenHash: string, purpose: LinkPurpose, now: Date, trx: Knex = this.knex): Promise<ConsumeResult> {
    const row = await this.find(tokenHash, purpose, trx);
    const state = stateOf(row, now);
    if (state.status !== 'ok') return state;
    const claimed = await trx('auth_tokens').where({ id: row!.id }).whereNull('used_at').update({ used_at: toDbTime(now) });
    return claimed === 1 ? state : { status: 'used' };
  }

  /** What `consume` would answer now, without using the link: for refusing a bad link before costly work. */
  async check(tokenHash: string, purpose: LinkPurpose, now: Date): Promise<ConsumeResult> {
    return stateOf(await this.find(tokenHash, purpose, this.knex), now);
  }

  /** Unused links of a user for a purpose are withdrawn (a reset password makes older reset links void). */
  async withdraw(userId: number, purpose: LinkPurpose, trx: Knex = this.knex): Promise<void> {
    await trx('auth_tokens').where({ user_id: userId, purpose }).whereNull('used_at').del();
  }

  private async find(tokenHash: string, purpose: LinkPurpose, trx: Knex): Promise<LinkRow | undefined> {
    return (await trx('auth_tokens').where({ token_hash: tokenHash, purpose }).first('id', 'user_id', 'expires_at', 'used_at')) as LinkRow | undefined;
  }

  /** For the clean-up job: links past their expiry. */
  async deleteExpired(now: Date): Promise<number> {
    return this.knex('auth_tokens').where('expires_at', '<=', toDbTime(now)).del();
  }
}

interface LinkRow {
  id: number;
  user_id: number;
  expires_at: string;
  used_at: string | null;
}

function stateOf(row: LinkRow | undefined, now: Date): ConsumeResult {
  if (!row) return { status: 'unknown' };
  if (row.used_at) return { status: 'used' };
  if (fromDbTime(row.expires_at).getTime() <= now.getTime()) return { status: 'expired' };
  return { status: 'ok', userId: row.user_id };
}
