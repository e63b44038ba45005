import type { AuditLog } from '../audit/audit-log.js';
import type { Database } from '../db/index.js';
import { AccessTokensRepository } from './access-tokens.repository.js';
import { AuthTokensRepository } from './auth-tokens.repository.js';
import { SessionsRepository } from './sessions.repository.js';
import { UsersAdminService, type AdministrativeApproval } from './users-admin.service.js';
import { UsersRepository } from './users.repository.js';

/** User management, as the administrators' API and `slidebank user` use it; `administrativeApproval` is the agreements service. */
export function createUsersAdminService(db: Database, audit: AuditLog, administrativeApproval?: AdministrativeApproval): UsersAdminService {
  const { knex } = db;
  return new UsersAdminService(
    new UsersRepository(knex),
    new SessionsRepository(knex),
    new AccessTokensRepository(knex),
    new AuthTokensRepository(knex),
    audit,
    () => new Date(),
    administrativeApproval,
  );
}
