import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';
import type { TokenScope } from './levels.js';

export interface AccessToken {
  id: number;
  userId: number;
  name: string;
  prefix: string;
  scope: TokenScope;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface NewAccessToken {
  userId: number;
  name: string;
  prefix: string;
  tokenHash: string;
  scope: TokenScope;
  expiresAt: Date | null;
}

interface TokenRow {
  id: number;
  user_id: number;
  name: string;
  prefix: string;
  scope: TokenScope;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = ['id', 'user_id', 'name', 'prefix', 'scope', 'created_at', 'last_used_at', 'expires_at', 'revoked_at'];

/** Every query on access_tokens (personal access tokens, stored as SHA-256). */
export class AccessTokensRepository {
  constructor(private readonly knex: Knex) {}

  async create(token: NewAccessToken, now: Date, trx: Knex = this.knex): Promise<AccessToken> {
    const [inserted] = await trx('access_tokens')
      .insert({
        user_id: token.userId,
        name: token.name,
        prefix: token.prefix,
        token_hash: token.tokenHash,
        scope: token.scope,
        created_at: toDbTime(now),
        expires_at: token.expiresAt ? toDbTime(token.expiresAt) : null,
      })
      .returning('id');
    const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
    const created = await this.findById(id, trx);
    if (!created) throw new Error(`access token ${id} vanished inside its own transaction`);
    return created;
  }

  async findById(id: number, trx: Knex = this.knex): Promise<AccessToken | undefined> {
    const row = (await trx('access_tokens').select(COLUMNS).where({ id }).first()) as TokenRow | undefined;
    return row ? toToken(row) : undefined;
  }

  /** The token with this hash, whatever its state: the caller tells revoked and expired apart. */
  async findByHash(tokenHash: string): Promise<AccessToken | undefined> {
    const row = (await this.knex('access_tokens').select(COLUMNS).where({ token_hash: tokenHash }).first()) as TokenRow | undefined;
    return row ? toToken(row) : undefined;
  }

  async listForUser(userId: number): Promise<AccessToken[]> {
    const rows = (await this.knex('access_tokens').select(COLUMNS).where({ user_id: userId }).orderBy('id', 'desc')) as TokenRow[];
    return rows.map(toToken);
  }

  async countActiveForUser(userId: number, now: Date): Promise<number> {
    const result = await this.knex('access_tokens')
      .where({ user_id: userId })
      .whereNull('revoked_at')
      .where((w) => {
        w.whereNull('expires_at').orWhere('expires_at', '>', toDbTime(now));
      })
      .count({ n: '*' })
      .first();
    return Number(result?.n ?? 0);
  }

  /** True when this call revoked it; false when it was revoked already. */
  async revoke(id: number, now: Date, trx: Knex = this.knex): Promise<boolean> {
    return (await trx('access_tokens').where({ id }).whereNull('revoked_at').update({ revoked_at: toDbTime(now) })) === 1;
  }

  /** Revokes every token of the user that still works (unrevoked and unexpired); returns those it revoked. */
  async revokeAllForUser(userId: number, now: Date, trx: Knex = this.knex): Promise<AccessToken[]> {
    const live = (await trx('access_tokens')
      .select(COLUMNS)
      .where({ user_id: userId })
      .whereNull('revoked_at')
      .where((w) => {
        w.whereNull('expires_at').orWhere('expires_at', '>', toDbTime(now));
      })) as TokenRow[];
    if (live.length === 0) return [];
    await trx('access_tokens')
      .whereIn(
        'id',
        live.map((row) => row.id),
      )
      .whereNull('revoked_at')
      .update({ revoked_at: toDbTime(now) });
    return live.map((row) => ({ ...toToken(row), revokedAt: now }));
  }

  /** Records use at most once a minute per token, so that a viewer's tile requests do not each write. */
  async touch(id: number, now: Date): Promise<void> {
    const aMinuteAgo = toDbTime(new Date(now.getTime() - 60_000));
    await this.knex('access_tokens')
      .where({ id })
      .where((w) => {
        w.whereNull('last_used_at').orWhere('last_used_at', '<', aMinuteAgo);
      })
      .update({ last_used_at: toDbTime(now) });
  }
}

function toToken(row: TokenRow): AccessToken {
  const time = (value: string | null) => (value ? fromDbTime(value) : null);
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    scope: row.scope,
    createdAt: fromDbTime(row.created_at),
    lastUsedAt: time(row.last_used_at),
    expiresAt: time(row.expires_at),
    revokedAt: time(row.revoked_at),
  };
}
