import type { Knex } from 'knex';
import { AccessTokensRepository } from '../server/access/access-tokens.repository.js';
import { newSecret, sha256Hex } from '../server/access/secrets.js';
import { UsersRepository } from '../server/access/users.repository.js';

/** A logged-in viewer's (L1) request headers: a bearer token of a new account. The tile and DICOMweb routes need L1. */
export async function viewerHeaders(knex: Knex): Promise<Record<string, string>> {
  const now = new Date();
  const viewer = await new UsersRepository(knex).create({ email: `bench-${newSecret().slice(0, 8)}@slidebank.local`, passwordHash: null, level: 'L1', levelExpiresAt: null, roles: [], emailConfirmedAt: now }, now);
  const token = `sbk_${newSecret()}`;
  await new AccessTokensRepository(knex).create({ userId: viewer.id, name: 'bench', prefix: token.slice(0, 12), tokenHash: sha256Hex(token), scope: 'read', expiresAt: null }, now);
  return { authorization: `Bearer ${token}` };
}
