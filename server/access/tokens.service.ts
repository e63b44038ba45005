import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { AppError } from '../errors.js';
import type { AccessTokensRepository } from './access-tokens.repository.js';
import { assertAuthenticated, requesterFor, type Requester, type TokenScope } from './levels.js';
import { newSecret, sha256Hex } from './secrets.js';
import type { UsersRepository } from './users.repository.js';
import { tokenViewOf, type CreatedToken, type TokenList } from './views.js';

/** `sbk_` and 43 base64url characters: 256 random bits. */
const TOKEN_FORMAT = /^sbk_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 12;
/** Active tokens one account may hold. */
export const MAX_ACTIVE_TOKENS = 50;

/** A token as its owner asks for it. */
export interface TokenRequest {
  name: string;
  scope: TokenScope;
  /** Null: it does not expire. */
  expiresInDays: number | null;
}

/** How finely a token's last use is recorded. */
const LAST_USE_RESOLUTION_MS = 60_000;

/**
 * Personal access tokens: `Authorization: Bearer sbk_…` works wherever a
 * session does. Only the SHA-256 is stored. The owner's level is read live on
 * every request, so a token loses whatever its owner loses (an L2 that lapses
 * takes the token's download rights with it).
 */

export class TokensService {
  constructor(
    private readonly tokens: AccessTokensRepository,
    private readonly users: UsersRepository,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(requester: Requester, body: TokenRequest, actor: AuditActor): Promise<CreatedToken> {
    assertAuthenticated(requester);
    const now = this.clock();
    const user = requester.user;
    if ((await this.tokens.countActiveForUser(user.id, now)) >= MAX_ACTIVE_TOKENS) {
      throw new AppError(409, 'too_many_tokens', `An account may hold ${MAX_ACTIVE_TOKENS} active tokens; revoke one first`);
    }
    const token = `sbk_${newSecret()}`;
    const expiresAt = body.expiresInDays === null ? null : new Date(now.getTime() + body.expiresInDays * 86_400_000);
    const created = await this.users.transaction(async (trx) => {
      const stored = await this.tokens.create(
        { userId: user.id, name: body.name, prefix: token.slice(0, PREFIX_LENGTH), tokenHash: sha256Hex(token), scope: body.scope, expiresAt },
        now,
        trx,
      );
      await this.audit.record(
        {
          action: 'token.created',
          actorId: user.id,
          subjectType: 'access_token',
          subjectId: stored.id,
          ip: actor.ip ?? null,
          details: { name: stored.name, prefix: stored.prefix, scope: stored.scope, expiresAt: expiresAt?.toISOString() ?? null },
        },
        trx,
      );
      return stored;
    });
    return { ...tokenViewOf(created, now), token };
  }

  async list(requester: Requester): Promise<TokenList> {
    assertAuthenticated(requester);
    const now = this.clock();
    return { items: (await this.tokens.listForUser(requester.user.id)).map((token) => tokenViewOf(token, now)) };
  }

  /** Revokes one of the requester's own tokens; anybody else's is a 404, as if it did not exist. Revoking twice is harmless. */
  async revoke(requester: Requester, id: number, actor: AuditActor): Promise<void> {
    assertAuthenticated(requester);
    const token = await this.tokens.findById(id);
    if (!token || token.userId !== requester.user.id) throw new AppError(404, 'token_not_found', 'You have no token with this id');
    const now = this.clock();
    await this.users.transaction(async (trx) => {
      if (!(await this.tokens.revoke(token.id, now, trx))) return;
      await this.audit.record(
        { action: 'token.revoked', actorId: requester.user.id, subjectType: 'access_token', subjectId: token.id, ip: actor.ip ?? null, details: { name: token.name, prefix: token.prefix } },
        trx,
      );
    });
  }

  /** The requester a bearer token stands for; 401 for anything that is not a live token of an enabled account. */
  async resolve(bearer: string): Promise<Requester> {
    const refused = (code: string, message: string) => new AppError(401, code, message);
    if (!TOKEN_FORMAT.test(bearer)) throw refused('invalid_token', 'The bearer token is not a Slidebank personal access token');
    const token = await this.tokens.findByHash(sha256Hex(bearer));
    if (!token) throw refused('invalid_token', 'The bearer token is not valid');
    const now = this.clock();
    if (token.revokedAt) throw refused('token_revoked', 'The bearer token has been revoked');
    if (token.expiresAt && token.expiresAt.getTime() <= now.getTime()) throw refused('token_expired', 'The bearer token has expired');
    const user = await this.users.findById(token.userId);
    if (!user || user.disabledAt) throw refused('account_disabled', 'The account this token belongs to is disabled');
    // Last use to the minute: a viewer sends hundreds of tile requests a second, and a write for each would cost more than the tile.
    if (!token.lastUsedAt || now.getTime() - token.lastUsedAt.getTime() >= LAST_USE_RESOLUTION_MS) await this.tokens.touch(token.id, now);
    return requesterFor(user, 'token', now, { id: token.id, scope: token.scope });
  }
}
